"""Built index blocks and projections cached on disk: a cached block scores exactly as a freshly built one, a
damaged entry is rebuilt with a warning, and scoring in chunks gives a large batch the same scores as small ones."""

import json
import logging

import numpy as np
import pytest

from escotag import Tagger
from escotag.index.views import QUERY_CHUNK
from escotag.settings import get_settings

TITLES = ["software developer", "Bäcker", "nurse", "chef de partie", "civil engineer", "electrician",
          "Softwareentwickler", "verpleegkundige", "farmacêutico", "accountant"]


def _entries() -> list:
    folder = get_settings().home / "blocks"
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []


def _fresh(esco_slice) -> Tagger:
    return Tagger(esco_slice, progress=False, trained=False)


def _channels(tagger: Tagger, model: str) -> list[dict[str, np.ndarray]]:
    vectors = tagger.pipeline.embed(TITLES)
    return [{"labels": b.labels.score(vectors), "descriptions": b.descriptions.score(vectors),
             "lexical": b.lexical.score(TITLES)} for b in tagger.pipeline.index(model).blocks]


def test_cached_block_scores_as_a_built_one(esco_slice, tmp_path, monkeypatch):
    monkeypatch.setenv("ESCOTAG_HOME", str(tmp_path))
    built = _fresh(esco_slice)
    expected = _channels(built, "De")  # builds de and en, and the projection, and caches them
    assert len(_entries()) == 3
    kinds = sorted((json.loads((e / "manifest.json").read_text())["kind"], e) for e in _entries())
    assert [k for k, _ in kinds] == ["block", "block", "projection"]
    loaded = _fresh(esco_slice)
    got = _channels(loaded, "De")
    for g, e in zip(got, expected, strict=True):
        for channel in e:
            np.testing.assert_array_equal(g[channel], e[channel])
    block, again = built.pipeline.esco_block("de"), loaded.pipeline.esco_block("de")
    assert block.labels.views.texts == again.labels.views.texts
    assert block.lexical.views.texts == again.lexical.views.texts
    np.testing.assert_array_equal(built.pipeline.projection.basis, loaded.pipeline.projection.basis)
    assert built.tag(TITLES, "De") == loaded.tag(TITLES, "De")
    assert len(_entries()) == 3  # loading wrote nothing new


def test_damaged_block_is_rebuilt(esco_slice, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("ESCOTAG_HOME", str(tmp_path))
    expected = _fresh(esco_slice).tag(TITLES, "EnV2")
    for entry in _entries():
        if (entry / "lexical.idf.npy").exists():
            idf = np.load(entry / "lexical.idf.npy")
            np.save(entry / "lexical.idf.npy", idf * 2)
    with caplog.at_level(logging.WARNING):
        assert _fresh(esco_slice).tag(TITLES, "EnV2") == expected
    assert "checksum mismatch (lexical.idf)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _fresh(esco_slice).tag(TITLES, "EnV2")
    assert "block cache" not in caplog.text  # the rebuilt entry verifies
    for entry in _entries():  # an entry of another layout: an array missing, its manifest consistent
        manifest = json.loads((entry / "manifest.json").read_text())
        if manifest["kind"] == "block":
            del manifest["sha256"]["labels.texts.ends"]
            (entry / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING):
        assert _fresh(esco_slice).tag(TITLES, "EnV2") == expected
    assert "stale or corrupt ('labels.texts.ends')" in caplog.text


@pytest.mark.parametrize("n", [QUERY_CHUNK + 1, 3 * QUERY_CHUNK - 5])
def test_large_batches_score_in_chunks_as_small_ones(tagger, n):
    """Identity, not closeness: dense products meet on the exact grid (index.exact: every partial sum is exact, so no
    BLAS kernel's order can change a bit), and every other step works row by row."""
    index = tagger.pipeline.index("EnV2")
    titles = [f"{TITLES[i % len(TITLES)]} {i}" for i in range(n)]
    vectors = tagger.pipeline.embed(titles)
    whole = index.score(vectors, titles)
    assert whole.shape == (n, index.n_concepts)
    parts = [index.score(vectors[i : i + 100], titles[i : i + 100]) for i in range(0, n, 100)]
    np.testing.assert_array_equal(whole, np.concatenate(parts))
    for i in (0, 7, n - 1):  # alone: the product with a single query is another BLAS routine
        np.testing.assert_array_equal(whole[i], index.score(vectors[i : i + 1], titles[i : i + 1])[0])
    np.testing.assert_array_equal(tagger.pipeline.embed(titles[:5]), vectors[:5])  # encoder and projection
