"""ESCO taxonomy: occupations and ISCO-08 groups, with labels in many languages (loaded by ``escotag.esco``)."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field

from ..text.normalization import label_variants

PIVOT = "en"


@dataclass(frozen=True)
class Labels:
    """A concept's texts in one language."""

    preferred: str
    alt: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    description: str = ""

    def variants(self) -> list[str]:
        """Every surface form, gendered forms split, without repeats; the preferred label's forms first."""
        forms = [v for label in (self.preferred, *self.alt, *self.hidden) for v in label_variants(label)]
        return list(dict.fromkeys(forms))


@dataclass
class Concept:
    """An ESCO occupation or ISCO-08 group."""

    uri: str
    code: str
    parent: str | None = None
    labels: dict[str, Labels] = field(default_factory=dict)
    status: str = ""

    def label(self, lang: str = PIVOT) -> str:
        """Preferred label in lang, falling back to English."""
        found = self.labels.get(lang) or self.labels.get(PIVOT)
        return found.preferred if found else ""

    def content(self) -> list:
        """Everything the taxonomy holds about this concept, as plain JSON values in a fixed order."""
        labels = {lang: [t.preferred, list(t.alt), list(t.hidden), t.description]
                  for lang, t in sorted(self.labels.items())}
        return [type(self).__name__, self.uri, self.code, getattr(self, "isco_code", ""), self.parent or "",
                self.status, labels]


@dataclass
class Occupation(Concept):
    isco_code: str = ""


@dataclass
class IscoGroup(Concept):
    pass


class Taxonomy:
    """Occupations (sorted by URI) and ISCO groups, with their labels per language.

    ``content_hash`` digests the content alone (not the file format it came from), so an official CSV export and
    the snapshot packed from it share every cache entry and trained model. ``source`` says where it was read
    from and ``version`` which ESCO release(s) it holds, when known.
    """

    def __init__(
        self,
        occupations: list[Occupation],
        isco_groups: dict[str, IscoGroup],
        source: str = "",
        version: str = "",
    ) -> None:
        self.occupations = sorted(occupations, key=lambda o: o.uri)
        self.isco_groups = isco_groups
        self.source = source
        self.version = version
        self.position = {o.uri: i for i, o in enumerate(self.occupations)}
        self._isco_by_code = {g.code: g for g in isco_groups.values()}

    def __len__(self) -> int:
        return len(self.occupations)

    def concepts(self) -> list[Concept]:
        """Occupations by URI, then ISCO groups by URI."""
        return [*self.occupations, *sorted(self.isco_groups.values(), key=lambda g: g.uri)]

    @functools.cached_property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for concept in self.concepts():
            digest.update(json.dumps(concept.content(), ensure_ascii=False).encode() + b"\n")
        return digest.hexdigest()

    @functools.cached_property
    def languages(self) -> list[str]:
        langs = {lang for o in self.occupations for lang in o.labels}
        return sorted(langs, key=lambda lang: (lang != PIVOT, lang))

    def get(self, uri: str) -> Occupation | IscoGroup | None:
        if uri in self.position:
            return self.occupations[self.position[uri]]
        return self.isco_groups.get(uri)

    def isco_label(self, code: str, lang: str = PIVOT) -> str:
        group = self._isco_by_code.get(code)
        return group.label(lang) if group else ""

    def occupations_under(self, isco_uri: str) -> set[str]:
        """URIs of the occupations whose ISCO-08 unit group lies under this group (at any level)."""
        group = self.isco_groups.get(isco_uri)
        code = group.code if group else isco_uri.rsplit("/C", 1)[-1]
        return {o.uri for o in self.occupations if o.isco_code.startswith(code)}

    def subset(self, uris: set[str], languages: list[str] | None = None) -> Taxonomy:
        """The occupations with these URIs (every ISCO group kept), in these languages (English always)."""
        keep = None if languages is None else {PIVOT, *languages}

        def labels(concept: Concept) -> dict[str, Labels]:
            return {lang: t for lang, t in concept.labels.items() if keep is None or lang in keep}

        occupations = [Occupation(o.uri, o.code, o.parent, labels(o), o.status, o.isco_code)
                       for o in self.occupations if o.uri in uris]
        groups = {u: IscoGroup(g.uri, g.code, g.parent, labels(g), g.status) for u, g in self.isco_groups.items()}
        return Taxonomy(occupations, groups, f"{self.source} (subset)", self.version)
