"""Multi-view concept index: several texts (views) per concept, scored densely and lexically.

A concept's score in a channel is its best view's score (``ConceptMax``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from ..encoders import l2_normalize
from ..text.normalization import normalize
from . import exact

EMPTY = -1.0  # the score of a concept that has no view in a channel
# n-grams in more than this share of a block's labels are dropped: they carry little signal, and they make
# the query x label product nearly dense (10x slower at 1.0). Chosen on the ESCO dev split (escotag tune).
LEXICAL_MAX_DF = 0.02
LEXICAL_NGRAMS = (2, 4)
# label views this close to an earlier view of the same concept are dropped (ESCO dev split: -0.0005 MRR, 11 %
# fewer English views; at 0.9: -0.0026, 25 % fewer)
DENSE_DEDUP_COSINE = 0.95
# A concept matched in several languages gains this share of its other languages' scores (ESCO dev split,
# monolingual tasks de/nl/pt: MRR .7591 at 0, .7627 at 0.2, .7602 at 0.4).
BLOCK_SUPPORT = 0.2
# Queries are scored a few hundred at a time: a larger batch's (views, queries) products and channel scores no longer
# fit in the cache (1,024 titles x 30,000 label views: 120 MB), and it takes about a quarter longer per title.
QUERY_CHUNK = 256


def chunks(rows: np.ndarray) -> list[np.ndarray]:
    """rows in nearly equal parts of at most QUERY_CHUNK (for memory and speed: products are exact, so the parts
    do not change a score)."""
    return np.array_split(rows, max(1, -(-len(rows) // QUERY_CHUNK)))


@dataclass(frozen=True)
class Projection:
    """An orthonormal map of encoder vectors onto fewer dimensions; outputs are L2-normalised again. The map is
    an exact product (``exact``), so a vector's projection does not depend on what else is projected with it."""

    basis: np.ndarray  # (encoder dim, dims)

    @classmethod
    def fit(cls, vectors: np.ndarray, dims: int) -> Projection:
        # Uncentred: the top eigenvectors of the second-moment matrix best keep the dot products (cosines).
        _, eigenvectors = np.linalg.eigh(vectors.T.astype(np.float64) @ vectors)
        return cls(np.ascontiguousarray(eigenvectors[:, ::-1][:, :dims], dtype=np.float32))

    @property
    def dims(self) -> int:
        return int(self.basis.shape[1])

    @functools.cached_property
    def _exact(self) -> exact.Scaled:
        return exact.Scaled(self.basis)

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        return l2_normalize(self._exact.times(vectors))


@dataclass
class Views:
    """Texts of concepts: owner[i] is the concept index of texts[i] (from_pairs sorts them by owner)."""

    owner: np.ndarray
    texts: list[str]

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[int, str]]) -> Views:
        unique = sorted(dict.fromkeys((c, t) for c, t in pairs if t))
        return cls(np.array([c for c, _ in unique], dtype=np.int64), [t for _, t in unique])

    def __len__(self) -> int:
        return len(self.texts)

    def keeping(self, pairs: set[tuple[int, str]]) -> np.ndarray:
        """Mask of the views that are not among these (concept, text) pairs."""
        return np.array([(int(o), t) not in pairs for o, t in zip(self.owner, self.texts, strict=True)], dtype=bool)

    def subset(self, mask: np.ndarray) -> Views:
        return self.take(np.flatnonzero(mask))

    def take(self, indices: np.ndarray) -> Views:
        return Views(self.owner[indices], [self.texts[i] for i in indices])


