"""The Tagger: ranks ESCO occupations for job postings with a named model."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import langid
from .config import models_dir
from .encoders import DEFAULT_ENCODER, Encoder, get_encoder
from .errors import ConfigError
from .esco import load_taxonomy
from .index import DENSE_DIMS, Block, ConceptIndex, Projection, Views, Weights, encode_views
from .models import AUTO, BY_LANGUAGE, MODELS, ModelSpec, resolve
from .postings import Posting, as_posting, description_lead
from .taxonomy import PIVOT, Labels, Taxonomy
from .text import lead
from .trained import TrainedModel

# Occupation descriptions are indexed by their lead: the first sentence or two define the occupation.
OCC_DESCRIPTION_CHARS = 300
INDEX_CONFIG = {"occupation_description_chars": OCC_DESCRIPTION_CHARS, "label_variants": "v1"}


@dataclass(frozen=True)
class Prediction:
    uri: str
    label: str  # preferred label in the model's language, English when it has none
    label_en: str
    isco_code: str
    isco_label: str
    score: float
    confidence: float | None = None  # calibrated probability that this is the right occupation (trained models)

    def to_dict(self) -> dict:
        return dict(self.__dict__)  # dataclasses.asdict deep-copies: a tenth of the CLI's time on titles


def detect_language(posting: Posting) -> str:
    """The posting's given language, else the one detected from its title and the start of its description."""
    return posting.language or langid.detect(posting.title + " " + posting.description[:200])


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


