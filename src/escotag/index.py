"""Multi-view concept index: several texts (views) per concept, scored densely and lexically.

A concept's score in a channel is its best view's score. Views are kept sorted by concept, so the
per-concept maximum is one ``np.maximum.reduceat`` over the similarity matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from .cache import cached_encode
from .encoders import Encoder
from .text import normalize

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


@dataclass
class Views:
    """Texts of concepts: owner[i] is the concept index of texts[i]; sorted by owner."""

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
        return Views(self.owner[mask], [t for t, k in zip(self.texts, mask, strict=True) if k])


def _max_by_owner(sims: np.ndarray, owner: np.ndarray, n_concepts: int) -> np.ndarray:
    out = np.full((sims.shape[0], n_concepts), EMPTY, dtype=np.float32)
    if owner.size == 0:
        return out
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    out[:, owner[starts]] = np.maximum.reduceat(sims, starts, axis=1)
    return out


class DenseChannel:
    def __init__(self, views: Views, vectors: np.ndarray, n_concepts: int) -> None:
        self.views, self.vectors, self.n_concepts = views, vectors, n_concepts

    @classmethod
    def build(cls, views: Views, n_concepts: int, encoder: Encoder, meta: dict) -> DenseChannel:
        return cls(views, cached_encode(encoder, views.texts, meta), n_concepts).pruned()

    def pruned(self, threshold: float | None = None) -> DenseChannel:
        """Without the views that nearly repeat an earlier view of the same concept (cosine above threshold):
        they barely change a concept's best score but cost as much to score."""
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
        return _max_by_owner(queries @ self.vectors.T, self.views.owner, self.n_concepts)


class LexicalChannel:
    """Character n-gram TF-IDF over normalised texts (scikit-learn)."""

    def __init__(self, views: Views, n_concepts: int) -> None:
        self.views, self.n_concepts = views, n_concepts
        self.vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=LEXICAL_NGRAMS, preprocessor=normalize, sublinear_tf=True, dtype=np.float32,
            max_df=LEXICAL_MAX_DF if len(views) >= 100 else 1.0,  # tiny blocks would lose every n-gram
        )
        self.matrix = self.vectorizer.fit_transform(views.texts).T.tocsr() if len(views) else None

    def score(self, texts: Sequence[str]) -> np.ndarray:
        if self.matrix is None:
            return np.full((len(texts), self.n_concepts), EMPTY, dtype=np.float32)
        sims = (self.vectorizer.transform(texts) @ self.matrix).toarray()
        return _max_by_owner(sims, self.views.owner, self.n_concepts)


@dataclass
class Block:
    """The views of one language: label vectors, description vectors and the lexical channel on labels."""

    lang: str
    labels: DenseChannel
    descriptions: DenseChannel
    lexical: LexicalChannel | None

    @classmethod
    def build(
        cls, lang: str, labels: Views, descriptions: Views, n_concepts: int, encoder: Encoder, meta: dict,
        lexical: bool = True,
    ) -> Block:
        return cls(
            lang,
            DenseChannel.build(labels, n_concepts, encoder, {**meta, "lang": lang, "views": "labels"}),
            DenseChannel.build(descriptions, n_concepts, encoder, {**meta, "lang": lang, "views": "descriptions"}),
            LexicalChannel(labels, n_concepts) if lexical else None,
        )


    def without(self, pairs: set[tuple[int, str]]) -> Block:
        """This block without some (concept, label) views, reusing its vectors (dev splits)."""
        keep = self.labels.views.keeping(pairs)
        labels = DenseChannel(self.labels.views.subset(keep), self.labels.vectors[keep], self.labels.n_concepts)
        lexical = None
        if self.lexical is not None:
            views = self.lexical.views
            lexical = LexicalChannel(views.subset(views.keeping(pairs)), self.lexical.n_concepts)
        return Block(self.lang, labels, self.descriptions, lexical)


@dataclass(frozen=True)
class Weights:
    """How channel scores fuse into a concept score. Chosen on ESCO held-out labels (``escotag tune``)."""

    description: float = 0.3  # title vs. occupation description views
    lexical: float = 0.3  # title vs. labels, character n-grams
    posting: float = 1.0  # posting description vs. occupation label and description views
    # a trained model's classifier head (fitted per model on the ESCO dev split by escotag train):
    head: float = 0.0  # on the title, for titles alone
    head_description: float = 0.0  # on the description, for postings with one (their title gets no head)

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

    def channels(self, vectors: np.ndarray, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Per channel, the best score over blocks plus BLOCK_SUPPORT times the others: (n_queries, n_concepts)."""
        def best(scores: list[np.ndarray]) -> np.ndarray:
            if not scores:
                return np.full((len(texts), self.n_concepts), EMPTY, dtype=np.float32)
            top = np.maximum.reduce(scores)
            if len(scores) == 1:
                return top
            return top + BLOCK_SUPPORT * (np.add.reduce(scores) - top)
        return {
            "label": best([b.labels.score(vectors) for b in self.blocks]),
            "description": best([b.descriptions.score(vectors) for b in self.blocks]),
            "lexical": best([b.lexical.score(texts) for b in self.blocks if b.lexical is not None]),
        }

    def posting(self, vectors: np.ndarray) -> np.ndarray:
        """Posting descriptions' best cosine to each concept's label or description views, over blocks."""
        return np.maximum.reduce([np.maximum(b.labels.score(vectors), b.descriptions.score(vectors))
                                  for b in self.blocks])

    def score(
        self, title_vectors: np.ndarray, titles: Sequence[str], description_vectors: np.ndarray | None = None,
        has_description: np.ndarray | None = None,
    ) -> np.ndarray:
        """Fused scores (n_queries, n_concepts) of titles, plus their postings' descriptions where given."""
        w = self.weights
        fused = w.fuse(self.channels(title_vectors, titles))
        with_description = description_vectors is not None and has_description is not None and has_description.any()
        rows = np.flatnonzero(has_description) if with_description else np.zeros(0, dtype=np.int64)
        if self.head is not None and w.head:
            alone = np.ones(len(titles), dtype=bool)
            alone[rows] = False
            fused[alone] += w.head * self.head(title_vectors)[alone]
        if rows.size:
            dv = description_vectors[rows]
            fused[rows] += w.posting * self.posting(dv)
            if self.head is not None and w.head_description:
                fused[rows] += w.head_description * self.head(dv)
        return fused