class ConceptMax:
    """Per-concept maximum over the views of a (views, queries) score matrix, as (queries, concepts); EMPTY for
    concepts without a view.

    Views are visited layer by layer (each concept's first view, then each one's second, ...) with concepts in
    descending view count, so every step is one elementwise maximum over contiguous rows: several times faster
    than np.maximum.reduceat over thousands of small groups. ``columns`` is that visiting order; a channel that
    stores its views in it (``DenseChannel.build``) is scored without reordering.
    """

    def __init__(self, owner: np.ndarray, n_concepts: int) -> None:
        self.n_concepts = n_concepts
        by_owner = np.argsort(owner, kind="stable")
        counts = np.bincount(owner, minlength=n_concepts)
        slot = np.empty(len(owner), dtype=np.int64)  # a view's position among its concept's views
        slot[by_owner] = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
        self.concepts = np.argsort(-counts, kind="stable")
        rank = np.empty(n_concepts, dtype=np.int64)
        rank[self.concepts] = np.arange(n_concepts)
        self.columns = np.lexsort((rank[owner], slot))
        self.layers = np.bincount(slot) if len(owner) else np.zeros(0, dtype=np.int64)
        self.in_order = bool(np.array_equal(self.columns, np.arange(len(owner))))

    def __call__(self, sims: np.ndarray) -> np.ndarray:
        out = np.full((sims.shape[1], self.n_concepts), EMPTY, dtype=np.float32)
        if not len(self.layers):
            return out
        sims = sims if self.in_order else sims[self.columns]
        best = sims[: self.layers[0]].copy()
        start = self.layers[0]
        for size in self.layers[1:]:
            np.maximum(best[:size], sims[start : start + size], out=best[:size])
            start += size
        out[:, self.concepts[: self.layers[0]]] = best.T
        return out


class DenseChannel:
    """Cosines of queries to views, each concept's best. Views and queries meet on the exact grid
    (``exact``): a query's scores are the same bits whatever batch it is scored in."""

    def __init__(self, views: Views, vectors: np.ndarray, n_concepts: int) -> None:
        self.views, self.vectors, self.n_concepts = views, exact.stored(vectors), n_concepts

    @functools.cached_property
    def max(self) -> ConceptMax:
        return ConceptMax(self.views.owner, self.n_concepts)

    @classmethod
    def build(cls, views: Views, n_concepts: int, vectors: np.ndarray, projection: Projection | None = None
              ) -> DenseChannel:
        pruned = cls(views, projection(vectors) if projection else vectors, n_concepts).pruned()
        order = pruned.max.columns
        return cls(pruned.views.take(order), np.ascontiguousarray(pruned.vectors[order]), n_concepts)

    def pruned(self, threshold: float | None = None) -> DenseChannel:
        """Without the views that nearly repeat an earlier view of the same concept (cosine above threshold):
        they barely change a concept's best score but cost as much to score. Views must be sorted by owner."""
        threshold = DENSE_DEDUP_COSINE if threshold is None else threshold
        if threshold >= 1.0 or len(self.views) == 0:
            return self
        owner, vectors = self.views.owner, self.vectors
        keep = np.ones(len(owner), dtype=bool)
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        for start, end in zip(starts, np.r_[starts[1:], len(owner)], strict=True):
            if end - start < 2:
                continue
            sims = vectors[start:end] @ vectors[start:end].T
            for i in range(1, end - start):
                kept = np.flatnonzero(keep[start : start + i])
                keep[start + i] = sims[i, kept].max() <= threshold
        return DenseChannel(self.views.subset(keep), vectors[keep], self.n_concepts)

    def score(self, queries: np.ndarray) -> np.ndarray:
        # (views, queries): BLAS is faster this way round here
        return np.concatenate([self.max(self.vectors @ exact.queries(part).T) for part in chunks(queries)])


@dataclass
class LexicalFit:
    terms: list[str]  # n-grams by vocabulary column
    idf: np.ndarray
    matrix: sparse.csr_matrix | None  # (n-grams, views); None for a channel without views


