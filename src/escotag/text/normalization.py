"""Text helpers: a posting's text as every door hands it on, normalisation for lexical matching, gendered label
variants, description leads."""

from __future__ import annotations

import re
import unicodedata

_ARABIC_MAP = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ـ": None})
_SPACES = re.compile(r"\s+")


# dropped from every posting: zero-width characters, the soft hyphen, and control characters that are not spaces
_INVISIBLE = dict.fromkeys([0x00AD, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF]
                           + [c for c in [*range(0x20), *range(0x7F, 0xA0)] if not chr(c).isspace()])


def clean_text(text: str, lines: bool = False) -> str:
    """A posting's text as every door hands it on: Unicode NFC, zero-width and control characters dropped, runs of
    spaces of any kind (no-break, tabs, line breaks) as one plain space, none at either end. With ``lines``
    (descriptions) line breaks stay, each line cleaned so, blank lines dropped."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    text = text.translate(_INVISIBLE)
    if lines:
        return "\n".join(cleaned for line in text.splitlines() if (cleaned := " ".join(line.split())))
    return " ".join(text.split())


def normalize(text: str) -> str:
    """Fold a text for lexical matching: NFKC, case, diacritics, Arabic letter variants, spaces."""
    if text.isascii():  # the same result, without the Unicode passes (most English titles)
        return _SPACES.sub(" ", text.lower()).strip()
    text = unicodedata.normalize("NFKC", text).casefold().translate(_ARABIC_MAP)
    decomposed = unicodedata.normalize("NFD", text)
    text = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def label_variants(label: str) -> list[str]:
    """Split a gendered label into its forms: 'Offizier/Offizierin', 'مدير / مديرة'.

    A slash with spaces around it always separates forms (ESCO's Arabic style). A bare slash does only when
    both sides start alike ('boulanger/boulangère'), so that 'TCP/IP engineer' stays whole.
    """
    label = label.strip()
    if " / " in label:
        parts = [p.strip() for p in label.split(" / ")]
    elif "/" in label:
        parts = [p.strip() for p in label.split("/")]
        heads = {p[:3].casefold() for p in parts}
        if len(heads) != 1 or min(len(p) for p in parts) < 4:
            parts = [label]
    else:
        parts = [label]
    return [p for p in dict.fromkeys(parts) if p]


_SENTENCE_END = re.compile(r"(?<=[.!?؟。])\s+|\n+")


def sentences(text: str) -> list[str]:
    """Split a text into sentences and lines, dropping empty ones."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def split_lead(text: str, max_chars: int) -> tuple[str, str]:
    """The leading sentences of a text, whole sentences up to about max_chars (at least one, cut), and the rest."""
    parts = sentences(text)
    out: list[str] = []
    size = 0
    for i, sentence in enumerate(parts):
        if out and size + len(sentence) > max_chars:
            return " ".join(out), " ".join(parts[i:])
        out.append(sentence if out else sentence[:max_chars])
        size += len(sentence) + 1
    return " ".join(out), ""


def lead(text: str, max_chars: int) -> str:
    return split_lead(text, max_chars)[0]
