"""The Tagger: ranks ESCO occupations for job postings with a named model."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import langid
from .config import esco_dir, models_dir
from .encoders import DEFAULT_ENCODER, Encoder, get_encoder
from .errors import ConfigError
from .index import Block, ConceptIndex, Views, Weights
from .models import AUTO, BY_LANGUAGE, MODELS, ModelSpec, resolve
from .postings import Posting, as_posting, description_lead
from .taxonomy import Labels, Taxonomy, load_taxonomy
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
        return asdict(self)


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
    ) -> None:
        if not isinstance(taxonomy, Taxonomy):
            taxonomy = load_taxonomy(taxonomy if taxonomy is not None else esco_dir())
        self.taxonomy = taxonomy
        self.encoder = get_encoder(encoder) if isinstance(encoder, str) else encoder
        self.weights = weights or Weights()
        self.progress = progress
        self.models_dir = Path(models) if models is not None else models_dir()
        self.use_trained = trained
        self._trained: dict[str, TrainedModel | None] = {}
        self._blocks: dict[str, Block] = {}
        self._indices: dict[str, ConceptIndex] = {}
        self._lock = threading.RLock()
        self._isco_en = {o.isco_code: taxonomy.isco_label(o.isco_code) for o in taxonomy.occupations}

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

    def block(self, lang: str) -> Block:
        """The shared index block of one ESCO language (built and cached on first use)."""
        with self._lock:
            if lang not in self._blocks:
                labels, descriptions = taxonomy_views(self.taxonomy, lang)
                meta = {"taxonomy": self.taxonomy.content_hash, "config": INDEX_CONFIG}
                self._blocks[lang] = Block.build(lang, labels, descriptions, len(self.taxonomy), self.encoder, meta)
            return self._blocks[lang]

    def trained(self, model: str) -> TrainedModel | None:
        """The model's trained parts when escotag train has saved usable ones, else None (untrained)."""
        spec = self.spec(model)
        if not (self.use_trained and spec.trainable):
            return None
        with self._lock:
            if spec.name not in self._trained:
                self._trained[spec.name] = TrainedModel.load(self.models_dir / spec.name, self.taxonomy,
                                                             self.encoder.id)
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
        vectors = self.encoder.encode(titles + [d for d in leads if d])
        description_vectors = np.zeros_like(vectors[: len(titles)])
        description_vectors[has_description] = vectors[len(titles):]
        return index.score(vectors[: len(titles)], titles, description_vectors, has_description), has_description

    def _top(self, scores: np.ndarray, probs: np.ndarray | None, model: str, topk: int, min_score: float | None,
             min_confidence: float | None) -> list[list[Prediction]]:
        k = min(topk, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        lang = MODELS[model].language
        out = []
        for i, (row, cand) in enumerate(zip(scores, top, strict=True)):
            order = cand[np.argsort(-row[cand], kind="stable")]
            preds = []
            for j in order:
                score = float(row[j])
                confidence = float(probs[i, j]) if probs is not None else None
                if min_score is not None and score < min_score:
                    break
                if min_confidence is not None and (confidence is None or confidence < min_confidence):
                    break
                occ = self.taxonomy.occupations[j]
                preds.append(Prediction(occ.uri, occ.label(lang), occ.label("en"), occ.isco_code,
                                        self._isco_en.get(occ.isco_code, ""), round(score, 6),
                                        None if confidence is None else round(confidence, 6)))
            out.append(preds)
        return out
