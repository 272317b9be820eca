"""What a tagger offers, per model — its languages, encoders, ESCO, whether it is trained — as one record type for
``GET /v1/models`` and ``escotag models --json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .models import MODELS

if TYPE_CHECKING:
    from .tagger import Tagger


@dataclass
class EncoderInfo:
    name: str
    id: str
    space: str  # the vector space trained heads are tied to (encoder id, projection)
    weight: float  # its share of the model's fused score on titles in the model's language
    adapter: dict | None = None  # a fine-tuned encoder's adapter: folder, digest, what it learned from


@dataclass
class EscoInfo:
    source: str
    version: str
    languages: list[str]
    occupations: int
    content_hash: str


@dataclass
class DevScore:
    untrained: float | None  # MRR on ESCO's held-out dev labels before the head
    trained: float | None  # and with it


@dataclass
class ModelInfo:
    name: str
    language: str  # of the postings it is for; labels are returned in it
    languages: list[str]  # the ESCO languages whose texts it indexes
    summary: str
    available: bool  # this ESCO has texts in its languages
    trained: bool = False  # every pipeline has its head, so answers carry calibrated confidences
    trained_on: list[str] | None = None  # the languages its heads learned from
    plan: str | None = None  # the encoder plan answering (its name)
    encoder: str | None = None  # the encoder plan spelled out
    encoders: list[EncoderInfo] = field(default_factory=list)
    esco: EscoInfo | None = None
    dev_mrr: list[DevScore] | None = None  # per trained pipeline
    ready: bool | None = None  # loaded and answering (the service; null elsewhere)


def models_info(tagger: Tagger | None, ready: bool | None = None) -> list[ModelInfo]:
    """One record per named model; without a tagger (a service still starting) only what the names tell."""
    if tagger is None:
        return [ModelInfo(s.name, s.language, list(s.languages), s.summary, False,
                          ready=None if ready is None else False) for s in MODELS.values()]
    tx = tagger.taxonomy
    esco = EscoInfo(tx.source, tx.version, tx.languages, len(tx), tx.content_hash)
    available = set(tagger.available_models())
    out = []
    for s in MODELS.values():
        info = ModelInfo(s.name, s.language, list(s.languages), s.summary, s.name in available,
                         plan=tagger.plan.name, encoder=tagger.encoder_description, esco=esco,
                         ready=None if ready is None else ready and s.name in available)
        if info.available:
            info.encoders = [EncoderInfo(p.encoder.name, p.encoder.id, p.space, w,
                                         a.summary() if (a := getattr(p.encoder, "adapter", None)) else None)
                             for p, w in tagger.members(s.name)]
            info.trained_on = tagger.trained_on(s.name)
            info.trained = info.trained_on is not None
            if info.trained:
                info.dev_mrr = [DevScore(h.manifest["dev"].get("untrained_mrr"), h.manifest["dev"].get("trained_mrr"))
                                for h in tagger.heads(s.name) if h is not None]
        out.append(info)
    return out