class LexicalChannel:
    """Character n-gram TF-IDF over normalised texts (scikit-learn's "char_wb" n-grams and TF-IDF weighting).

    char_wb n-grams never cross a space, so a text's n-gram counts are the sum of its words': queries are counted
    from a per-word cache of vocabulary columns, the same counts as CountVectorizer.transform, 6x faster on titles
    (their words repeat).
    """

    WORD_CACHE = 200_000  # words; the cache is emptied when full

    def __init__(self, views: Views, n_concepts: int, fitted: LexicalFit | None = None) -> None:
        """Fitted on views' texts, or restored from ``fitted`` (a cached block's, see ``Block.from_arrays``)."""
        self.views, self.n_concepts = views, n_concepts
        self.counter = CountVectorizer(
            analyzer="char_wb", ngram_range=LEXICAL_NGRAMS, preprocessor=normalize, dtype=np.float32,
            max_df=LEXICAL_MAX_DF if len(views) >= 100 else 1.0,  # tiny blocks would lose every n-gram
        )
        self.tfidf = TfidfTransformer(sublinear_tf=True)
        self.matrix = None
        if fitted is not None and fitted.matrix is not None:
            self.counter.vocabulary_ = dict(zip(fitted.terms, range(len(fitted.terms)), strict=True))
            self.tfidf.idf_, self.tfidf.n_features_in_ = fitted.idf, len(fitted.idf)
            self.matrix = fitted.matrix
        elif fitted is None and len(views):
            self.matrix = self.tfidf.fit_transform(self.counter.fit_transform(views.texts)).T.tocsr()
        if self.matrix is not None:
            self._analyze = self.counter.build_analyzer()
        # a concept with a view scores 0 where no n-gram is shared
        self.floor = np.where(np.bincount(views.owner, minlength=n_concepts) > 0, 0.0, EMPTY).astype(np.float32)
        self._words: dict[str, list[int]] = {}

    @property
    def fitted(self) -> LexicalFit:
        """What fitting learned: the n-grams by column, their idf and the (n-grams, views) TF-IDF matrix."""
        if self.matrix is None:
            return LexicalFit([], np.zeros(0), None)
        terms = sorted(self.counter.vocabulary_, key=self.counter.vocabulary_.__getitem__)
        return LexicalFit(terms, self.tfidf.idf_, self.matrix)

    def _columns(self, word: str) -> list[int]:
        columns = self._words.get(word)
        if columns is None:
            if len(self._words) >= self.WORD_CACHE:
                self._words.clear()
            vocabulary = self.counter.vocabulary_
            columns = [vocabulary[g] for g in self._analyze(word) if g in vocabulary]
            self._words[word] = columns
        return columns

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """TF-IDF rows of texts (as TfidfVectorizer.transform would give)."""
        rows: list[int] = []
        columns: list[int] = []
        for i, text in enumerate(texts):
            for word in normalize(text).split(" "):
                found = self._columns(word) if word else ()
                columns.extend(found)
                rows.extend([i] * len(found))
        counts = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, columns)),
                                   shape=(len(texts), len(self.counter.vocabulary_)))
        counts.sum_duplicates()
        return self.tfidf.transform(counts)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        if self.matrix is None:
            return np.full((len(texts), self.n_concepts), EMPTY, dtype=np.float32)
        # Shared n-grams are rare (max_df), so the per-concept maximum is taken over the sparse product's
        # entries: 3x faster than densifying it.
        sims = (self.transform(texts) @ self.matrix).tocsr()
        out = np.repeat(self.floor[None, :], len(texts), axis=0)
        rows = np.repeat(np.arange(len(texts)), np.diff(sims.indptr))
        np.maximum.at(out.reshape(-1), rows * self.n_concepts + self.views.owner[sims.indices], sims.data)
        return out


