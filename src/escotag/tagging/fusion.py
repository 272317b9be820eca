"""Fusion: one model's scores from several pipelines' scores (and calibrated probabilities)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def standardise(scores: np.ndarray) -> np.ndarray:
    """Each row's scores as z-scores over its candidates, so pipelines on different scales can be added."""
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return (scores - mean) / np.maximum(std, 1e-9)


def fuse(scores: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """A weighted sum of standardised score matrices; a single pipeline's scores are returned as they are."""
    if len(scores) == 1:
        return scores[0]
    return sum(w * standardise(s) for s, w in zip(scores, weights, strict=True)).astype(np.float32)


def fuse_outputs(outputs: Sequence[tuple[tuple[np.ndarray, np.ndarray | None], float]]
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Pipelines' ((scores, probabilities), weight): fused scores, and the weighted mean of the probabilities when
    every pipeline has them (None otherwise)."""
    scores = fuse([s for (s, _), _ in outputs], [w for _, w in outputs])
    if any(p is None for (_, p), _ in outputs):
        return scores, None
    probs = outputs[0][0][1] if len(outputs) == 1 else sum(w * p for (_, p), w in outputs)
    return scores, probs
