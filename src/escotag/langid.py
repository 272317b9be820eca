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


def detect(text: str, default: str = "en") -> str:
    """ISO 639-1 code of the text's language among ar, uk and the Latin-script model languages.

    Any Arabic letter routes to Arabic, so a mixed title such as 'مصمم - Kitchen Designer' goes to
    the Arabic model (which also holds English views); Cyrillic routes to Ukrainian; Latin script is
    told apart by lingua.
    """
    if _ARABIC.search(text):
        return "ar"
    if _CYRILLIC.search(text):
        return "uk"
    if not any(c.isalpha() for c in text):
        return default
    found = _detector().detect_language_of(text)
    if found is None:
        return default
    return next((code for code, name in _LATIN_LANGS.items() if found.name == name), default)

