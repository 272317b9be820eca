"""Where escotag keeps its caches and trained models, from environment variables (ESCO: ``escotag.esco``)."""

from __future__ import annotations

import os
from pathlib import Path


def home_dir() -> Path:
    """Cache folder for built indices: ESCOTAG_HOME, default ~/.cache/escotag."""
    return Path(os.environ.get("ESCOTAG_HOME", "~/.cache/escotag")).expanduser()


def models_dir() -> Path:
    """Trained model artifacts (``escotag train``): ESCOTAG_MODELS, default ESCOTAG_HOME/models."""
    env = os.environ.get("ESCOTAG_MODELS")
    return Path(env).expanduser() if env else home_dir() / "models"
