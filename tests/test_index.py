"""The index's scoring primitives against plain reference computations."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from escotag.encoders import l2_normalize
from escotag.index import exact
from escotag.index.channels import LEXICAL_NGRAMS, DenseChannel, LexicalChannel, Projection
from escotag.index.views import EMPTY, ConceptMax, Views
from escotag.text.normalization import normalize


def _reference_max(sims: np.ndarray, owner: np.ndarray, n_concepts: int) -> np.ndarray:
    """(queries, concepts): each concept's best view score, EMPTY without views; sims is (queries, views)."""
    out = np.full((sims.shape[0], n_concepts), EMPTY, dtype=np.float32)
    for c in range(n_concepts):
        if (owner == c).any():
            out[:, c] = sims[:, owner == c].max(axis=1)
    return out


@pytest.mark.parametrize("shuffled", [False, True])
def test_concept_max_matches_reference(shuffled):
    rng = np.random.default_rng(0)
    n_concepts = 40
    owner = np.sort(rng.choice(n_concepts - 5, size=300))  # the last concepts have no view
    if shuffled:
        owner = rng.permutation(owner)
    sims = rng.standard_normal((7, len(owner))).astype(np.float32)
    reducer = ConceptMax(owner, n_concepts)
    assert reducer.in_order is False
    got = reducer(np.ascontiguousarray(sims.T))
    np.testing.assert_array_equal(got, _reference_max(sims, owner, n_concepts))
    assert (got[:, -5:] == EMPTY).all()


def test_dense_channel_stores_views_in_scoring_order():
    rng = np.random.default_rng(1)
    pairs = [(int(c), f"text {i}") for i, c in enumerate(rng.choice(20, size=120))]
    views = Views.from_pairs(pairs)
    vectors = rng.standard_normal((len(views), 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    channel = DenseChannel.build(views, 25, vectors)
    assert channel.max.in_order
    queries = l2_normalize(rng.standard_normal((5, 16)))
    by_text = dict(zip(views.texts, vectors, strict=True))
    kept = np.stack([by_text[t] for t in channel.views.texts])  # the channel's vectors belong to its texts
    np.testing.assert_array_equal(channel.vectors, exact.stored(kept))  # held on the exact grid
    expected = _reference_max(exact.queries(queries) @ exact.stored(kept).T, channel.views.owner, 25)
    np.testing.assert_array_equal(channel.score(queries), expected)  # products on the grid are exact
    assert np.abs(channel.score(queries) - _reference_max(queries @ kept.T, channel.views.owner, 25)).max() < 1e-3


def test_lexical_channel_matches_tfidf_vectorizer_and_dense_max():
    labels = ["software developer", "software engineer", "baker", "pastry baker", "nurse", "registered nurse",
              "Bäckerin", "truck driver"] * 10  # under 100 views: no max_df cut
    views = Views.from_pairs([(i % 8 + (i // 8) % 3, t + f" {i // 8}") for i, t in enumerate(labels)])
    channel = LexicalChannel(views, 12)
    queries = ["senior software developer", "backer  Bäcker", "lorry driver driver", "zzz", ""]
    reference = TfidfVectorizer(analyzer="char_wb", ngram_range=LEXICAL_NGRAMS, preprocessor=normalize,
                                sublinear_tf=True, dtype=np.float32).fit(views.texts)
    np.testing.assert_allclose(channel.transform(queries).toarray(), reference.transform(queries).toarray(), rtol=1e-6)
    dense = (channel.transform(queries) @ channel.matrix).toarray()
    np.testing.assert_allclose(channel.score(queries), _reference_max(dense, views.owner, 12), rtol=1e-6)
    assert (channel.score(queries)[:, 11] == EMPTY).all()  # concept 11 has no label


def test_projection_keeps_cosines_of_data_in_its_subspace():
    rng = np.random.default_rng(2)
    data = rng.standard_normal((500, 8)) @ rng.standard_normal((8, 64))  # rank 8 in 64 dimensions
    data = (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)
    projection = Projection.fit(data, 8)
    assert projection.dims == 8
    np.testing.assert_allclose(projection.basis.T @ projection.basis, np.eye(8), atol=1e-5)
    projected = projection(data)
    np.testing.assert_allclose(projected @ projected.T, data @ data.T, atol=2e-3)  # the exact grid moves ~1e-4
    assert not np.allclose(Projection.fit(data, 4)(data) @ Projection.fit(data, 4)(data).T, data @ data.T, atol=1e-2)


def test_normalize_ascii_and_unicode_paths_agree():
    assert normalize("  Chef\tde   PARTIE ") == "chef de partie"
    assert normalize("Chef de partie ß") == "chef de partie ss"
    assert normalize("CHEF\u00a0DE PARTIE") == "chef de partie"  # NBSP: Unicode path, same folding


def test_a_fusion_that_weighs_the_lexical_channel_zero_never_computes_it(tagger):
    from dataclasses import replace

    index = tagger.pipeline.index("De")
    titles = ["Bäcker", "Krankenpfleger auf Station", "Softwareentwickler"]
    vectors = tagger.pipeline.embed(titles)
    every = index.channels(vectors, titles)
    assert set(every) == {"label", "description", "lexical"} and np.abs(every["lexical"]).sum() > 0
    assert set(index.channels(vectors, titles, lexical=False)) == {"label", "description"}
    without = replace(index.weights, lexical=0.0, description=0.8)
    index_without = type(index)(index.blocks, index.n_concepts, without, index.head)
    expected = every["label"] + 0.8 * every["description"]
    if index.head is not None and without.head:
        expected = expected + without.head * index.head(vectors)
    np.testing.assert_allclose(index_without.score(vectors, titles), expected, rtol=1e-6, atol=1e-6)
    assert not np.allclose(index.score(vectors, titles), index_without.score(vectors, titles))


def test_e5_pipelines_fuse_with_their_own_channel_weights(esco_slice):
    from escotag import Tagger
    from escotag.index.concepts import ENCODER_WEIGHTS, Weights

    tagger = Tagger(esco_slice, encoder="use*0.4+e5*0.6", progress=False, trained=False)
    assert tagger.pipelines["use"].weights == Weights()
    assert tagger.pipelines["e5"].weights == ENCODER_WEIGHTS["e5"] and ENCODER_WEIGHTS["e5"].lexical == 0.0
    given = Weights(description=0.5)
    assert Tagger(esco_slice, encoder="use*0.4+e5*0.6", progress=False, weights=given).pipelines["e5"].weights == given
