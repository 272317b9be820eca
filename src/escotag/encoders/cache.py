"""On-disk cache of encoded texts under ESCOTAG_HOME, verified on load and written atomically."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..settings import get_settings
from ..storage import load_arrays, save_arrays
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
    try:
        found = load_arrays(folder, key, single="vectors")
        if found is None:
            return None
        vectors = found[0]["vectors"]
        if vectors.shape[0] != n or vectors.dtype != np.float32:
            raise ValueError(f"unexpected array {vectors.shape} {vectors.dtype}")
        return vectors
    except (OSError, ValueError, KeyError) as exc:
        log.warning("index cache %s is stale or corrupt (%s): rebuilding it", folder, exc)
        return None


def _store(folder: Path, key: str, vectors: np.ndarray, meta: dict) -> None:
    manifest = {"key": key, "count": int(vectors.shape[0]), "dim": int(vectors.shape[1]), "format": FORMAT_VERSION,
                **meta}
    try:
        save_arrays(folder, {"vectors": vectors}, manifest)
    except OSError as exc:
        log.warning("could not write index cache %s (%s); continuing without it", folder, exc)


def cached_encode(encoder: Encoder, texts: Sequence[str], meta: dict, progress: bool = True) -> np.ndarray:
    """Vectors of texts, from the cache when a verified entry exists, else encoded and stored.

    meta (taxonomy hash, language, index config…) goes into the key and the manifest.
    """
    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    key = cache_key(encoder.id, texts, meta)
    folder = get_settings().home / "index" / key
    vectors = _load(folder, key, len(texts))
    if vectors is None:
        if progress:
            log.info("encoding %s texts with %s (%s; not in the cache %s)", f"{len(texts):,}", encoder.name,
                     ", ".join(f"{k} {str(v)[:12]}" for k, v in meta.items() if k in ("lang", "views", "taxonomy")),
                     get_settings().home)
        vectors = encoder.encode(texts, progress=progress)
        _store(folder, key, vectors, meta)
    return vectors
