"""Transformer encoders on ONNX Runtime's CPU kernels: sessions, batches of texts run in chunks of one token length,
and mpnet (a sentence-transformers folder, mean pooling) with int8 products: the CPU path of ``mpnet``.

mpnet's graph is built once from its sentence-transformers folder (``mpnet_graph``: onnx and safetensors, no
torch), with int8 products whose smoothing factors come from the float32 graph's activations on English ESCO texts
(``transformer_graph.Int8GraphBuilder``), and cached next to the folder; later processes need only onnxruntime and
tokenizers. Each token's activations get their own scale, so texts batch without changing one another's vectors
(the dynamic quantisation used before scaled a whole run, so texts ran one at a time; its feed-forward output
projections stayed float: one scale per run could not hold their outliers).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..settings import usable_cores
from ..storage import write_atomically
from .base import BatchedEncoder

log = logging.getLogger(__name__)
MODEL_FILE = "model-int8.onnx"
FACTORS_FILE = "smoothing.npz"
CHUNK = 64  # texts per ONNX Runtime call: the fastest on titles and 300-character leads here (e5)


def cpu_session(model: str | bytes, threads: int | None = None) -> object:
    """An ONNX Runtime session on the CPU with this many intra-op threads (default: one per usable core)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or usable_cores()
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def length_chunks(ids: list[list[int]], chunk: int = CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Token-id sequences of one length together, at most ``chunk`` at a time, shortest first: each chunk's input
    rows and ids (n, length). Nothing is padded, so a text's vector does not depend on the texts beside it."""
    lengths = np.array([len(seq) for seq in ids], dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    for length in np.unique(lengths):
        same = order[lengths[order] == length]
        for start in range(0, len(same), chunk):
            rows = same[start : start + chunk]
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


def _export(source: Path, tmp: Path) -> None:
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    from .calibration import calibration_texts
    from .mpnet_graph import LINEAR, mpnet_graph
    from .transformer_graph import activation_peaks, smoothing_factors

    layers = json.loads((source / "config.json").read_text())["num_hidden_layers"]
    tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
    tokenizer.no_padding()
    ids = [e.ids for e in tokenizer.encode_batch(calibration_texts(("en",)))]
    feeds = ({"input_ids": chunk, "attention_mask": np.ones_like(chunk)} for _, chunk in length_chunks(ids, 32))
    peaks = activation_peaks(mpnet_graph(source), layers, feeds)
    weights = {k.removeprefix("mpnet."): v for k, v in load_file(str(source / "model.safetensors")).items()}
    by_name = {f"l{i}.{short}": weights[f"encoder.layer.{i}.{name}.weight"]
               for i in range(layers) for short, name in LINEAR.items()}
    factors = smoothing_factors(peaks, by_name, layers)
    np.savez(tmp / FACTORS_FILE, **factors)
    (tmp / MODEL_FILE).write_bytes(mpnet_graph(source, factors))
    (tmp / "tokenizer.json").write_bytes((source / "tokenizer.json").read_bytes())


def onnx_model(source: Path, target: Path) -> Path:
    """mpnet's int8 ONNX graph from a sentence-transformers folder, made once into target (reused afterwards)."""
    if not (target / MODEL_FILE).exists():
        log.info("building %s's ONNX graph with int8 products into %s (once)", source.name, target)
        write_atomically(target, lambda tmp: _export(source, tmp))
    return target


class OnnxEncoder(BatchedEncoder):
    """A mean-pooled transformer built by ``onnx_model``; texts are truncated to max_tokens."""

    batch_size = 256  # texts per progress step
    by_length = True  # texts run in chunks of one token length: sorted first, the chunks are fuller

    def __init__(self, folder: Path, name: str, id: str, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        from .calibration import digest

        self._session = cpu_session(str(folder / MODEL_FILE), threads=1)
        self._runs = ThreadPoolExecutor(usable_cores(), thread_name_prefix=f"escotag-{name}")
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()  # the saved tokenizer pads every text to a fixed length
        self._tokenizer.enable_truncation(max_tokens)
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        with np.load(folder / FACTORS_FILE, allow_pickle=False) as data:
            factors = {name: data[name] for name in data.files}
        self.name, self.id, self.max_tokens = name, f"{id}-{digest(factors)}", max_tokens

    def _mean_pooled(self, chunk: np.ndarray) -> np.ndarray:
        hidden = self._session.run(None, {"input_ids": chunk, "attention_mask": np.ones_like(chunk)})[0]
        return hidden.mean(axis=1)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        ids = [encoding.ids for encoding in self._tokenizer.encode_batch(texts)]
        return run_in_chunks(self._runs, self._mean_pooled, ids, self.dim)
