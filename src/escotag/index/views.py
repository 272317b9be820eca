"""Views — several texts per concept, ESCO's per language — and the per-concept maximum over a (views, queries)
score matrix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..esco.taxonomy import Labels, Taxonomy
from ..text.normalization import lead

EMPTY = -1.0  # the score of a concept that has no view in a channel
# Queries are scored a few hundred at a time: a larger batch's (views, queries) products and channel scores no longer
# fit in the cache (1,024 titles x 30,000 label views: 120 MB), and it takes about a quarter longer per title.
QUERY_CHUNK = 256
# Occupation descriptions are indexed by their lead: the first sentence or two define the occupation.
OCC_DESCRIPTION_CHARS = 300


def chunks(rows: np.ndarray) -> list[np.ndarray]:
    """rows in nearly equal parts of at most QUERY_CHUNK (for memory and speed: products are exact, so the parts
    do not change a score)."""
    return np.array_split(rows, max(1, -(-len(rows) // QUERY_CHUNK)))


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


def occupation_description(labels: Labels) -> str:
    """The part of a concept's description that is indexed."""
    return lead(labels.description, OCC_DESCRIPTION_CHARS)


def taxonomy_views(taxonomy: Taxonomy, lang: str) -> tuple[Views, Views]:
    """Label views (every label and gendered variant) and description-lead views of one language."""
    labels, descriptions = [], []
    for i, occ in enumerate(taxonomy.occupations):
        texts = occ.labels.get(lang)
        if texts is None:
            continue
        labels += [(i, v) for v in texts.variants()]
        if texts.description:
            descriptions.append((i, occupation_description(texts)))
    return Views.from_pairs(labels), Views.from_pairs(descriptions)
