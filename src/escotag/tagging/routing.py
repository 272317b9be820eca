"""Routing: which model answers each posting, and the posting's language as routing took it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ..errors import ConfigError
from ..esco.taxonomy import Taxonomy
from ..text import langid
from ..text.postings import Posting
from .models import AUTO, BY_LANGUAGE, MODELS, available_models, model_spec, resolve


class Route(NamedTuple):
    model: str
    language: str  # the posting's given language, else the detected one under auto, else the model's

    @property
    def cross_lingual(self) -> bool:
        """The posting's language has no labels in the model's index."""
        return self.language not in MODELS[self.model].languages


def detect_languages(postings: Sequence[Posting]) -> list[str]:
    """Each posting's given language, else the one detected from its title and the start of its description (the
    undeclared ones in one batch)."""
    texts = [p.title + " " + p.description[:200] for p in postings if not p.language]
    detected = iter(langid.detect_many(texts, prefer=BY_LANGUAGE) if texts else [])
    return [p.language or next(detected) for p in postings]


def route(taxonomy: Taxonomy, postings: Sequence[Posting], model: str | Sequence[str] = AUTO) -> list[Route]:
    """Per posting, the model that answers it. ``model`` is one name for all or one per posting; 'auto' goes by
    the given or detected language (English's model for a language without one here); a named model is taken to
    receive postings in its own language unless a posting gives another."""
    requested = [model] * len(postings) if isinstance(model, str) else list(model)
    if len(requested) != len(postings):
        raise ConfigError(f"{len(requested)} model names for {len(postings)} items")
    named = {name: resolve(name) for name in set(requested)}
    concrete = {name: model_spec(taxonomy, n).name for name, n in named.items() if n != AUTO}
    available = available_models(taxonomy)
    by_language = [i for i, name in enumerate(requested) if name not in concrete]
    detected = dict(zip(by_language, detect_languages([postings[i] for i in by_language]), strict=True))
    out = []
    for i, (posting, name) in enumerate(zip(postings, requested, strict=True)):
        chosen = concrete.get(name)
        if chosen is None:
            lang = detected[i]
            chosen = BY_LANGUAGE.get(lang, BY_LANGUAGE["en"])
            chosen = chosen if chosen in available else BY_LANGUAGE["en"]
        else:
            lang = posting.language or MODELS[chosen].language
        out.append(Route(chosen, lang))
    return out
