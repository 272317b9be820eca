"""The channels of an index block: dense (cosines of vectors, after an optional ``Projection``) and lexical
(character n-gram TF-IDF), each scoring a concept by its best view."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from ..encoders import l2_normalize
from ..text.normalization import normalize
from . import exact
from .views import EMPTY, ConceptMax, Views, chunks

# n-grams in more than this share of a block's labels are dropped: they carry little signal, and they make
# the query x label product nearly dense (10x slower at 1.0). Chosen on the ESCO dev split (escotag tune).
LEXICAL_MAX_DF = 0.02
LEXICAL_NGRAMS = (2, 4)
# label views this close to an earlier view of the same concept are dropped (ESCO dev split: -0.0005 MRR, 11 %
# fewer English views; at 0.9: -0.0026, 25 % fewer)
DENSE_DEDUP_COSINE = 0.95


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
