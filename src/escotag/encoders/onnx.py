"""sentence-transformers models (mean pooling) on ONNX Runtime, with int8 weights: the CPU path of ``mpnet``.

The model's graph is built once from its sentence-transformers folder (``mpnet_graph``: onnx and safetensors, no
torch) and cached next to it; later processes need only onnxruntime and tokenizers. Dynamic int8 quantisation covers
the attention and the feed-forward input projections. The feed-forward *output* projections stay float: their
inputs carry outlier activations that one scale per tensor cannot hold (all-mpnet-base-v2, 512 real titles:
mean cosine to the float model 0.857 with them quantised, 0.987 without; docs/accuracy.md).
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from ..settings import usable_cores
from ..storage import write_atomically
from .base import BatchedEncoder

log = logging.getLogger(__name__)
MODEL_FILE = "model-int8.onnx"
QUANTISED = ("q", "k", "v", "ao", "fi")  # each layer's linear maps given int8 weights (all but the FFN output)


def _export(source: Path, tmp: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from .mpnet_graph import mpnet_graph

    (tmp / "model.onnx").write_bytes(mpnet_graph(source))
    layers = json.loads((source / "config.json").read_text())["num_hidden_layers"]
    logging.disable(logging.WARNING)  # the quantiser's advice is about graphs in general, not about this one
    try:
        quantize_dynamic(str(tmp / "model.onnx"), str(tmp / MODEL_FILE), weight_type=QuantType.QInt8,
                         per_channel=True, reduce_range=True, op_types_to_quantize=["MatMul"],
                         nodes_to_quantize=[f"l{i}.{name}.mm" for i in range(layers) for name in QUANTISED])
    finally:
        logging.disable(logging.NOTSET)
    (tmp / "model.onnx").unlink()
    (tmp / "tokenizer.json").write_bytes((source / "tokenizer.json").read_bytes())


def cpu_session(model: str | bytes, threads: int | None = None) -> object:
    """An ONNX Runtime session on the CPU with this many intra-op threads (default: one per usable core)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or usable_cores()
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def mean_pooled(session: object, token_ids: list[int]) -> np.ndarray:
    """The mean of the last hidden layer over one text's tokens (run alone: no padding)."""
    ids = np.array([token_ids], dtype=np.int64)
    return session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0].mean(axis=0)


def onnx_model(source: Path, target: Path) -> Path:
    """The int8 ONNX export of a sentence-transformers folder, made once into target (reused afterwards)."""
    if not (target / MODEL_FILE).exists():
        log.info("exporting %s to ONNX with int8 weights into %s (once)", source, target)
        write_atomically(target, lambda tmp: _export(source, tmp))
    return target


class OnnxEncoder(BatchedEncoder):
    """A mean-pooled transformer exported by ``onnx_model``; texts are truncated to max_tokens."""

    # Dynamic quantisation scales activations per tensor, so a text's vector would depend on the texts batched with
    # it; one text per run keeps it the same in the CLI, the service and Spark (postings cost the same this way;
    # short labels run 63/s instead of 104/s). Runs go one per core at once, each on one thread: a run on one
    # text is too small to share out (2 cores: ESCO labels 104 -> 124/s, 400-character leads 39 -> 43/s, the
    # same vectors bit for bit).
    batch_size = 256  # texts per progress step

    def __init__(self, folder: Path, name: str, id: str, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        self._session = cpu_session(str(folder / MODEL_FILE), threads=1)
        self._runs = ThreadPoolExecutor(usable_cores(), thread_name_prefix=f"escotag-{name}")
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()  # the saved tokenizer pads every text to a fixed length
        self._tokenizer.enable_truncation(max_tokens)
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        self.name, self.id, self.max_tokens = name, id, max_tokens

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        ids = [encoding.ids for encoding in self._tokenizer.encode_batch(texts)]
        # ONNX Runtime releases the GIL while it runs
        return np.stack(list(self._runs.map(partial(mean_pooled, self._session), ids)))
