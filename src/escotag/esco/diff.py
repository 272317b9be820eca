"""What changed between two ESCO versions, occupation by occupation, so stored tags can be migrated."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .taxonomy import PIVOT, Taxonomy

RELEASED = "released"


@dataclass(frozen=True)
class Change:
    """kind: added, removed, obsolete (no longer 'released'), relabelled (preferred label in ``lang``) or moved
    (to another ISCO-08 unit group); old/new are the values before and after."""

    kind: str
    uri: str
    label: str
    lang: str = ""
    old: str = ""
    new: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


KINDS = ("added", "removed", "obsolete", "relabelled", "moved")


def diff_taxonomies(old: Taxonomy, new: Taxonomy, languages: list[str] | None = None) -> list[Change]:
    """Changes from old to new, ordered by kind then URI. Relabelling is checked in the languages both have
    (or these)."""
    langs = [lang for lang in new.languages if lang in old.languages and (languages is None or lang in languages)]
    changes: list[Change] = []
    old_uris = {o.uri for o in old.occupations}
    for occ in new.occupations:
        if occ.uri not in old_uris:
            changes.append(Change("added", occ.uri, occ.label(), new=occ.isco_code))
    for before in old.occupations:
        after = new.get(before.uri)
        if after is None:
            changes.append(Change("removed", before.uri, before.label(), old=before.isco_code))
            continue
        if before.status == RELEASED and after.status != RELEASED:
            changes.append(Change("obsolete", before.uri, after.label(), old=before.status, new=after.status))
        for lang in langs:
            was, now = before.labels.get(lang), after.labels.get(lang)
            if was and now and was.preferred != now.preferred:
                changes.append(Change("relabelled", before.uri, after.label(PIVOT), lang, was.preferred,
                                      now.preferred))
        if before.isco_code != getattr(after, "isco_code", before.isco_code):
            changes.append(Change("moved", before.uri, after.label(), old=before.isco_code, new=after.isco_code))
    return sorted(changes, key=lambda c: (KINDS.index(c.kind), c.uri, c.lang))
