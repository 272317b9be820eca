"""Files escotag writes and checks: folders swapped into place whole, contents verified by SHA-256, and the one
"load it, else build and save it" rule of every disk cache (vectors, index blocks, evaluation heads)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np

MANIFEST = "manifest.json"
log = logging.getLogger(__name__)
T = TypeVar("T")
_cache_only = threading.local()


class NotCached(Exception):
    """Raised instead of building, inside ``cache_only``: something is not in the cache yet."""


@contextmanager
def cache_only() -> Iterator[None]:
    """On this thread, ``load_or_build`` raises NotCached instead of building (is everything built already?)."""
    _cache_only.on = True
    try:
        yield
    finally:
        _cache_only.on = False


def file_sha(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_atomically(folder: Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp) on a fresh temporary folder next to folder, then swap it into place (OSError on failure)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        write(tmp)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_arrays(folder: Path, arrays: dict[str, np.ndarray], manifest: dict) -> None:
    """Arrays as NPY files (name.npy) beside a manifest that records their SHA-256, swapped into place whole."""

    def write(tmp: Path) -> None:
        shas = {}
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array, allow_pickle=False)
            shas[name] = file_sha(tmp / f"{name}.npy")
        (tmp / MANIFEST).write_text(json.dumps({**manifest, "sha256": shas}, indent=1, sort_keys=True))

    write_atomically(folder, write)


def load_arrays(folder: Path, key: str, single: str | None = None) -> tuple[dict[str, np.ndarray], dict] | None:
    """The arrays and manifest that save_arrays wrote with this ``key`` in its manifest; None when the folder has
    no manifest. ValueError (stale key, checksum mismatch) or OSError when it cannot be trusted.

    single: the array that a manifest giving one checksum string (written before checksums per array) is of."""
    if not (folder / MANIFEST).exists():
        return None
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"unreadable manifest: {exc}") from exc
    if manifest.get("key") != key:
        raise ValueError("manifest does not match")
    shas = manifest.get("sha256")
    if single is not None and isinstance(shas, str):
        shas = {single: shas}
    if not isinstance(shas, dict):
        raise ValueError("manifest lists no checksums")
    arrays = {}
    for name, sha in shas.items():
        if file_sha(folder / f"{name}.npy") != sha:
            raise ValueError(f"checksum mismatch ({name})")
        arrays[name] = np.load(folder / f"{name}.npy", allow_pickle=False)
    return arrays, manifest


def load_or_build(what: str, load: Callable[[], T | None], build: Callable[[], T], save: Callable[[T], None]) -> T:
    """What load() finds, else build()'s value, saved. An entry that cannot be trusted (ValueError, OSError,
    KeyError from load) is logged and rebuilt; a cache that cannot be written only costs the rebuild next time."""
    problem = None
    try:
        found = load()
        if found is not None:
            return found
    except (OSError, ValueError, KeyError) as exc:
        problem = exc
    if getattr(_cache_only, "on", False):
        raise NotCached(what) from problem
    if problem is not None:
        log.warning("%s is stale or corrupt (%s): rebuilding it", what, problem)
    value = build()
    try:
        save(value)
    except OSError as exc:
        log.warning("could not write %s (%s); continuing without it", what, exc)
    return value
