"""Where an interrupted file run stopped: a small JSON file beside the output, replaced atomically after each batch.

It records the input (path, size, modification time), the settings that shape the output, how many input rows
were consumed and where the output's last complete batch ends, so ``escotag tag --resume`` continues a killed run
and produces the same file an uninterrupted run would have.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ConfigError

VERSION = 1


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".escotag-checkpoint.json")


def input_fingerprint(path: Path) -> dict:
    """What identifies the input a run read (a changed file cannot be resumed into the same output)."""
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


@dataclass
class Checkpoint:
    input: dict
    settings: dict
    rows_read: int = 0  # input rows consumed (tagged or skipped), always whole batches until the end
    tagged: int = 0
    skipped: int = 0
    position: int = 0  # the output writer's resume point (bytes for CSV/JSONL, finished parts for Parquet)
    run: str = field(default_factory=lambda: uuid.uuid4().hex)  # keys this run's review queue entries
    version: int = field(default=VERSION)

    def save(self, output: Path) -> None:
        path = checkpoint_path(output)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(asdict(self), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, output: Path) -> Checkpoint | None:
        path = checkpoint_path(output)
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')}")
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path}: not a checkpoint this escotag can resume ({exc})") from exc

    def check_matches(self, input: dict, settings: dict, output: Path) -> None:
        """ConfigError unless the resumed run reads the same input with the same settings."""
        if self.input != input:
            raise ConfigError(f"{output} was started from {self.input['path']} as it was then "
                              f"({self.input['size']} bytes); that input changed or differs: start over with "
                              "--overwrite")
        changed = {k: (self.settings.get(k), v) for k, v in settings.items() if self.settings.get(k) != v}
        if changed:
            what = ", ".join(f"{k} {old!r} then, {new!r} now" for k, (old, new) in changed.items())
            raise ConfigError(f"{output} was started with other settings ({what}): resume with the same "
                              "options, or start over with --overwrite")

    @staticmethod
    def remove(output: Path) -> None:
        checkpoint_path(output).unlink(missing_ok=True)
