"""The Tagger: ranks ESCO occupations for job postings with a named model."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import langid
from .config import esco_dir
from .encoders import DEFAULT_ENCODER, Encoder, get_encoder
from .errors import ConfigError
from .index import Block, ConceptIndex, Views, Weights
from .models import AUTO, BY_LANGUAGE, MODELS, ModelSpec, resolve
from .postings import Posting, as_posting, description_lead
from .taxonomy import Labels, Taxonomy, load_taxonomy
from .text import lead

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

    >>> tagger = Tagger()
    >>> tagger.tag(["Softwareentwickler"], model="auto", topk=3)[0][0].label
    """

    def __init__(
        self,
        taxonomy: Taxonomy | str | Path | None = None,
        encoder: Encoder | str = DEFAULT_ENCODER,
        weights: Weights | None = None,
        progress: bool = True,
    ) -> None:
        if not isinstance(taxonomy, Taxonomy):
            taxonomy = load_taxonomy(taxonomy if taxonomy is not None else esco_dir())
        self.taxonomy = taxonomy
        self.encoder = get_encoder(encoder) if isinstance(encoder, str) else encoder
        self.weights = weights or Weights()
        self.progress = progress
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

    def index(self, model: str) -> ConceptIndex:
        """The loaded index of a model (built and cached on first use)."""
        spec = self.spec(model)
        with self._lock:
            if spec.name not in self._indices:
                blocks = [self.block(lang) for lang in spec.languages]
                self._indices[spec.name] = ConceptIndex(blocks, len(self.taxonomy), self.weights)
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
    def tag(self, items: Sequence[object], model: str = AUTO, topk: int = 5) -> list[list[Prediction]]:
        """Top-k occupations for each item (a title string, a dict with title/description, or a Posting)."""
        return [preds for preds, _ in self.tag_with_models(items, model, topk)]

    def tag_with_models(
        self, items: Sequence[object], model: str | Sequence[str] = AUTO, topk: int = 5,
        min_score: float | None = None,
    ) -> list[tuple[list[Prediction], str]]:
        """Like tag, with the model that answered each item. model may also name one model per item."""
        if topk < 1:
            raise ConfigError(f"topk must be at least 1, got {topk}")
        postings = [as_posting(item) for item in items]
        requested = [model] * len(postings) if isinstance(model, str) else list(model)
        if len(requested) != len(postings):
            raise ConfigError(f"{len(requested)} model names for {len(postings)} items")
        named = {name: resolve(name) for name in set(requested)}
        concrete = {name: self.spec(n).name for name, n in named.items() if n != AUTO}
        routed = [concrete.get(name) or self.route(p) for p, name in zip(postings, requested, strict=True)]
        out: list[tuple[list[Prediction], str] | None] = [None] * len(postings)
        for name in dict.fromkeys(routed):
            rows = [i for i, r in enumerate(routed) if r == name]
            scores = self.scores([postings[i] for i in rows], name)
            for row, preds in zip(rows, self._top(scores, name, topk, min_score), strict=True):
                out[row] = (preds, name)
        return out  # type: ignore[return-value]

    def scores(self, postings: Sequence[Posting], model: str) -> np.ndarray:
        """Fused scores (n_postings, n_occupations) of one model."""
        index = self.index(model)
        titles = [p.title for p in postings]
        leads = [description_lead(p.description, p.title) if p.description else "" for p in postings]
        has_description = np.array([bool(d) for d in leads])
        vectors = self.encoder.encode(titles + [d for d in leads if d])
        description_vectors = np.zeros_like(vectors[: len(titles)])
        description_vectors[has_description] = vectors[len(titles):]
        return index.score(vectors[: len(titles)], titles, description_vectors, has_description)

    def _top(self, scores: np.ndarray, model: str, topk: int, min_score: float | None) -> list[list[Prediction]]:
        k = min(topk, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        lang = MODELS[model].language
        out = []
        for row, cand in zip(scores, top, strict=True):
            order = cand[np.argsort(-row[cand], kind="stable")]
            preds = []
            for j in order:
                score = float(row[j])
                if min_score is not None and score < min_score:
                    break
                occ = self.taxonomy.occupations[j]
                preds.append(Prediction(occ.uri, occ.label(lang), occ.label("en"), occ.isco_code,
                                        self._isco_en.get(occ.isco_code, ""), round(score, 6)))
            out.append(preds)
        return out
