"""Synthetic posting descriptions built from ESCO: what a posting says about a job without naming it — an
occupation's description after its lead (the lead names the occupation), and in English a requirements line of a
few of its ESCO skills. Training pairs them with the occupation's label (``escotag finetune --postings``);
``escotag eval esco-xling --queries postings`` queries with those of held-out occupations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..text.normalization import sentences
from .taxonomy import PIVOT, Taxonomy

SKILLS = (3, 8)  # how many of the occupation's skills an English posting lists (from the first 2n: mostly essential)
SEED = 0


@dataclass(frozen=True)
class SyntheticPosting:
    concept: int  # the occupation's position in the taxonomy
    lang: str
    text: str


def read_skill_labels(path: Path, taxonomy: Taxonomy) -> dict[int, list[str]]:
    """Each occupation's ESCO skill labels (essential, then optional) from a CSV of occupationUri, relationType,
    skillLabel (ESCO's occupation-skill relations joined with the skills' labels, e.g.
    ``occupationSkillLabels_en.csv.gz``), by the occupation's position in the taxonomy."""
    import pandas as pd

    table = pd.read_csv(path, usecols=["occupationUri", "relationType", "skillLabel"], dtype=str).dropna()
    table = table.assign(order=(table["relationType"] != "essential").astype(int)).sort_values(
        "order", kind="stable")
    skills: dict[int, list[str]] = {}
    for uri, label in zip(table["occupationUri"], table["skillLabel"], strict=True):
        position = taxonomy.position.get(uri.strip())
        if position is not None:
            skills.setdefault(position, []).append(" ".join(label.split()))
    return skills


def synthetic_postings(taxonomy: Taxonomy, skills: Mapping[int, Sequence[str]] | None = None,
                       languages: Sequence[str] | None = None, only: Set[int] | None = None,
                       leave_out: Set[int] = frozenset(), seed: int = SEED) -> list[SyntheticPosting]:
    """One synthetic posting description per occupation (those in only, default all, but those in leave_out) and
    language (default all) whose description goes beyond its lead or, in English, that has skills; the same ones
    for the same arguments."""
    rng = np.random.default_rng(seed)
    out: list[SyntheticPosting] = []
    for position, occupation in enumerate(taxonomy.occupations):
        if position in leave_out or (only is not None and position not in only):
            continue
        for lang in languages or taxonomy.languages:
            labels = occupation.labels.get(lang)
            if labels is None or not labels.preferred:
                continue
            text = " ".join(sentences(labels.description)[1:])
            own = list((skills or {}).get(position, ())) if lang == PIVOT else []
            if own:
                n = min(len(own), int(rng.integers(SKILLS[0], SKILLS[1] + 1)))
                pool = own[: 2 * n]
                picked = [pool[i] for i in sorted(rng.choice(len(pool), n, replace=False))]
                text = f"{text} Requirements: {', '.join(picked)}.".strip()
            if text:
                out.append(SyntheticPosting(position, lang, text))
    return out