@dataclass
class Block:
    """The views of one language: label vectors, description vectors and the lexical channel on labels."""

    lang: str
    labels: DenseChannel
    descriptions: DenseChannel
    lexical: LexicalChannel | None

    @classmethod
    def build(
        cls, lang: str, labels: Views, descriptions: Views, n_concepts: int, label_vectors: np.ndarray,
        description_vectors: np.ndarray, projection: Projection | None = None, lexical: bool = True,
    ) -> Block:
        """A block from its views and their encoder vectors (projected here when a projection is given)."""
        return cls(lang, DenseChannel.build(labels, n_concepts, label_vectors, projection),
                   DenseChannel.build(descriptions, n_concepts, description_vectors, projection),
                   LexicalChannel(labels, n_concepts) if lexical else None)

    def arrays(self) -> dict[str, np.ndarray]:
        """The block as named arrays (``from_arrays`` restores it; the index cache stores them)."""
        out: dict[str, np.ndarray] = {}
        channels = {"labels": self.labels, "descriptions": self.descriptions}
        for name, channel in channels.items():
            out |= _views_arrays(name, channel.views) | {f"{name}.vectors": channel.vectors}
        if self.lexical is not None:
            fit = self.lexical.fitted
            out |= _views_arrays("lexical", self.lexical.views)
            out |= _text_arrays("lexical.terms", fit.terms) | {"lexical.idf": fit.idf}
            if fit.matrix is not None:
                out |= {"lexical.data": fit.matrix.data, "lexical.indices": fit.matrix.indices,
                        "lexical.indptr": fit.matrix.indptr}
        return out

    @classmethod
    def from_arrays(cls, lang: str, n_concepts: int, arrays: dict[str, np.ndarray]) -> Block:
        channels = [DenseChannel(_views_from(name, arrays), arrays[f"{name}.vectors"], n_concepts)
                    for name in ("labels", "descriptions")]
        lexical = None
        if "lexical.owner" in arrays:
            views, terms = _views_from("lexical", arrays), _texts_from("lexical.terms", arrays)
            matrix = None
            if "lexical.data" in arrays:
                matrix = sparse.csr_matrix(
                    (arrays["lexical.data"], arrays["lexical.indices"], arrays["lexical.indptr"]),
                    shape=(len(terms), len(views)))
            lexical = LexicalChannel(views, n_concepts, LexicalFit(terms, arrays["lexical.idf"], matrix))
        return cls(lang, *channels, lexical)

    def with_labels(self, views: Views, vectors: np.ndarray, projection: Projection | None = None) -> Block:
        """This block with extra label views (users' label rules), indexed like its own labels."""
        if not len(views):
            return self
        base = self.labels.views
        owner = np.concatenate([base.owner, views.owner])
        order = np.argsort(owner, kind="stable")  # a concept's own views first: pruning keeps them as they were
        texts = base.texts + views.texts
        stacked = np.concatenate([self.labels.vectors, projection(vectors) if projection else vectors])
        labels = DenseChannel.build(Views(owner[order], [texts[i] for i in order]), self.labels.n_concepts,
                                    stacked[order])
        lexical = None
        if self.lexical is not None:
            old = self.lexical.views
            lexical = LexicalChannel(Views(np.concatenate([old.owner, views.owner]), old.texts + views.texts),
                                     self.lexical.n_concepts)
        return Block(self.lang, labels, self.descriptions, lexical)

    def without(self, pairs: set[tuple[int, str]]) -> Block:
        """This block without some (concept, label) views, reusing its vectors (dev splits)."""
        keep = self.labels.views.keeping(pairs)
        labels = DenseChannel(self.labels.views.subset(keep), self.labels.vectors[keep], self.labels.n_concepts)
        lexical = None
        if self.lexical is not None:
            views = self.lexical.views
            lexical = LexicalChannel(views.subset(views.keeping(pairs)), self.lexical.n_concepts)
        return Block(self.lang, labels, self.descriptions, lexical)


def _views_arrays(name: str, views: Views) -> dict[str, np.ndarray]:
    return {f"{name}.owner": views.owner, **_text_arrays(f"{name}.texts", views.texts)}


def _views_from(name: str, arrays: dict[str, np.ndarray]) -> Views:
    return Views(arrays[f"{name}.owner"].astype(np.int64), _texts_from(f"{name}.texts", arrays))


def _text_arrays(name: str, texts: list[str]) -> dict[str, np.ndarray]:
    """Texts as their UTF-8 bytes end to end and each one's end (in characters): a tenth of the space of NumPy's
    fixed-width strings."""
    return {name: np.frombuffer("".join(texts).encode("utf-8", "surrogatepass"), dtype=np.uint8),
            f"{name}.ends": np.cumsum([len(t) for t in texts], dtype=np.int64)}


