"""Ranking metrics (MRR, Acc@k) and calibration error, shared by evaluation, tuning and training."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

KS = (1, 5, 10)


def metrics(ranks: Sequence[int | None]) -> tuple[float, dict[int, float]]:
    """MRR and Acc@k over all queries; a rank is 1-based, None when the gold was not ranked at all."""
    if not ranks:
        return 0.0, {k: 0.0 for k in KS}
    r = np.array([x if x else np.inf for x in ranks], dtype=float)
    return float(np.mean(1.0 / r)), {k: float(np.mean(r <= k)) for k in KS}


def gold_ranks(scores: np.ndarray, gold: Sequence[Sequence[int]]) -> list[int | None]:
    """Rank of the best-scored gold concept in each row (ties count against the gold)."""
    ranks: list[int | None] = []
    for row, hits in zip(scores, gold, strict=True):
        if len(hits) == 0:
            ranks.append(None)
            continue
        best = row[list(hits)].max()
        ties = int((row == best).sum()) - int((row[list(hits)] == best).sum())
        ranks.append(int((row > best).sum()) + ties + 1)
    return ranks


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by their share of predictions."""
    if len(confidence) == 0:
        return 0.0
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)
