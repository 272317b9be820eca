"""The texts and the cache behind the int8 graphs' smoothing factors (``transformer_graph.Int8GraphBuilder``):
ESCO texts from the snapshot inside the package, factors kept under ESCOTAG_HOME/encoders/int8 per model."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from ..settings import get_settings
from ..storage import load_arrays, load_or_build, save_arrays

STEP = 16  # every 16th occupation's texts calibrate


def calibration_texts(languages: tuple[str, ...] | None = None) -> list[str]:
    """Preferred labels in these languages (default: every language of the packaged snapshot) and English
    description leads (300 characters) of every 16th occupation: ~1,700 texts, ~380 for English alone."""
    from ..esco.snapshot import embedded_path, read_snapshot

    texts = []
    for occupation in read_snapshot(embedded_path()).occupations[::STEP]:
        texts += [labels.preferred for lang, labels in sorted(occupation.labels.items())
                  if languages is None or lang in languages]
        if "en" in occupation.labels:
            texts.append(occupation.labels["en"].description[:300])
    return [t for t in texts if t]


def digest(factors: dict[str, np.ndarray]) -> str:
    """A short hash of the factors, for the encoder's id (and so every cache key of its vectors)."""
    return hashlib.sha256(b"".join(factors[k].tobytes() for k in sorted(factors))).hexdigest()[:12]


def calibrated(model: str, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The factors for this model (its weights' identity), built once and kept."""
    folder = get_settings().home / "encoders" / "int8" / hashlib.sha256(model.encode()).hexdigest()[:16]

    def load() -> dict[str, np.ndarray] | None:
        found = load_arrays(folder, model)
        return found[0] if found else None

    return load_or_build(f"int8 calibration of {model}", load, build,
                         lambda factors: save_arrays(folder, factors, {"key": model}))
