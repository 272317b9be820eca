"""Language identification of posting titles: the languages escotag has models for, and the other ESCO languages
(and Turkish and Russian) when lingua is sure of them."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection

_ARABIC = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
# every ESCO language lingua knows (Maltese it does not; Norwegian as Bokmål and Nynorsk), and the two largest
# languages of Europe's job markets outside ESCO
_LANGUAGES = ("bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "ga", "hr", "hu", "is", "it", "lt", "lv",
              "nl", "nb", "nn", "pl", "pt", "ro", "sk", "sl", "sv", "uk", "tr", "ru")
_ESCO_CODES = {"nb": "no", "nn": "no"}  # lingua's codes where ESCO's differ
# A language outside the preferred ones (those with a model) only when lingua is this sure of it: short titles are
# ambiguous (one word can be Italian or Spanish), and a posting routed away from its own model loses that model's
# labels. Chosen on 3,000 ESCO labels a language: at 0.8, 2 German and 7 Dutch ones leave their language (16 and 30
# at 0.5), and none of 13,307 real English titles does (docs/speed.md).
SURE = 0.8


@functools.cache
def _detector():
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    codes = (getattr(IsoCode639_1, c.upper()) for c in _LANGUAGES)
    return LanguageDetectorBuilder.from_iso_codes_639_1(*codes).with_preloaded_language_models().build()


def warm() -> None:
    """Load the language models now: ~7 s on two cores (~0.85 GB) during which lingua holds the GIL, so a service
    does it before it answers, not inside its first request."""
    _detector()


_MEMO: dict[tuple[str, str, frozenset[str]], str] = {}  # real files repeat titles heavily
_MEMO_SIZE = 100_000


def _code(language: object) -> str:
    code = language.iso_code_639_1.name.lower()  # type: ignore[attr-defined]
    return _ESCO_CODES.get(code, code)


def _by_script(text: str, default: str) -> str | None:
    """The language when the script alone says it (Arabic, no letters), else None."""
    if _ARABIC.search(text):
        return "ar"
    if not any(c.isalpha() for c in text):
        return default
    return None


def _choose(confidences: list, prefer: Collection[str], default: str) -> str:
    """lingua's likeliest language when it is preferred or sure, else the likeliest preferred one."""
    if not confidences:
        return default
    top = _code(confidences[0].language)
    if top in prefer or confidences[0].value >= SURE:
        return top
    return next((code for c in confidences if (code := _code(c.language)) in prefer), default)


def detect_many(texts: list[str], prefer: Collection[str], default: str = "en") -> list[str]:
    """ISO 639-1 code (ESCO's: 'no' for Norwegian) of each text's language: any Arabic letter says Arabic, so a
    mixed title such as 'مصمم - Kitchen Designer' goes to the Arabic model (which also holds English views);
    otherwise lingua's likeliest language when it is one of ``prefer`` or lingua is sure of it (SURE), else the
    likeliest of ``prefer``; ``default`` when nothing tells. Each distinct text once (remembered across calls), the
    rest in one call of lingua's parallel batch (several times faster than one text at a time)."""
    prefer = frozenset(prefer)
    found: dict[str, str] = {}
    unknown = []
    for text in dict.fromkeys(texts):
        known = _MEMO.get((text, default, prefer))
        if known is None:
            known = _by_script(text, default)
        if known is None:
            unknown.append(text)
        else:
            found[text] = known
    if unknown:
        values = _detector().compute_language_confidence_values_in_parallel(unknown)
        found.update((text, _choose(v, prefer, default)) for text, v in zip(unknown, values, strict=True))
    if len(_MEMO) > _MEMO_SIZE:
        _MEMO.clear()
    _MEMO.update(((text, default, prefer), code) for text, code in found.items())
    return [found[text] for text in texts]

