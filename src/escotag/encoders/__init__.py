"""Sentence encoders: texts in, L2-normalised float32 vectors out.

An encoder has a ``name`` (what ``--encoder`` takes) and a stable ``id`` (part of every index cache key).
Encoders are process-wide singletons (``get_encoder``), so every model in a process shares one copy of the
weights.
"""

from __future__ import annotations

import functools

from ..errors import ConfigError
from .base import BATCH_SIZE, BatchedEncoder, Encoder, l2_normalize

DEFAULT_ENCODER = "use"
# Older spellings that name the same encoder.
_SYNONYMS = {"use-multilingual-v3": "use", "e5:query": "e5"}


@functools.cache
def get_encoder(name: str = DEFAULT_ENCODER) -> Encoder:
    """The process-wide encoder of this name: ``use``, ``e5`` (``e5:passage``), ``e5ft`` (e5 with the shipped
    occupation adapter; ``e5ft:<adapter folder>`` for another), ``mpnet``, or ``st:<path or hub name>``."""
    name = _SYNONYMS.get(name, name)
    if name == "use":
        from .use import UniversalSentenceEncoder

        return UniversalSentenceEncoder()
    if name.split(":")[0] == "e5ft":
        from .adapter import SHIPPED
        from .e5 import E5Encoder

        return E5Encoder("query", adapter=name.partition(":")[2] or SHIPPED)
    if name.startswith("e5"):
        from .e5 import E5Encoder

        return E5Encoder(name.partition(":")[2] or "query")
    if name == "mpnet":
        from .mpnet import mpnet_encoder

        return mpnet_encoder()
    if name.startswith("st:"):
        from .sentence_transformers import SentenceTransformerEncoder

        return SentenceTransformerEncoder(name[3:])
    raise ConfigError(f"unknown encoder {name!r}: use 'use', 'e5', 'e5ft', 'mpnet' or 'st:<model path or name>'")


__all__ = ["BATCH_SIZE", "DEFAULT_ENCODER", "BatchedEncoder", "Encoder", "get_encoder", "l2_normalize"]
