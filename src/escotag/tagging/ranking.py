"""What a ranking answers — a Prediction per occupation — and the one rule by which a caller's thresholds cut a
ranked list, whichever door (Python, CLI, HTTP, Spark) the posting came through.

The rule: the top ``topk`` occupations by score, then each prediction judged on its own — dropped when its score is
below ``min_score`` or its calibrated confidence below ``min_confidence`` (or it has none) — so a list keeps its
order by score and may skip a rank. Each on its own, because an ensemble's confidence is the mean of its pipelines'
calibrated probabilities and need not fall with the fused score: an occupation the ensemble is sure of is shown even
when one ranked above it is not. A rule's prediction (``source == "rule"``) is a person's decision and always kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import ConfigError


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
    """One posting's answer, as every door serialises it: its ranked predictions, the model that answered and the
    posting's language as routing took it (the given one, else the detected one under auto, else the model's)."""

    predictions: list[Prediction]
    model: str
    language: str


@dataclass(frozen=True)
class Thresholds:
    """How much of a ranked list a caller wants; checked once, where it is made."""

    topk: int = 5
    min_score: float | None = None
    min_confidence: float | None = None

    def __post_init__(self) -> None:
        if self.topk < 1:
            raise ConfigError(f"topk must be at least 1, got {self.topk}")
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"min_confidence must lie between 0 and 1, got {self.min_confidence}")

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
