"""On-disk cache of built index blocks and projections under ESCOTAG_HOME/blocks, verified on load and written
atomically: a model loads in a fraction of a second instead of fitting its lexical channel and pruning its label
views again in every process (1-2 s per language block on two cores)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from ..settings import get_settings
from ..storage import load_arrays, load_or_build, save_arrays
from .channels import DENSE_DEDUP_COSINE, LEXICAL_MAX_DF, LEXICAL_NGRAMS, Projection
from .concepts import Block

T = TypeVar("T")
FORMAT_VERSION = 1
# what building does with the vectors and texts; a change makes new entries
BUILD = {"lexical_max_df": LEXICAL_MAX_DF, "lexical_ngrams": list(LEXICAL_NGRAMS), "dedup_cosine": DENSE_DEDUP_COSINE}


def _cached(kind: str, meta: dict, build: Callable[[], T], dump: Callable[[T], dict[str, np.ndarray]],
            restore: Callable[[dict[str, np.ndarray]], T]) -> T:
    blob = json.dumps([FORMAT_VERSION, kind, BUILD, meta], sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:24]
    folder = get_settings().home / "blocks" / key

    def load() -> T | None:
        found = load_arrays(folder, key)
        return None if found is None else restore(found[0])

    return load_or_build(f"block cache {folder}", load, build, lambda value: save_arrays(
        folder, dump(value), {"key": key, "kind": kind, "format": FORMAT_VERSION, **BUILD, **meta}))


def cached_block(meta: dict, lang: str, n_concepts: int, build: Callable[[], Block]) -> Block:
    """The block that build() makes, from the cache when an entry for meta (encoder, space, taxonomy, language…)
    verifies. Arrays read back are the ones written, so a cached block scores exactly as a fresh one."""
    return _cached("block", {**meta, "lang": lang}, build, Block.arrays,
                   lambda arrays: Block.from_arrays(lang, n_concepts, arrays))


def cached_projection(meta: dict, fit: Callable[[], Projection]) -> Projection:
    """The projection that fit() makes, from the cache when an entry for meta verifies."""
    return _cached("projection", meta, fit, lambda p: {"basis": p.basis}, lambda arrays: Projection(arrays["basis"]))


def projection_id(projection: Projection | None) -> str:
    """A short id of a projection's basis (a block's vectors are only valid with the basis they were made in)."""
    return "none" if projection is None else hashlib.sha256(projection.basis.tobytes()).hexdigest()[:16]
