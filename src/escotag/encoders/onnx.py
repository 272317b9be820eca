"""ONNX Runtime on the CPU for the transformer encoders (e5, mpnet): sessions, and batches of texts run in chunks of
one token length, never padded, so that a text's vector does not depend on the texts beside it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..settings import usable_cores

CHUNK = 64  # texts per ONNX Runtime call: the fastest on titles and 300-character leads here (e5)
# and at most this many tokens: a run's activations (attention scores, feed-forward) then stay in a core's cache.
# One core, texts of 256 tokens, 512 against 4,096 tokens a run: mpnet 5.8 against 5.0 texts/s, e5 16.9 against
# 13.3; 64-token texts 83 against 74 (docs/speed.md)
TOKENS = 512


def cpu_session(model: str | bytes, threads: int | None = None) -> object:
    """An ONNX Runtime session on the CPU with this many intra-op threads (default: one per usable core)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or usable_cores()
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def length_chunks(ids: list[list[int]], chunk: int = CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Token-id sequences of one length together, at most ``chunk`` (and TOKENS tokens) at a time, shortest first:
    each chunk's input rows and ids (n, length). Nothing is padded, so a text's vector does not depend on the texts
    beside it."""
    lengths = np.array([len(seq) for seq in ids], dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    for length in np.unique(lengths):
        same = order[lengths[order] == length]
        step = max(1, min(chunk, TOKENS // int(length)))
        for start in range(0, len(same), step):
            rows = same[start : start + step]
            yield rows, np.array([ids[i] for i in rows], dtype=np.int64).reshape(len(rows), int(length))


def run_in_chunks(runs: ThreadPoolExecutor, run: Callable[[np.ndarray], np.ndarray], ids: list[list[int]],
                  dim: int) -> np.ndarray:
    """run(chunk of ids) -> vectors [n, dim] over every length chunk of ids, the chunks one per core at once (each
    run on one thread: a run's many small operations cost less without sharing each one out); rows as in ids."""
    out = np.empty((len(ids), dim), dtype=np.float32)
    chunks = list(length_chunks(ids))
    # ONNX Runtime releases the GIL while it runs
    for (rows, _), vectors in zip(chunks, runs.map(run, [c for _, c in chunks]), strict=True):
        out[rows] = vectors
    return out
