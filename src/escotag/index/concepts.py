"""Multi-view concept index: per language a ``Block`` of channels (``channels``) over views (``views``); a
``ConceptIndex`` fuses a model's blocks and channels into one score per concept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .channels import DenseChannel, LexicalChannel, LexicalFit, Projection
from .views import EMPTY, Views, chunks

# A concept matched in several languages gains this share of its other languages' scores (ESCO dev split,
# monolingual tasks de/nl/pt: MRR .7591 at 0, .7627 at 0.2, .7602 at 0.4).
BLOCK_SUPPORT = 0.2


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
        fused = channels["label"] + self.description * channels["description"]
        return fused + self.lexical * channels["lexical"] if self.lexical else fused

    def channels(self) -> dict[str, float]:
        """The channel weights (what a trained model's calibration was fitted with), without the head's."""
        return {"description": self.description, "lexical": self.lexical, "posting": self.posting}


# Where an encoder family's cosines call for other channel weights than Weights' defaults (chosen with use): e5's
# cosines are compressed, so a character n-gram match outweighed what e5ft read. Chosen on ESCO labels of the
# occupations an adapter never saw, against English (esco-xling --concept-fold 1, e5ft of that fold alone: MRR
# 0.654 -> 0.717 over six languages); real titles it never saw agreed (jobbert_val fold 5, e5ft untrained, Acc@5
# 0.539 -> 0.573; plain e5 0.452 -> 0.484). docs/accuracy.md, "Channel weights for e5".
ENCODER_WEIGHTS = {"e5": Weights(description=0.8, lexical=0.0), "e5ft": Weights(description=0.8, lexical=0.0)}


def encoder_weights(encoder_name: str) -> Weights:
    """The channel weights of an encoder's pipeline ('e5ft:/path/to/adapter' is an e5ft)."""
    return ENCODER_WEIGHTS.get(encoder_name.split(":")[0], Weights())


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

    def channels(self, vectors: np.ndarray, texts: Sequence[str], lexical: bool = True) -> dict[str, np.ndarray]:
        """Per channel, the best score over blocks plus BLOCK_SUPPORT times the others: (n_queries, n_concepts).
        lexical=False leaves the lexical channel out (a fusion that weighs it 0)."""
        n = len(texts)
        out = {
            "label": self._best([b.labels.score(vectors) for b in self.blocks], n),
            "description": self._best([b.descriptions.score(vectors) for b in self.blocks], n),
        }
        if lexical:
            out["lexical"] = self._best([b.lexical.score(texts) for b in self.blocks if b.lexical is not None], n)
        return out

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
        fused = w.fuse(self.channels(title_vectors, titles, lexical=bool(w.lexical)))
        with_description = description_vectors is not None and has_description is not None and has_description.any()
        rows = np.flatnonzero(has_description) if with_description else np.zeros(0, dtype=np.int64)
        if self.head is not None and w.head:
            alone = np.ones(len(titles), dtype=bool)
            alone[rows] = False
            fused[alone] += w.head * self.head(title_vectors)[alone]
        if rows.size:
            fused[rows] += w.posting * self.posting(description_vectors[rows])
        return fused
