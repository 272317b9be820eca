"""Training pairs for contrastive fine-tuning: two texts that name the same ESCO occupation.

From ESCO, in every language the taxonomy holds: each other label of a concept with its preferred label
(``synonym``), a concept's labels in a language with its English preferred label (``translation``: the old
system's alignment), and the preferred label with the description's lead (``description``). Synthetic postings
(``posting``, ``esco.synthetic``): what a posting's description says without naming the job, with the preferred
label, so that e5 learns to read the description a tagged posting comes with. From labelled postings (real titles,
review exports, a user's coded postings): the cleaned title with the gold occupation's English preferred label
(``title``); a gold ISCO group has no single label and is skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass

from ..esco.synthetic import synthetic_postings
from ..esco.taxonomy import PIVOT, Taxonomy
from ..text.normalization import label_variants, split_lead
from ..text.postings import clean_title, fold_of

DESCRIPTION_CHARS = 300
TRANSLATED_ALTS = 2  # alternative labels per concept and language also paired with the English preferred label
# Labelled titles are real postings, the input escotag serves, but ~6 % of the pairs: each is seen this many times
# per pass over the pairs.
LABELLED_REPEAT = 3


@dataclass(frozen=True)
class Pair:
    anchor: str
    positive: str
    concept: int  # the occupation's position in the taxonomy (pairs of one concept are not each other's negatives)
    source: str


def esco_pairs(taxonomy: Taxonomy, languages: Sequence[str] | None = None, leave_out: Set[int] = frozenset()
               ) -> list[Pair]:
    """Synonym, translation and description pairs of every occupation in these languages (default: all) but
    those at the positions in leave_out."""
    pairs: list[Pair] = []
    for position, occupation in enumerate(taxonomy.occupations):
        if position in leave_out:
            continue
        english = occupation.labels.get(PIVOT)
        pivot = label_variants(english.preferred)[0] if english else ""
        for lang in languages or taxonomy.languages:
            labels = occupation.labels.get(lang)
            if labels is None or not labels.preferred:
                continue
            preferred = label_variants(labels.preferred)
            head = preferred[0]
            others = [v for v in labels.variants() if v != head]
            pairs += [Pair(v, head, position, "synonym") for v in others]
            if lang != PIVOT and pivot:
                pairs += [Pair(v, pivot, position, "translation") for v in [head, *others[:TRANSLATED_ALTS]]]
            lead = split_lead(labels.description, DESCRIPTION_CHARS)[0]
            if lead:
                pairs.append(Pair(head, lead, position, "description"))
    return pairs


def posting_pairs(taxonomy: Taxonomy, skills: Mapping[int, Sequence[str]] | None = None,
                  languages: Sequence[str] | None = None, leave_out: Set[int] = frozenset()) -> list[Pair]:
    """Each occupation's synthetic posting description (``esco.synthetic``) in each language with its preferred
    label there, but those at the positions in leave_out."""
    return [Pair(p.text, label_variants(taxonomy.occupations[p.concept].labels[p.lang].preferred)[0], p.concept,
                 "posting")
            for p in synthetic_postings(taxonomy, skills, languages, leave_out=leave_out)]


def labelled_pairs(taxonomy: Taxonomy, rows: Sequence[dict], holdout_fold: int | None = None,
                   leave_out: Set[int] = frozenset()) -> list[Pair]:
    """Title pairs of labelled rows whose gold is an occupation, leaving out the rows of holdout_fold and those
    whose gold is at a position in leave_out."""
    folds = fold_of(len(rows)) if holdout_fold is not None else None
    pairs = []
    for i, row in enumerate(rows):
        if folds is not None and folds[i] == holdout_fold:
            continue
        position = taxonomy.position.get(row.get("gold_uri", "").strip())
        title = clean_title(" ".join(str(row.get("title", "")).split()))
        if position is None or position in leave_out or not title:
            continue
        label = taxonomy.occupations[position].label(PIVOT)
        pairs.append(Pair(title, label_variants(label)[0], position, "title"))
    return pairs


def pairs_digest(pairs: Iterable[Pair]) -> str:
    """What the training data was, as one hash (the adapter's manifest records it per source)."""
    digest = hashlib.sha256()
    for p in pairs:
        digest.update(f"{p.anchor}\0{p.positive}\0{p.concept}\0{p.source}\n".encode())
    return digest.hexdigest()
