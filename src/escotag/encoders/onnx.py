"""sentence-transformers models (mean pooling) on ONNX Runtime, with int8 weights: the CPU path of ``mpnet``.

The model is exported once from its sentence-transformers folder (torch and onnx are needed for that step only)
and cached next to it; later processes need only onnxruntime and tokenizers. Dynamic int8 quantisation covers
the attention and the feed-forward input projections. The feed-forward *output* projections stay float: their
inputs carry outlier activations that one scale per tensor cannot hold (all-mpnet-base-v2, 512 real titles:
mean cosine to the float model 0.857 with them quantised, 0.987 without; README, Encoders).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..storage import write_atomically
from .base import BatchedEncoder

log = logging.getLogger(__name__)
MODEL_FILE = "model-int8.onnx"
QUANTISED = ("/attention/", "/intermediate/")  # name parts of the MatMul nodes given int8 weights


def _export(source: Path, tmp: Path) -> None:
    try:
        import onnx
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise ConfigError(f"exporting {source.name} to ONNX once needs torch, transformers, onnx and onnxruntime: "
                          "pip install 'escotag[mpnet]'") from exc
    model = AutoModel.from_pretrained(source).eval()
    sample = AutoTokenizer.from_pretrained(source)(["a title", "a somewhat longer job title"], padding=True,
                                                   return_tensors="pt")
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "last_hidden_state": {0: "batch", 1: "tokens"}}
    # the exporter's and the quantiser's advice is about graphs in general, not about this one
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (sample["input_ids"], sample["attention_mask"]), str(tmp / "model.onnx"),
                          input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    graph = onnx.load(str(tmp / "model.onnx"), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    skipped = [n.name for n in graph.node if n.op_type == "MatMul"
               and not (any(i in weights for i in n.input) and any(p in n.name for p in QUANTISED))]
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(str(tmp / "model.onnx"), str(tmp / MODEL_FILE), weight_type=QuantType.QInt8,
                         per_channel=True, reduce_range=True, op_types_to_quantize=["MatMul"],
                         nodes_to_exclude=skipped)
    finally:
        logging.disable(logging.NOTSET)
    (tmp / "model.onnx").unlink()
    (tmp / "tokenizer.json").write_bytes((source / "tokenizer.json").read_bytes())


def cpu_session(model: str | bytes) -> object:
    """An ONNX Runtime session on the CPU, one intra-op thread per core this process may use."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


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
    # short labels run 63/s instead of 104/s).
    batch_size = 256  # texts per progress step

    def __init__(self, folder: Path, name: str, id: str, max_tokens: int) -> None:
        try:
            import onnxruntime  # noqa: F401  (checked here, used by cpu_session)
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ConfigError(f"encoder {name!r} on the CPU needs onnxruntime and tokenizers: "
                              "pip install 'escotag[mpnet]'") from exc
        self._session = cpu_session(str(folder / MODEL_FILE))
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()  # the saved tokenizer pads every text to a fixed length
        self._tokenizer.enable_truncation(max_tokens)
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        self.name, self.id, self.max_tokens = name, id, max_tokens

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, encoding in enumerate(self._tokenizer.encode_batch(texts)):
            ids = np.array([encoding.ids], dtype=np.int64)
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]
            out[i] = hidden[0].mean(axis=0)
        return out
