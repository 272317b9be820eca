"""Which encoders a tagger uses, per posting language, and how much each one's scores count.

A plan is written ``[lang=]member[+member…][;lang=…]``, a member ``encoder[*weight]``: ``use``, ``use+e5``,
``use*0.4+e5*0.6``, ``en=use*0.4+mpnet*0.6;*=use+e5``. A language without its own part takes the ``*`` part (a
plan without ``lang=`` is all ``*``). Two more parts, where given, take precedence in this order: ``lang.described=``
and ``described=`` score postings with a description (in that language; in any other, cross-lingual ones
included), then ``xling=`` cross-lingual titles (in a language the model's index holds no ESCO labels in: an
Italian posting routed to English, a MELO ``_c_en`` set). Weights default to equal shares. Two aliases name the
configurations the README recommends: ``fast`` and ``accurate``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..settings import get_settings

ANY = "*"
XLING = "xling"
DESCRIBED = "described"
# accurate: on real English ads it beats the old service (which fast does not) and leads fast on every real
# title set here; fast stays the named high-throughput plan (docs/accuracy.md: which plan is the default and why)
DEFAULT_PLAN = "accurate"
ALIASES = {
    "fast": "use",
    # e5 fine-tuned for occupations (e5ft) in e5's seat and at the share chosen out-of-fold on jobbert_val titles
    # for plain e5 (make choose-weights); e5ft led it on jobbert fold 5 (which it never saw) and on MELO deu
    # (docs/fine-tuning.md). Titles: e5ft alone — in English with its head (training.TITLE_HEAD_WEIGHTS), both
    # chosen out-of-fold on real English titles (share 1.0 on all five folds, with an adapter per held-out fold;
    # the rank-32 adapter's head weight again within fold 5); in other languages too: it led the mix on held-out
    # occupations' labels in their own language (docs/fine-tuning.md, same-language titles). Cross-lingual titles
    # take the mix: with an adapter that never saw the query language it led use on that language's ESCO labels
    # (docs/fine-tuning.md, leave-languages-out).
    # Postings with a description are read by use (and, in English, the old service's mpnet reading the posting
    # whole: 0.4 use + 0.6 mpnet led mpnet alone on held-out real English ads, issue 9): e5ft reads a description
    # alone better than use, but with the posting's title beside it the mix lost to use on synthetic ads of held-out
    # occupations in six languages of seven, and on the aida English ads (docs/fine-tuning.md, postings).
    # Ukrainian ones take the title mix: USE was not trained on Ukrainian.
    "accurate": "e5ft;xling=use*0.4+e5ft*0.6;described=use;uk.described=use*0.4+e5ft*0.6;"
                "en.described=use*0.4+mpnet*0.6",
}


@dataclass(frozen=True)
class EncoderPlan:
    name: str  # as given (an alias stays an alias)
    parts: dict[str, tuple[tuple[str, float], ...]]  # language (or ANY) -> ((encoder name, weight), ...)

    @classmethod
    def parse(cls, text: str) -> EncoderPlan:
        name = text.strip()
        spec = ALIASES.get(name, name)
        parts: dict[str, tuple[tuple[str, float], ...]] = {}
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            lang, _, members = part.partition("=") if "=" in part.split("+")[0] else ("", "", part)
            lang = lang.strip() or ANY
            if lang in parts:
                raise ConfigError(f"encoder plan {text!r} names language {lang!r} twice")
            parsed = []
            for member in filter(None, (m.strip() for m in members.split("+"))):
                encoder, _, weight = member.partition("*")
                try:
                    w = float(weight) if weight else 1.0
                except ValueError:
                    raise ConfigError(f"encoder plan {text!r}: weight {weight!r} is not a number") from None
                if w <= 0:
                    raise ConfigError(f"encoder plan {text!r}: weights must be positive, got {w}")
                parsed.append((encoder.strip(), w))
            if not parsed:
                raise ConfigError(f"encoder plan {text!r} has an empty part {part!r}")
            total = sum(w for _, w in parsed)
            parts[lang] = tuple((e, w / total) for e, w in parsed)
        if ANY not in parts:
            raise ConfigError(f"encoder plan {text!r} needs a part for every other language ('*=…')")
        return cls(name, parts)

    def members(self, lang: str, cross_lingual: bool = False, described: bool = False
                ) -> tuple[tuple[str, float], ...]:
        """(encoder name, weight) pairs used for postings in this language (cross_lingual: against an index
        without labels in it; described: with a description)."""
        if described:  # lang is the index's: a cross-lingual posting is in another language
            for key in (DESCRIBED,) if cross_lingual else (f"{lang}.{DESCRIBED}", DESCRIBED):
                if key in self.parts:
                    return self.parts[key]
        if cross_lingual and XLING in self.parts:
            return self.parts[XLING]
        return self.parts.get(lang, self.parts[ANY])

    @property
    def encoders(self) -> list[str]:
        """Every encoder the plan uses, in first-use order."""
        return list(dict.fromkeys(e for members in self.parts.values() for e, _ in members))

    def describe(self) -> str:
        """The plan spelled out with its weights (what cache keys, manifests and /v1/models record)."""
        def part(members: tuple[tuple[str, float], ...]) -> str:
            return "+".join(e if len(members) == 1 else f"{e}*{w:g}" for e, w in members)

        order = {ANY: 1, XLING: 2, DESCRIBED: 3}
        order |= {lang: 4 for lang in self.parts if lang.endswith(f".{DESCRIBED}")}
        items = sorted(self.parts.items(), key=lambda kv: order.get(kv[0], 0))
        return ";".join(part(m) if lang == ANY else f"{lang}={part(m)}" for lang, m in items)


def configured_plan(name: str | None = None) -> EncoderPlan:
    """The plan of this name, else ESCOTAG_ENCODER, else ``accurate``."""
    return EncoderPlan.parse(name or (get_settings().encoder or "").strip() or DEFAULT_PLAN)
