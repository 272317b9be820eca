"""Label search over occupations, for autocomplete: normalised prefix matches first, then substrings."""

from __future__ import annotations

from ..esco.taxonomy import PIVOT, Taxonomy
from ..text.normalization import normalize


class LabelSearch:
    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self._labels: dict[str, list[tuple[str, int, str]]] = {}

    def _table(self, lang: str) -> list[tuple[str, int, str]]:
        if lang not in self._labels:
            rows = []
            for i, occ in enumerate(self.taxonomy.occupations):
                texts = occ.labels.get(lang)
                if texts:
                    rows += [(normalize(v), i, v) for v in texts.variants()]
            self._labels[lang] = rows
        return self._labels[lang]

    def search(self, query: str, lang: str = PIVOT, limit: int = 10) -> list[dict]:
        """Up to limit occupations with a label containing query, best first (prefix, then shorter)."""
        needle = normalize(query)
        lang = lang if lang in self.taxonomy.languages else PIVOT
        if not needle:
            return []
        best: dict[int, tuple[tuple[int, int], str]] = {}
        for norm, i, label in self._table(lang):
            at = norm.find(needle)
            if at < 0:
                continue
            key = (0 if at == 0 else 1, len(norm))
            if i not in best or key < best[i][0]:
                best[i] = (key, label)
        ranked = sorted(best.items(), key=lambda kv: (kv[1][0], kv[1][1]))[:limit]
        out = []
        for i, (_, label) in ranked:
            occ = self.taxonomy.occupations[i]
            out.append({"uri": occ.uri, "matched_label": label, "label": occ.label(lang), "isco_code": occ.isco_code})
        return out
