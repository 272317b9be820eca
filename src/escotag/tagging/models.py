"""Named tagging models: which ESCO languages each one indexes and how its views are built."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..esco.taxonomy import Taxonomy

AUTO = "auto"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    language: str  # the language of the postings it is for; labels are returned in it
    languages: tuple[str, ...]  # the ESCO languages whose texts it indexes (its own and English)
    summary: str
    trainable: bool = True  # escotag train can give it a classifier head


def _spec(name: str, lang: str, summary: str, trainable: bool = True) -> ModelSpec:
    return ModelSpec(name, lang, (lang, "en") if lang != "en" else ("en",), summary, trainable)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        _spec("EnV2", "en", "English, best configuration (trained when escotag train has run)"),
        _spec("En", "en", "English, plain similarity (never trained)", trainable=False),
        _spec("Ar", "ar", "Arabic + English ESCO texts"),
        _spec("De", "de", "German + English ESCO texts"),
        _spec("Nl", "nl", "Dutch + English ESCO texts"),
        _spec("Pt", "pt", "Portuguese + English ESCO texts"),
        _spec("Fr", "fr", "French + English ESCO texts"),
        _spec("Es", "es", "Spanish + English ESCO texts"),
        _spec("Uk", "uk", "Ukrainian + English ESCO texts"),
    ]
}
# auto routes each language to this model
BY_LANGUAGE = {"en": "EnV2", **{s.language: s.name for s in MODELS.values() if s.language != "en"}}


def model_names() -> list[str]:
    return [AUTO, *MODELS]


def resolve(name: str) -> str:
    """The canonical model name (matched case-insensitively), or ConfigError naming the valid ones."""
    for known in model_names():
        if known.casefold() == name.strip().casefold():
            return known
    raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(model_names())}")


def available_models(taxonomy: Taxonomy) -> list[str]:
    """Models whose languages have ESCO data in this taxonomy."""
    have = set(taxonomy.languages)
    return [name for name, spec in MODELS.items() if set(spec.languages) <= have]


def model_spec(taxonomy: Taxonomy, model: str) -> ModelSpec:
    """The concrete model of this name (ConfigError for 'auto' or a model without ESCO data here)."""
    name = resolve(model)
    available = available_models(taxonomy)
    if name == AUTO:
        raise ConfigError(f"'auto' routes each posting to a model; name one of {', '.join(available)} here")
    if name not in available:
        raise ConfigError(f"model {name!r} has no ESCO data here; available: {', '.join(available)}")
    return MODELS[name]
