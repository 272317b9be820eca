"""sentence-transformers models (optional ``torch`` extra): any hub id or local folder, on CUDA when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..settings import get_settings
from .base import BatchedEncoder


def default_device() -> str:
    """ESCOTAG_DEVICE (``cpu``, ``cuda``, ``cuda:1``…) when set to anything but ``auto``; else 'cuda' when torch
    sees a GPU, else 'cpu'."""
    wanted = get_settings().device.strip() or "auto"
    if wanted != "auto" and not wanted.startswith("cuda"):
        return wanted
    if wanted == "auto" and not Path("/dev/nvidiactl").exists():
        return "cpu"  # no NVIDIA driver: no need to import torch (~0.5 GB) to learn that
    try:
        import torch
    except ImportError:
        if wanted == "auto":
            return "cpu"
        raise ConfigError(f"ESCOTAG_DEVICE={wanted} needs torch: pip install 'escotag[torch]'") from None
    if wanted != "auto":
        if not torch.cuda.is_available():
            raise ConfigError(f"ESCOTAG_DEVICE={wanted}, but torch sees no CUDA device")
        return wanted
    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEncoder(BatchedEncoder):
    """A sentence-transformers model by local path or hub name; fp16 on CUDA. Texts are sorted by length inside
    each call (sentence-transformers does it per encode call), so padding stays small."""

    def __init__(self, name_or_path: str, device: str | None = None, name: str | None = None,
                 max_seq_length: int | None = None) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError(
                f"encoder {name_or_path!r} needs sentence-transformers: pip install 'escotag[torch]'"
            ) from exc
        device = device or default_device()
        self._model = SentenceTransformer(str(name_or_path), device=device)
        if max_seq_length:
            self._model.max_seq_length = max_seq_length
        if device.startswith("cuda"):
            self._model.half()
        self.device = device
        dimension = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension  # renamed in sentence-transformers 6
        self.dim = int(dimension())
        self.name = name or f"st:{name_or_path}"
        self.id = f"st:{os.path.basename(os.path.normpath(str(name_or_path)))}"
        self.batch_size = 1024 if device.startswith("cuda") else 64

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(texts, batch_size=min(len(texts), 256), convert_to_numpy=True,
                                     normalize_embeddings=True)
        return vectors.astype(np.float32)
