"""What a ranking answers — a Prediction per occupation —, how scores become a ranked list (``Ranker``: top-k,
exclude rules, a title rule's occupation first) and the one rule by which a caller's thresholds cut it, whichever
door (Python, CLI, HTTP, Spark) the posting came through.

The rule: the top ``topk`` occupations by score, then each prediction judged on its own — dropped when its score is
below ``min_score`` or its calibrated confidence below ``min_confidence`` (or it has none) — so a list keeps its
order by score and may skip a rank. Each on its own, because an ensemble's confidence is the mean of its pipelines'
calibrated probabilities and need not fall with the fused score: an occupation the ensemble is sure of is shown even
when one ranked above it is not. A rule's prediction (``source == "rule"``) is a person's decision and always kept.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError
from ..esco.taxonomy import Taxonomy


@dataclass(frozen=True)
class Prediction:
    uri: str
    label: str  # preferred label in the model's language, English when it has none
    label_en: str
    isco_code: str
    isco_label: str
    score: float
    confidence: float | None = None  # calibrated probability that this is the right occupation (trained models)
    source: str = "model"  # "rule" when a user's title rule put it first

    def to_dict(self) -> dict:
        return dict(self.__dict__)  # dataclasses.asdict deep-copies: a tenth of the CLI's time on titles


class Tagged(NamedTuple):
    """One posting's answer, as every door serialises it: its ranked predictions, the model that answered, the
    posting's language as routing took it (the given one, else the detected one under auto, else the model's) and
    the path that answered: cross-lingual when the model's index holds no labels in that language."""

    predictions: list[Prediction]
    model: str
    language: str
    cross_lingual: bool

    def to_dict(self) -> dict:
        """The fields every door writes for a posting (the API names the predictions 'occupations')."""
        return {"model": self.model, "language": self.language, "cross_lingual": self.cross_lingual,
                "predictions": [p.to_dict() for p in self.predictions]}


@dataclass(frozen=True)
class Thresholds:
    """How much of a ranked list a caller wants, and whether its confidences are needed (``review_below`` queues a
    posting whose top confidence is below it for a person; it cuts nothing). Checked once, where it is made."""

    topk: int = 5
    min_score: float | None = None
    min_confidence: float | None = None
    review_below: float | None = None

    def __post_init__(self) -> None:
        if self.topk < 1:
            raise ConfigError(f"topk must be at least 1, got {self.topk}")
        for name in ("min_confidence", "review_below"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must lie between 0 and 1, got {value}")

    @property
    def needs_confidence(self) -> bool:
        """Answers must carry calibrated confidences (trained models only)."""
        return self.min_confidence is not None or self.review_below is not None

    @property
    def filters(self) -> bool:
        return self.min_score is not None or self.min_confidence is not None

    def keeps(self, p: Prediction) -> bool:
        if p.source == "rule":
            return True
        if self.min_score is not None and p.score < self.min_score:
            return False
        return self.min_confidence is None or (p.confidence is not None and p.confidence >= self.min_confidence)

    def cut(self, ranked: Iterable[Prediction]) -> list[Prediction]:
        """The first topk of a list ranked by score, then each prediction these thresholds drop left out."""
        top = list(ranked)[: self.topk]
        return [p for p in top if self.keeps(p)] if self.filters else top


class Ranker:
    """Turns one model's scores (and calibrated probabilities) into ranked Predictions, labelled in the model's
    language."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self._lock = threading.Lock()
        self._fields: dict[str, list[tuple[str, str, str, str, str]]] = {}

    def rank(self, scores: np.ndarray, probs: np.ndarray | None, lang: str, topk: int,
             rules: Sequence[tuple[str | None, set[str]]] = ()) -> list[list[Prediction]]:
        """Each row's topk occupations by score, best first. ``rules``: per row what the users' rules matched (a
        title rule's occupation, put first; the occupations exclude rules remove, never listed). Modifies
        scores and probs in place."""
        for k, (_, excluded) in enumerate(rules):
            if excluded:
                columns = [self.taxonomy.position[u] for u in excluded]
                scores[k, columns] = -np.inf
                if probs is not None:
                    probs[k, columns] = 0.0
        top = self._top(scores, probs, lang, topk)
        for k, (first, _) in enumerate(rules):
            if first is not None:
                top[k] = self._ruled(self.taxonomy.position[first], scores[k], probs, lang, top[k])
        return top

    def _fields_of(self, lang: str) -> list[tuple[str, str, str, str, str]]:
        """Per occupation, the fields of its Prediction other than score and confidence."""
        with self._lock:
            if lang not in self._fields:
                self._fields[lang] = [
                    (o.uri, o.label(lang), o.label("en"), o.isco_code, self.taxonomy.isco_label(o.isco_code))
                    for o in self.taxonomy.occupations
                ]
            return self._fields[lang]

    def _ruled(self, column: int, scores: np.ndarray, probs: np.ndarray | None, lang: str,
               preds: list[Prediction]) -> list[Prediction]:
        """A title rule's occupation first (the model's score kept, confidence 1 where the model gives them),
        then the model's others."""
        score = float(scores[column])
        rule = Prediction(*self._fields_of(lang)[column], round(score, 6) if np.isfinite(score) else 0.0,
                          None if probs is None else 1.0, source="rule")
        return [rule, *[p for p in preds if p.uri != rule.uri]]

    def _top(self, scores: np.ndarray, probs: np.ndarray | None, lang: str, topk: int) -> list[list[Prediction]]:
        """Each row's topk occupations by score, best first; one an exclude rule removed (-inf) never listed."""
        k = min(topk, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        values = np.take_along_axis(scores, top, 1)
        order = np.argsort(-values, axis=1, kind="stable")
        top = np.take_along_axis(top, order, 1)
        values = np.take_along_axis(values, order, 1)
        top_scores = np.round(values.astype(np.float64), 6)
        keep = np.isfinite(values)
        top_probs = None if probs is None else np.round(np.take_along_axis(probs, top, 1).astype(np.float64), 6)
        fields = self._fields_of(lang)
        out = []
        for i, row in enumerate(top.tolist()):
            scores_i = top_scores[i].tolist()
            probs_i = top_probs[i].tolist() if top_probs is not None else [None] * k
            preds = []
            for j, score, confidence, kept in zip(row, scores_i, probs_i, keep[i].tolist(), strict=True):
                if not kept:
                    break
                preds.append(Prediction(*fields[j], score, confidence))
            out.append(preds)
        return out
