"""Language identification of posting titles, restricted to the languages escotag has models for."""

from __future__ import annotations

import functools
import re

_ARABIC = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_LATIN_LANGS = {"en": "ENGLISH", "de": "GERMAN", "nl": "DUTCH", "pt": "PORTUGUESE", "fr": "FRENCH", "es": "SPANISH"}


@functools.cache
def _detector():
    from lingua import Language, LanguageDetectorBuilder

    languages = [getattr(Language, name) for name in _LATIN_LANGS.values()]
    return LanguageDetectorBuilder.from_languages(*languages).build()


_MEMO: dict[str, str] = {}  # text -> language: real files repeat titles heavily
_MEMO_SIZE = 100_000


def _by_script(text: str, default: str) -> str | None:
    """The language when the script alone says it (Arabic, Cyrillic, no letters), else None."""
    if _ARABIC.search(text):
        return "ar"
    if _CYRILLIC.search(text):
        return "uk"
    if not any(c.isalpha() for c in text):
        return default
    return None


def _code(found: object, default: str) -> str:
    name = getattr(found, "name", None)
    return next((code for code, lingua in _LATIN_LANGS.items() if lingua == name), default)


def detect_many(texts: list[str], default: str = "en") -> list[str]:
    """ISO 639-1 code of each text's language among ar, uk and the Latin-script model languages (``default`` when
    nothing tells): any Arabic letter routes to Arabic, so a mixed title such as 'مصمم - Kitchen Designer' goes to
    the Arabic model (which also holds English views); Cyrillic routes to Ukrainian; Latin script is told apart by
    lingua. Each distinct text once (remembered across calls), the Latin-script ones in one call of lingua's
    parallel batch detection (several times faster than one text at a time)."""
    found: dict[str, str] = {}
    latin = []
    for text in dict.fromkeys(texts):
        known = _MEMO.get(text) if default == "en" else None
        if known is None:
            known = _by_script(text, default)
        if known is None:
            latin.append(text)
        else:
            found[text] = known
    if latin:
        detected = _detector().detect_languages_in_parallel_of(latin)
        found.update((text, _code(lang, default)) for text, lang in zip(latin, detected, strict=True))
    if default == "en":
        if len(_MEMO) > _MEMO_SIZE:
            _MEMO.clear()
        _MEMO.update(found)
    return [found[text] for text in texts]
