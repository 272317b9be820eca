"""Concept folds: ESCO occupations split into CONCEPT_FOLDS parts by their URI, so that training can hold whole
concepts out (every text of theirs, in every language) and an evaluation can score only those (``escotag finetune
--holdout-concepts``, ``escotag eval esco-xling --concept-fold``). A URI's fold does not depend on the ESCO version
or on the other occupations."""

from __future__ import annotations

import hashlib

from .taxonomy import Taxonomy

CONCEPT_FOLDS = 10


def concept_fold(uri: str) -> int:
    """The fold (1..CONCEPT_FOLDS) of an occupation URI."""
    return int.from_bytes(hashlib.sha256(uri.encode()).digest()[:8], "big") % CONCEPT_FOLDS + 1


def concepts_in_fold(taxonomy: Taxonomy, fold: int) -> set[int]:
    """Positions of the taxonomy's occupations in this fold (1..CONCEPT_FOLDS)."""
    return {i for i, occupation in enumerate(taxonomy.occupations) if concept_fold(occupation.uri) == fold}


def fold_name(fold: int) -> str:
    """How manifests and results name a fold: ``3/10``."""
    return f"{fold}/{CONCEPT_FOLDS}"
