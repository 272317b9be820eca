"""On-disk cache of encoded texts under ESCOTAG_HOME, verified on load and written atomically."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..settings import get_settings
from ..storage import load_arrays, load_or_build, save_arrays
from .base import Encoder

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


def texts_digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def cache_key(encoder_id: str, texts: Sequence[str], meta: dict) -> str:
    blob = json.dumps([FORMAT_VERSION, encoder_id, texts_digest(texts), meta], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _load(folder: Path, key: str, n: int) -> np.ndarray | None:
    found = load_arrays(folder, key, single="vectors")
    if found is None:
        return None
    vectors = found[0]["vectors"]
    if vectors.shape[0] != n or vectors.dtype != np.float32:
        raise ValueError(f"unexpected array {vectors.shape} {vectors.dtype}")
    return vectors


def cached_encode(encoder: Encoder, texts: Sequence[str], meta: dict, progress: bool = True) -> np.ndarray:
    """Vectors of texts, from the cache when a verified entry exists, else encoded and stored.

    meta (taxonomy hash, language, index config…) goes into the key and the manifest.
    """
    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    key = cache_key(encoder.id, texts, meta)
    folder = get_settings().home / "index" / key

    def encode() -> np.ndarray:
        if progress:
            log.info("encoding %s texts with %s (%s; not in the cache %s)", f"{len(texts):,}", encoder.name,
                     ", ".join(f"{k} {str(v)[:12]}" for k, v in meta.items() if k in ("lang", "views", "taxonomy")),
                     get_settings().home)
        return encoder.encode(texts, progress=progress)

    def store(vectors: np.ndarray) -> None:
        save_arrays(folder, {"vectors": vectors}, {"key": key, "count": int(vectors.shape[0]),
                                                   "dim": int(vectors.shape[1]), "format": FORMAT_VERSION, **meta})

    return load_or_build(f"index cache {folder}", lambda: _load(folder, key, len(texts)), encode, store)
