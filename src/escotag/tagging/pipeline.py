"""One encoder's scoring pipeline: its vector space, per-language index blocks, models and trained heads.

Kept in one module (~290 lines): its parts share one lock and the caches it guards (projection, blocks with and
without the rules, indices, trained heads), and the rules swap rebuilds them together.

A Tagger holds one Pipeline per encoder of its plan (``ensemble.py``) and fuses their scores (``fusion.py``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..encoders import Encoder
from ..encoders.cache import cached_encode
from ..esco.taxonomy import PIVOT, Taxonomy
from ..heads.trained import TrainedModel
from ..index.cache import cached_block, cached_projection, projection_id
from ..index.channels import Projection
from ..index.concepts import Block, ConceptIndex, Weights
from ..index.views import OCC_DESCRIPTION_CHARS, Views, taxonomy_views
from ..text.postings import Posting, clean_title, description_lead, has_description, whole_posting
from .models import ModelSpec, model_spec
from .rules import Rules

INDEX_CONFIG = {"occupation_description_chars": OCC_DESCRIPTION_CHARS, "label_variants": "v1"}


class Candidates(NamedTuple):
    """Another set of concepts for one pipeline to rank (an evaluation's), made by ``Pipeline.candidates``."""

    index: ConceptIndex
    trained: TrainedModel | None


def encoder_folder(encoder: Encoder) -> str:
    """The encoder's folder name under the models folder (its name, made safe for a path)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", encoder.name).strip("_") or "encoder"


class Pipeline:
    """Scores postings with one encoder. Texts are encoded, then projected onto ``dense_dims`` principal
    directions of the English ESCO vectors (``embed``; the encoder's own ``dense_dims`` by default); every
    channel and trained head works in that space. Index blocks and models load on first use.

    Trained heads (``escotag train``) are read from ``models_dir`` (the models folder's sub-folder named for the
    encoder); ``trained=False`` ignores them. Users' label rules (``rules``) join the blocks' label views.
    """

    def __init__(self, taxonomy: Taxonomy, encoder: Encoder, weights: Weights | None = None, progress: bool = True,
                 models_dir: Path | None = None, trained: bool = True, dense_dims: int | None = None,
                 rules: Rules | None = None) -> None:
        self.taxonomy = taxonomy
        self.encoder = encoder
        self.weights = weights or Weights()
        self.progress = progress
        self.models_dir = models_dir
        self.use_trained = trained and models_dir is not None
        dims = dense_dims or getattr(encoder, "dense_dims", None) or encoder.dim
        self.dense_dims = min(dims, encoder.dim)
        self._projection: Projection | None = None
        self.rules = rules or Rules()
        self._trained: dict[str, TrainedModel | None] = {}
        self._esco_blocks: dict[str, Block] = {}  # ESCO's views only
        self._blocks: dict[str, Block] = {}  # with the label rules
        self._indices: dict[str, ConceptIndex] = {}
        self._lock = threading.RLock()
        self._rules_lock = threading.Lock()
        self._memo = threading.local()  # remembering's vectors, per thread

    def spec(self, model: str) -> ModelSpec:
        return model_spec(self.taxonomy, model)

    # ---- vector space -------------------------------------------------------------------------------
    @property
    def space(self) -> str:
        """The vector space's id (encoder and projection): trained heads only fit the space they learned in."""
        return self.encoder.id if self.dense_dims >= self.encoder.dim else f"{self.encoder.id}+pca{self.dense_dims}"

    @property
    def projection(self) -> Projection | None:
        """The projection fitted on this taxonomy's English label and description vectors (None: full vectors)."""
        with self._lock:
            if self._projection is None and self.dense_dims < self.encoder.dim:
                self._projection = cached_projection(
                    {"encoder": self.encoder.id, "dims": self.dense_dims, "pivot": PIVOT, **self.index_meta},
                    self._fit_projection)
            return self._projection

    def _fit_projection(self) -> Projection:
        views = taxonomy_views(self.taxonomy, PIVOT)
        kinds = ("labels", "descriptions")
        vectors = [self.encode_views(v, PIVOT, kind) for v, kind in zip(views, kinds, strict=True)]
        return Projection.fit(np.concatenate(vectors), self.dense_dims)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of texts in this pipeline's space (encoded, projected, unit length); those of ``remembering``
        when it holds them all."""
        memo = getattr(self._memo, "vectors", None)
        if memo is not None and texts and all(t in memo for t in texts):
            vectors = np.stack([memo[t] for t in texts])
        else:
            vectors = self.encoder.encode(texts)
        projection = self.projection
        return projection(vectors) if projection is not None else vectors

    @contextmanager
    def remembering(self, texts: Sequence[str]) -> Iterator[None]:
        """Encode texts in one call, and answer ``embed`` from them on this thread until the block ends (a request
        that several models answer is encoded once, not once per model)."""
        unique = list(dict.fromkeys(texts))
        # the encoder's vectors, projected per call as without this block
        self._memo.vectors = dict(zip(unique, self.encoder.encode(unique), strict=True)) if unique else {}
        try:
            yield
        finally:
            self._memo.vectors = None

    def inputs(self, postings: Sequence[Posting]) -> list[str]:
        """The texts ``scores`` encodes for these postings."""
        titles, others, described = self._texts(postings)
        if self.reads_whole_postings:  # a posting read whole is not encoded by its title too
            titles = [t for t, d in zip(titles, described.tolist(), strict=True) if not d]
        return titles + others

    def _texts(self, postings: Sequence[Posting]) -> tuple[list[str], list[str], np.ndarray]:
        """The postings' cleaned titles, the other texts encoded for them (description leads, or the whole posting
        for an encoder that reads postings whole) in posting order, and which postings have one."""
        titles = [clean_title(p.title) for p in postings]
        if self.reads_whole_postings:
            described = np.array([has_description(p) for p in postings], dtype=bool)
            return titles, [whole_posting(titles[i], postings[i].description) for i in np.flatnonzero(described)], \
                described
        leads = [description_lead(p.description, p.title) if p.description else "" for p in postings]
        return titles, [d for d in leads if d], np.array([bool(d) for d in leads], dtype=bool)

    @property
    def index_meta(self) -> dict:
        return {"taxonomy": self.taxonomy.content_hash, "config": INDEX_CONFIG}

    def block(self, lang: str) -> Block:
        """The shared index block of one ESCO language, with the label rules in it (built on first use)."""
        with self._lock:
            if lang not in self._blocks:
                self._blocks[lang] = self._with_rules(self.esco_block(lang), lang, self.rules)
            return self._blocks[lang]

    def esco_block(self, lang: str) -> Block:
        with self._lock:
            if lang not in self._esco_blocks:
                meta = {"encoder": self.encoder.id, "projection": projection_id(self.projection), **self.index_meta}
                self._esco_blocks[lang] = cached_block(
                    meta, lang, len(self.taxonomy),
                    lambda: self.build_block(lang, *taxonomy_views(self.taxonomy, lang), len(self.taxonomy)))
            return self._esco_blocks[lang]

    def encode_views(self, views: Views, lang: str, kind: str, meta: dict | None = None) -> np.ndarray:
        """Encoder vectors of one language's label or description views, cached on disk (keyed by the texts and
        meta, by default the taxonomy and index config)."""
        return cached_encode(self.encoder, views.texts, {**(meta or self.index_meta), "lang": lang, "views": kind})

    def build_block(self, lang: str, labels: Views, descriptions: Views, n_concepts: int, meta: dict | None = None
                    ) -> Block:
        """An index block of these views in this pipeline's space (ESCO's, or another candidate set's)."""
        return Block.build(lang, labels, descriptions, n_concepts, self.encode_views(labels, lang, "labels", meta),
                           self.encode_views(descriptions, lang, "descriptions", meta), self.projection)

    def _with_rules(self, block: Block, lang: str, rules: Rules) -> Block:
        pairs = [(self.taxonomy.position[uri], label) for uri, label in rules.labels_for(lang)]
        if not pairs:
            return block
        views = Views.from_pairs(pairs)
        # keyed without the language: a label rule for every language is encoded once
        vectors = cached_encode(self.encoder, views.texts, {**self.index_meta, "views": "rule-labels"},
                                progress=False)
        return block.with_labels(views, vectors, self.projection)

    def set_rules(self, rules: Rules) -> None:
        """Use these rules' labels from now on: loaded blocks and models are rebuilt aside, then swapped in, so
        requests in flight finish on the old ones."""
        with self._rules_lock:
            with self._lock:
                esco, loaded = dict(self._esco_blocks), list(self._indices)
            blocks = {lang: self._with_rules(b, lang, rules) for lang, b in esco.items()}
            indices = {name: self._new_index(name, [blocks[lang] for lang in self.spec(name).languages])
                       for name in loaded}
            with self._lock:
                self.rules, self._blocks, self._indices = rules, blocks, indices

    # ---- models --------------------------------------------------------------------------------------
    def trained(self, model: str) -> TrainedModel | None:
        """The model's trained parts when escotag train has saved usable ones, else None (untrained)."""
        spec = self.spec(model)
        if not (self.use_trained and spec.trainable):
            return None
        with self._lock:
            if spec.name not in self._trained:
                self._trained[spec.name] = TrainedModel.load(self.models_dir / spec.name, self.taxonomy,
                                                             self.space, self.weights)
            return self._trained[spec.name]

    def index(self, model: str) -> ConceptIndex:
        """The loaded index of a model (built and cached on first use), with its head when trained."""
        spec = self.spec(model)
        with self._lock:
            if spec.name not in self._indices:
                self._indices[spec.name] = self._new_index(spec.name, [self.block(lang) for lang in spec.languages])
            return self._indices[spec.name]

    def _new_index(self, name: str, blocks: list[Block]) -> ConceptIndex:
        trained = self.trained(name)
        if trained is not None and trained.examples:  # labelled titles it learned from answer like labels
            ex = trained.examples
            blocks = [blocks[0].with_labels(Views(ex.owner, ex.texts), ex.vectors), *blocks[1:]]
        return self._assemble(blocks, len(self.taxonomy), trained)

    def _assemble(self, blocks: list[Block], n_concepts: int, trained: TrainedModel | None,
                  head: Callable[[np.ndarray], np.ndarray] | None = None) -> ConceptIndex:
        """An index of these blocks, with the trained parts' channel weights and head (default its own)."""
        if trained is None:
            return ConceptIndex(blocks, n_concepts, self.weights)
        return ConceptIndex(blocks, n_concepts, trained.weights(self.weights), head or trained.head.logits)

    def candidates(self, views: dict[str, tuple[Views, Views]], n_concepts: int, meta: dict,
                   trained: TrainedModel | None = None, head: Callable[[np.ndarray], np.ndarray] | None = None
                   ) -> Candidates:
        """Another set of concepts (an evaluation's), indexed the way a model's own occupations are: per
        language its label and description views (keyed in the vector cache by meta), the trained parts'
        weights, and their head (or ``head``, scores over these concepts)."""
        blocks = [self.build_block(lang, labels, descriptions, n_concepts, meta)
                  for lang, (labels, descriptions) in views.items()]
        return Candidates(self._assemble(blocks, n_concepts, trained, head), trained)

    def esco_candidates(self, lang: str, trained: TrainedModel | None = None) -> Candidates:
        """Every occupation from one ESCO language's texts alone, with these trained parts."""
        return Candidates(self._assemble([self.esco_block(lang)], len(self.taxonomy), trained), trained)

    def forget_models(self) -> None:
        """Drop the loaded models and trained parts (index blocks stay): the next use reads the models folder again,
        as after escotag train."""
        with self._lock:
            self._trained.clear()
            self._indices.clear()

    def load(self, models: Iterable[str]) -> None:
        for name in models:
            self.index(name)

    # ---- scoring -------------------------------------------------------------------------------------
    def scores(self, postings: Sequence[Posting], model: str, candidates: Candidates | None = None
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """Fused scores (n_postings, n_concepts) of one model, and its calibrated probabilities when trained.
        candidates: another set of concepts to rank (``candidates``); default the model's own occupations."""
        index, trained = candidates or (self.index(model), self.trained(model))
        titles, others, described = self._texts(postings)
        if self.reads_whole_postings:
            scores = self._whole_scores(titles, others, described, index)
        else:
            vectors = self.embed(titles + others)
            description_vectors = np.zeros_like(vectors[: len(titles)])
            description_vectors[described] = vectors[len(titles):]
            scores = index.score(vectors[: len(titles)], titles, description_vectors, described)
        probs = trained.calibration.probabilities(scores, described) if trained else None
        return scores, probs

    @property
    def reads_whole_postings(self) -> bool:
        """The encoder reads a posting with a description as one text (mpnet), the way it was trained."""
        return bool(getattr(self.encoder, "reads_whole_postings", False))

    def _whole_scores(self, titles: list[str], whole_texts: list[str], described: np.ndarray, index: ConceptIndex
                      ) -> np.ndarray:
        """Titles scored as usual; a posting with a description is one text (whole_texts, in posting order)
        scored on the label channel alone."""
        whole, alone = np.flatnonzero(described), np.flatnonzero(~described)
        vectors = self.embed(whole_texts + [titles[i] for i in alone])
        scores = np.empty((len(titles), index.n_concepts), dtype=np.float32)
        if whole.size:
            scores[whole] = index.labels(vectors[: whole.size])
        if alone.size:
            scores[alone] = index.score(vectors[whole.size :], [titles[i] for i in alone])
        return scores