class Tagger:
    """Tags postings with ESCO occupations. Models load on first use and share one encoder and language blocks.

    Texts are encoded, then projected onto ``dense_dims`` principal directions of the English ESCO vectors
    (``embed``); every channel and trained head works in that space.

    A model trained with ``escotag train`` (found in ``models``, default ESCOTAG_MODELS or ESCOTAG_HOME/models)
    adds its classifier head and calibrated confidences; ``trained=False`` ignores trained models.

    >>> tagger = Tagger()
    >>> tagger.tag(["Softwareentwickler"], model="auto", topk=3)[0][0].label
    """

    def __init__(
        self,
        taxonomy: Taxonomy | str | Path | None = None,
        encoder: Encoder | str = DEFAULT_ENCODER,
        weights: Weights | None = None,
        progress: bool = True,
        models: str | Path | None = None,
        trained: bool = True,
        dense_dims: int = DENSE_DIMS,
    ) -> None:
        if not isinstance(taxonomy, Taxonomy):
            taxonomy = load_taxonomy(taxonomy)
        self.taxonomy = taxonomy
        self.encoder = get_encoder(encoder) if isinstance(encoder, str) else encoder
        self.weights = weights or Weights()
        self.progress = progress
        self.models_dir = Path(models) if models is not None else models_dir()
        self.use_trained = trained
        self.dense_dims = min(dense_dims, self.encoder.dim)
        self._projection: Projection | None = None
        self._trained: dict[str, TrainedModel | None] = {}
        self._blocks: dict[str, Block] = {}
        self._indices: dict[str, ConceptIndex] = {}
        self._lock = threading.RLock()
        self._descriptions: dict[str, list[tuple[str, str, str, str, str]]] = {}

    # ---- models -------------------------------------------------------------------------------
    def available_models(self) -> list[str]:
        """Models whose language has ESCO data in this taxonomy."""
        have = set(self.taxonomy.languages)
        return [name for name, spec in MODELS.items() if set(spec.languages) <= have]

    def spec(self, model: str) -> ModelSpec:
        name = resolve(model)
        available = ", ".join(self.available_models())
        if name == AUTO:
            raise ConfigError(f"'auto' routes each posting to a model; name one of {available} here")
        if name not in self.available_models():
            raise ConfigError(f"model {name!r} has no ESCO data here; available: {available}")
        return MODELS[name]

    # ---- vector space -------------------------------------------------------------------------
    @property
    def space(self) -> str:
        """The vector space's id (encoder and projection): trained heads only fit the space they learned in."""
        return self.encoder.id if self.dense_dims >= self.encoder.dim else f"{self.encoder.id}+pca{self.dense_dims}"

    @property
    def projection(self) -> Projection | None:
        """The projection fitted on this taxonomy's English label and description vectors (None: full vectors)."""
        with self._lock:
            if self._projection is None and self.dense_dims < self.encoder.dim:
                views = taxonomy_views(self.taxonomy, PIVOT)
                vectors = [encode_views(v, self.encoder, self._index_meta, PIVOT, kind)
                           for v, kind in zip(views, ("labels", "descriptions"), strict=True)]
                self._projection = Projection.fit(np.concatenate(vectors), self.dense_dims)
            return self._projection

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of texts in the tagger's space (encoded, projected, unit length)."""
        vectors = self.encoder.encode(texts)
        projection = self.projection
        return projection(vectors) if projection is not None else vectors

    @property
    def _index_meta(self) -> dict:
        return {"taxonomy": self.taxonomy.content_hash, "config": INDEX_CONFIG}

    def block(self, lang: str) -> Block:
        """The shared index block of one ESCO language (built and cached on first use)."""
        with self._lock:
            if lang not in self._blocks:
                labels, descriptions = taxonomy_views(self.taxonomy, lang)
                self._blocks[lang] = Block.build(lang, labels, descriptions, len(self.taxonomy), self.encoder,
                                                 self._index_meta, self.projection)
            return self._blocks[lang]

    def trained(self, model: str) -> TrainedModel | None:
        """The model's trained parts when escotag train has saved usable ones, else None (untrained)."""
        spec = self.spec(model)
        if not (self.use_trained and spec.trainable):
            return None
        with self._lock:
            if spec.name not in self._trained:
                self._trained[spec.name] = TrainedModel.load(self.models_dir / spec.name, self.taxonomy,
                                                             self.space)
            return self._trained[spec.name]

    def require_calibrated(self, models: Iterable[str]) -> None:
        """ConfigError unless every one of these models is trained (min_confidence needs its confidences)."""
        untrained = sorted({name for name in models if self.trained(name) is None})
        if untrained:
            raise ConfigError(f"min_confidence needs calibrated confidences, and {', '.join(untrained)} "
                              "is not trained: run escotag train (En is never trained; use EnV2)")

    def index(self, model: str) -> ConceptIndex:
        """The loaded index of a model (built and cached on first use), with its head when trained."""
        spec = self.spec(model)
        with self._lock:
            if spec.name not in self._indices:
                blocks = [self.block(lang) for lang in spec.languages]
                trained = self.trained(spec.name)
                if trained is None:
                    index = ConceptIndex(blocks, len(self.taxonomy), self.weights)
                else:
                    index = ConceptIndex(blocks, len(self.taxonomy), trained.weights(self.weights),
                                         trained.head.logits)
                self._indices[spec.name] = index
            return self._indices[spec.name]

    def load(self, models: Iterable[str] | None = None) -> None:
        """Load (building where needed) these models, by default all available ones."""
        for name in models if models is not None else self.available_models():
            self.index(name)

    def route(self, posting: Posting) -> str:
        """The model 'auto' picks for a posting: its (given or detected) language's, else English."""
        routed = BY_LANGUAGE.get(detect_language(posting), BY_LANGUAGE["en"])
        return routed if routed in self.available_models() else BY_LANGUAGE["en"]

    # ---- tagging ------------------------------------------------------------------------------
    def tag(self, items: Sequence[object], model: str = AUTO, topk: int = 5,
            min_confidence: float | None = None) -> list[list[Prediction]]:
        """Top-k occupations for each item (a title string, a dict with title/description, or a Posting).

        min_confidence drops predictions whose calibrated confidence is below it (trained models only), so an
        empty list marks a posting to route to a person.
        """
        return [preds for preds, _ in self.tag_with_models(items, model, topk, min_confidence=min_confidence)]

    def tag_with_models(
        self, items: Sequence[object], model: str | Sequence[str] = AUTO, topk: int = 5,
        min_score: float | None = None, min_confidence: float | None = None,
    ) -> list[tuple[list[Prediction], str]]:
        """Like tag, with the model that answered each item. model may also name one model per item."""
        if topk < 1:
            raise ConfigError(f"topk must be at least 1, got {topk}")
        if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
            raise ConfigError(f"min_confidence must lie between 0 and 1, got {min_confidence}")
        postings = [as_posting(item) for item in items]
        requested = [model] * len(postings) if isinstance(model, str) else list(model)
        if len(requested) != len(postings):
            raise ConfigError(f"{len(requested)} model names for {len(postings)} items")
        named = {name: resolve(name) for name in set(requested)}
        concrete = {name: self.spec(n).name for name, n in named.items() if n != AUTO}
        routed = [concrete.get(name) or self.route(p) for p, name in zip(postings, requested, strict=True)]
        out: list[tuple[list[Prediction], str] | None] = [None] * len(postings)
        if min_confidence is not None:
            self.require_calibrated(routed)
        for name in dict.fromkeys(routed):
            rows = [i for i, r in enumerate(routed) if r == name]
            scores, has_description = self._scores([postings[i] for i in rows], name)
            trained = self.trained(name)
            probs = trained.calibration.probabilities(scores, has_description) if trained else None
            top = self._top(scores, probs, name, topk, min_score, min_confidence)
            for row, preds in zip(rows, top, strict=True):
                out[row] = (preds, name)
        return out  # type: ignore[return-value]

    def scores(self, postings: Sequence[Posting], model: str) -> np.ndarray:
        """Fused scores (n_postings, n_occupations) of one model."""
        return self._scores(postings, model)[0]

    def _scores(self, postings: Sequence[Posting], model: str) -> tuple[np.ndarray, np.ndarray]:
        index = self.index(model)
        titles = [p.title for p in postings]
        leads = [description_lead(p.description, p.title) if p.description else "" for p in postings]
        has_description = np.array([bool(d) for d in leads])
        vectors = self.embed(titles + [d for d in leads if d])
        description_vectors = np.zeros_like(vectors[: len(titles)])
        description_vectors[has_description] = vectors[len(titles):]
        return index.score(vectors[: len(titles)], titles, description_vectors, has_description), has_description

    def _described(self, lang: str) -> list[tuple[str, str, str, str, str]]:
        """Per occupation, the fields of its Prediction other than score and confidence."""
        if lang not in self._descriptions:
            self._descriptions[lang] = [
                (o.uri, o.label(lang), o.label("en"), o.isco_code, self.taxonomy.isco_label(o.isco_code))
                for o in self.taxonomy.occupations
            ]
        return self._descriptions[lang]

    def _top(self, scores: np.ndarray, probs: np.ndarray | None, model: str, topk: int, min_score: float | None,
             min_confidence: float | None) -> list[list[Prediction]]:
        k = min(topk, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        values = np.take_along_axis(scores, top, 1)
        order = np.argsort(-values, axis=1, kind="stable")
        top = np.take_along_axis(top, order, 1)
        values = np.take_along_axis(values, order, 1).astype(np.float64)  # thresholds compare unrounded values
        top_scores = np.round(values, 6)
        keep = np.ones(top.shape, dtype=bool)
        if min_score is not None:
            keep &= values >= min_score
        top_probs = None
        if probs is not None:
            confidences = np.take_along_axis(probs, top, 1).astype(np.float64)
            top_probs = np.round(confidences, 6)
            if min_confidence is not None:
                keep &= confidences >= min_confidence
        elif min_confidence is not None:
            keep[:] = False
        keep = np.logical_and.accumulate(keep, axis=1)  # a ranked list stops at its first dropped prediction
        described = self._described(MODELS[model].language)
        out = []
        for i, row in enumerate(top.tolist()):
            scores_i = top_scores[i].tolist()
            probs_i = top_probs[i].tolist() if top_probs is not None else [None] * k
            preds = []
            for j, score, confidence, kept in zip(row, scores_i, probs_i, keep[i].tolist(), strict=True):
                if not kept:
                    break
                preds.append(Prediction(*described[j], score, confidence))
            out.append(preds)
        return out
