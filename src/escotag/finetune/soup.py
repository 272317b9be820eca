"""Adapter soups: the mean of adapters fine-tuned from the same base on the same pairs with other batches (random,
or of alike occupations), which read real titles better than either (docs/fine-tuning.md, "A soup of two runs").

Stacking the factors makes the mean exact: mean_i(B_i·A_i) = [B_1 … B_n] / n · [A_1; …; A_n], an adapter whose
rank is the sum of theirs; numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..encoders.adapter import Adapter, save_adapter
from ..errors import ConfigError

# what must agree for the mean to be one adapter that learned the same data (the leakage checks read these)
SAME = ("base_sha256", "base_version", "scale", "esco", "labelled", "holdout_fold", "pairs", "pairs_sha256")
INGREDIENT = ("config", "train_seconds", "loss_first_50", "loss_last_50", "trained_at", "device", "precision")


def average_adapters(folders: Sequence[str | Path], out: str | Path) -> Adapter:
    """Write the mean of these adapters to ``out``; ConfigError unless they share base, scale and training data."""
    if len(folders) < 2:
        raise ConfigError("a soup needs at least two adapters")
    adapters = [Adapter.load(f) for f in folders]
    first = adapters[0]
    for other in adapters[1:]:
        differ = [k for k in SAME if other.manifest.get(k) != first.manifest.get(k)]
        if other.deltas.keys() != first.deltas.keys():
            differ.append("adapted layers")
        if differ:
            raise ConfigError(f"{other.folder} and {first.folder} differ in {', '.join(differ)}: a soup averages "
                              "adapters of the same base, scale and training pairs")
    n = len(adapters)
    deltas = {name: (np.concatenate([a.deltas[name][0] for a in adapters]),
                     np.concatenate([a.deltas[name][1] for a in adapters], axis=1) / n) for name in first.deltas}
    rank = next(iter(deltas.values()))[0].shape[0]
    configs = [a.manifest.get("config", {}) for a in adapters]  # what every run shares (seed, steps…) stays
    config = {k: v for k, v in configs[0].items() if all(c.get(k) == v for c in configs)}
    config |= {"rank": rank, "alpha": first.scale * rank}
    manifest = {k: v for k, v in first.manifest.items() if k in SAME or k in ("base", "base_file", "chunk")}
    manifest |= {"config": config,
                 "train_seconds": round(sum(a.manifest.get("train_seconds", 0.0) for a in adapters), 1),
                 "soup": [{"name": a.folder.name, "sha256": a.digest, **{k: a.manifest.get(k) for k in INGREDIENT}}
                          for a in adapters]}
    save_adapter(Path(out), deltas, manifest)
    return Adapter.load(out)
