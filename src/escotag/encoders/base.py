"""What every encoder is: texts in, L2-normalised float32 vectors out, each distinct text encoded once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

# Texts per encoder call (and progress step): a few hundred keep each call's working memory small.
BATCH_SIZE = 256


@runtime_checkable
class Encoder(Protocol):
    """``name`` is what users type (``--encoder``); ``id`` pins the weights and is part of every cache key."""

    name: str
    id: str
    dim: int

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray: ...


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class BatchedEncoder:
    """Shared batching: each distinct text is encoded once per call, in batches, with an optional progress bar."""

    name = "abstract"
    id = "abstract"
    dim = 0
    dense_dims: int | None = None  # project onto this many principal directions (None: keep every dimension)
    batch_size = BATCH_SIZE
    # it computes with numpy's BLAS alone, so threadpoolctl's limits hold its threads (``batch.tagging.workers``)
    threads_follow_blas = False
    # batch texts of similar length together: an encoder that pads a batch to its longest text wastes less
    by_length = False

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        unique = list(dict.fromkeys(texts))
        order = sorted(range(len(unique)), key=lambda i: len(unique[i])) if self.by_length else range(len(unique))
        out = np.empty((len(unique), self.dim), dtype=np.float32)
        bar = tqdm(total=len(unique), desc=f"encoding ({self.name})", unit="text",
                   disable=None if progress else True, leave=False)
        for start in range(0, len(unique), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = l2_normalize(self._encode_batch([unique[i] for i in rows]))
            bar.update(len(rows))
        bar.close()
        if len(unique) == len(texts):
            return out
        where = {text: i for i, text in enumerate(unique)}
        return out[[where[t] for t in texts]]