def _texts_from(name: str, arrays: dict[str, np.ndarray]) -> list[str]:
    joined, ends = arrays[name].tobytes().decode("utf-8", "surrogatepass"), arrays[f"{name}.ends"].tolist()
    return [joined[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


@dataclass(frozen=True)
class Weights:
    """How channel scores fuse into a concept score. Chosen on ESCO held-out labels (``escotag tune``)."""

    description: float = 0.3  # title vs. occupation description views
    lexical: float = 0.3  # title vs. labels, character n-grams
    posting: float = 1.0  # posting description vs. occupation label and description views
    # a trained model's classifier head, on titles alone (a posting with a description is scored without it:
    # on real ads the head lost to the untrained model there); its weight comes from escotag train
    head: float = 0.0

    def fuse(self, channels: dict[str, np.ndarray]) -> np.ndarray:
        """A title's score from its channel scores (ConceptIndex.channels)."""
        return channels["label"] + self.description * channels["description"] + self.lexical * channels["lexical"]


class ConceptIndex:
    """Blocks over one list of concepts; scores are fused over channels and maxed over blocks.

    head, when given, maps title vectors to (n_queries, n_concepts) classifier scores (a trained model's).
    """

    def __init__(self, blocks: list[Block], n_concepts: int, weights: Weights,
                 head: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.blocks, self.n_concepts, self.weights, self.head = blocks, n_concepts, weights, head

    def _best(self, scores: list[np.ndarray], n_queries: int) -> np.ndarray:
        """The best score over blocks plus BLOCK_SUPPORT times the others."""
        if not scores:
            return np.full((n_queries, self.n_concepts), EMPTY, dtype=np.float32)
        top = np.maximum.reduce(scores)
        if len(scores) == 1:
            return top
        return top + BLOCK_SUPPORT * (np.add.reduce(scores) - top)

    def channels(self, vectors: np.ndarray, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Per channel, the best score over blocks plus BLOCK_SUPPORT times the others: (n_queries, n_concepts)."""
        n = len(texts)
        return {
            "label": self._best([b.labels.score(vectors) for b in self.blocks], n),
            "description": self._best([b.descriptions.score(vectors) for b in self.blocks], n),
            "lexical": self._best([b.lexical.score(texts) for b in self.blocks if b.lexical is not None], n),
        }

    def labels(self, vectors: np.ndarray) -> np.ndarray:
        """The label channel alone: how a posting read whole (title and description in one vector) is scored,
        as the old service scored it."""
        return self._best([b.labels.score(vectors) for b in self.blocks], len(vectors))

    def posting(self, vectors: np.ndarray) -> np.ndarray:
        """Posting descriptions' best cosine to each concept's label or description views, over blocks."""
        return np.maximum.reduce([np.maximum(b.labels.score(vectors), b.descriptions.score(vectors))
                                  for b in self.blocks])

    def score(
        self, title_vectors: np.ndarray, titles: Sequence[str], description_vectors: np.ndarray | None = None,
        has_description: np.ndarray | None = None,
    ) -> np.ndarray:
        """Fused scores (n_queries, n_concepts) of titles, plus their postings' descriptions where given."""
        parts = chunks(np.arange(len(titles)))
        if len(parts) > 1:
            return np.concatenate([
                self.score(title_vectors[rows], [titles[i] for i in rows],
                           None if description_vectors is None else description_vectors[rows],
                           None if has_description is None else has_description[rows])
                for rows in parts])
        w = self.weights
        fused = w.fuse(self.channels(title_vectors, titles))
        with_description = description_vectors is not None and has_description is not None and has_description.any()
        rows = np.flatnonzero(has_description) if with_description else np.zeros(0, dtype=np.int64)
        if self.head is not None and w.head:
            alone = np.ones(len(titles), dtype=bool)
            alone[rows] = False
            fused[alone] += w.head * self.head(title_vectors)[alone]
        if rows.size:
            fused[rows] += w.posting * self.posting(description_vectors[rows])
        return fused
