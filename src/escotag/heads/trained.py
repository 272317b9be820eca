"""A trained model's learned parts on disk: the classifier head, fused weight and calibration, with a manifest.

A model folder holds ``head.npz`` and ``manifest.json`` (data, languages, config, seed, dev-split metrics and the
head's checksum). Loading verifies the checksum and that the taxonomy and encoder match; anything else is
refused with a warning and the tagger falls back to the untrained model.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import LeakageError
from ..esco.taxonomy import Taxonomy
from ..index.concepts import Weights
from ..storage import file_sha, write_atomically
from ..text.normalization import normalize
from .head import Head, log_softmax

log = logging.getLogger(__name__)
FORMAT_VERSION = 3  # 3: the head reads titles alone, its weight chosen on real titles (2: also descriptions)
HEAD_FILE = "head.npz"
MANIFEST_FILE = "manifest.json"


def title_hash(title: str) -> int:
    """A 64-bit fingerprint of a normalised title (to tell later whether an evaluated title was trained on)."""
    return int.from_bytes(hashlib.sha256(normalize(title).encode()).digest()[:8], "little")


@dataclass(frozen=True)
class Calibration:
    """Temperatures that turn fused scores into probabilities (softmax over occupations), fitted on ESCO dev."""

    titles: float
    postings: float

    def probabilities(self, scores: np.ndarray, has_description: np.ndarray | None = None) -> np.ndarray:
        temps = np.full((len(scores), 1), self.titles, dtype=np.float32)
        if has_description is not None:
            temps[has_description] = self.postings
        return np.exp(log_softmax(scores / temps))


@dataclass(frozen=True)
class LabelledTitles:
    """The labelled posting titles a model learned from, kept as extra label views of their occupations: a title a
    person decided is answered with that decision next time (the head alone, one example among ESCO's tens of
    thousands at its title weight, did not flip a single corrected title on the test slice)."""

    owner: np.ndarray  # occupation columns
    texts: list[str]
    vectors: np.ndarray  # in the pipeline's space

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class TrainedModel:
    name: str
    languages: tuple[str, ...]  # every language whose text reached a learned part
    head: Head
    fusion: dict[str, float]  # the head's Weights field ("head": its weight on a title)
    calibration: Calibration
    manifest: dict = field(default_factory=dict)
    labelled_titles: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    examples: LabelledTitles | None = None

    def weights(self, base: Weights) -> Weights:
        """base with this model's head weights."""
        return replace(base, **self.fusion)

    def check_languages(self, allowed: Sequence[str], purpose: str) -> None:
        """LeakageError unless every language this model learned from is allowed."""
        extra = sorted(set(self.languages) - set(allowed))
        if extra:
            raise LeakageError(f"{self.name} learned from {', '.join(extra)}, which {purpose} does not allow "
                               f"(allowed: {', '.join(allowed)})")

    def check_titles(self, titles: Sequence[str], purpose: str) -> None:
        """LeakageError when any of these titles was among the labelled postings this model learned from."""
        if len(self.labelled_titles) == 0:
            return
        seen = np.isin(np.array([title_hash(t) for t in titles], dtype=np.uint64), self.labelled_titles)
        if seen.any():
            raise LeakageError(f"{self.name} was trained on {int(seen.sum())} of the {len(titles)} titles of "
                               f"{purpose}; evaluate a model trained without them")

    def concept_scores(self, uris: Sequence[str], taxonomy: Taxonomy):
        """A scorer for another list of concepts: an occupation takes its column; a concept the head has no class
        for (an ISCO group) a neutral score, the row's mean over the listed occupations, so the head neither
        lifts nor sinks it. (The log-sum-exp of its occupations was tried first: it lifts every group above
        its best member and lost on MELO, usa_q_en_c_en MRR .645 vs .681.)"""
        columns = np.array([taxonomy.position.get(u, -1) for u in uris])
        known = columns >= 0

        def score(vectors: np.ndarray) -> np.ndarray:
            logits = self.head.logits(vectors)[:, columns[known]]
            out = np.empty((len(vectors), len(uris)), dtype=np.float32)
            out[:, known] = logits
            out[:, ~known] = logits.mean(axis=1, keepdims=True) if logits.size else 0.0
            return out

        return score

    # ---- disk -------------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)

        def write(tmp: Path) -> None:
            examples = self.examples or LabelledTitles(np.zeros(0, np.int64), [], np.zeros((0, 0), np.float32))
            np.savez(tmp / HEAD_FILE, weights=self.head.weights, bias=self.head.bias,
                     labelled_titles=self.labelled_titles, example_owner=examples.owner,
                     example_texts=np.array(examples.texts, dtype=str), example_vectors=examples.vectors)
            manifest = {**self.manifest, "format": FORMAT_VERSION, "model": self.name,
                        "languages": list(self.languages), "head_scale": self.head.scale,
                        "fusion": self.fusion,
                        "calibration": {"titles": self.calibration.titles, "postings": self.calibration.postings},
                        "sha256": {HEAD_FILE: file_sha(tmp / HEAD_FILE)}}
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))

        write_atomically(folder, write)
        return folder

    @classmethod
    def load(cls, folder: str | Path, taxonomy: Taxonomy, space: str, weights: Weights | None = None
             ) -> TrainedModel | None:
        """The model in folder, or None (with a warning when one is there but unusable). weights: the channel
        weights it will fuse with; its calibration was fitted with its own (a manifest without them: the defaults)."""
        folder = Path(folder)
        if not (folder / MANIFEST_FILE).exists():
            return None
        try:
            m = json.loads((folder / MANIFEST_FILE).read_text())
            if m.get("format") != FORMAT_VERSION:
                raise ValueError(f"format {m.get('format')} (this escotag reads {FORMAT_VERSION})")
            if m.get("taxonomy") != taxonomy.content_hash:
                raise ValueError("trained on another ESCO taxonomy version; retrain with escotag train")
            if m.get("encoder") != space:
                raise ValueError(f"trained in vector space {m.get('encoder')}, not {space}")
            channels = m.get("channels", Weights().channels())
            if weights is not None and channels != weights.channels():
                raise ValueError(f"trained with channel weights {channels}, not {weights.channels()}; retrain with "
                                 "escotag train")
            if file_sha(folder / HEAD_FILE) != m["sha256"][HEAD_FILE]:
                raise ValueError("checksum mismatch")
            with np.load(folder / HEAD_FILE, allow_pickle=False) as z:
                weights, bias, titles = z["weights"], z["bias"], z["labelled_titles"]
                examples = None
                if "example_owner" in z.files and len(z["example_owner"]):
                    examples = LabelledTitles(z["example_owner"], z["example_texts"].tolist(),
                                              z["example_vectors"])
            if weights.shape[1] != len(taxonomy) or bias.shape != (len(taxonomy),):
                raise ValueError(f"head shape {weights.shape} does not fit {len(taxonomy)} occupations")
            cal = m["calibration"]
            fusion = {k: float(v) for k, v in m["fusion"].items()}
            calibration = Calibration(float(cal["titles"]), float(cal["postings"]))
            return cls(m["model"], tuple(m["languages"]), Head(weights, bias, float(m["head_scale"])), fusion,
                       calibration, m, titles, examples)
        except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
            log.warning("trained model in %s is unusable (%s); using the untrained model", folder, exc)
            return None
