"""Where escotag finds its data and keeps its caches, from environment variables."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

ESCO_DOWNLOAD_HINT = (
    "download the ESCO classification as CSV (https://esco.ec.europa.eu/en/use-esco/download: "
    "version 1.2, 'classification', format CSV, the languages you need) and unzip it there, "
    "or point ESCOTAG_ESCO_DIR at the folder or the zip"
)


def default_esco_candidates() -> list[Path]:
    """The folders tried, in order, when ESCOTAG_ESCO_DIR is not set."""
    return [Path("../shared/esco"), Path("data/esco")]


def esco_dir() -> Path:
    """The ESCO CSV export folder (or zip): ESCOTAG_ESCO_DIR, else ../shared/esco, else ./data/esco."""
    env = os.environ.get("ESCOTAG_ESCO_DIR")
    if env:
        path = Path(env).expanduser()
        if not path.exists():
            raise ConfigError(f"ESCOTAG_ESCO_DIR={env} does not exist; {ESCO_DOWNLOAD_HINT}")
        return path
    candidates = default_esco_candidates()
    for path in candidates:
        if path.exists():
            return path
    tried = " or ".join(str(p.resolve()) for p in candidates)
    raise ConfigError(f"no ESCO data found (ESCOTAG_ESCO_DIR is not set; tried {tried}); {ESCO_DOWNLOAD_HINT}")


def home_dir() -> Path:
    """Cache folder for built indices: ESCOTAG_HOME, default ~/.cache/escotag."""
    return Path(os.environ.get("ESCOTAG_HOME", "~/.cache/escotag")).expanduser()


def models_dir() -> Path:
    """Trained model artifacts (``escotag train``): ESCOTAG_MODELS, default ESCOTAG_HOME/models."""
    env = os.environ.get("ESCOTAG_MODELS")
    return Path(env).expanduser() if env else home_dir() / "models"
