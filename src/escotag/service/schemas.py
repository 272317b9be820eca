"""Request and response models of the HTTP API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LegacyItem(BaseModel):
    title: str
    description: str | None = ""


class LegacyRequest(BaseModel):
    items: list[LegacyItem]
    model: str = "auto"
    topk: int = 5


# written out because the endpoint parses its body itself (to accept any Content-Type)
LEGACY_SCHEMA = {
    "type": "object", "required": ["items"],
    "properties": {
        "items": {"type": "array", "items": {"type": "object", "required": ["title"], "properties": {
            "title": {"type": "string"}, "description": {"type": "string"}}}},
        "model": {"type": "string", "default": "auto"},
        "topk": {"type": "integer", "default": 5},
    },
}


class TagItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | int | None = None
    title: str = Field(min_length=1, description="The posting's job title.")
    description: str = ""
    language: str | None = Field(None, description="ISO 639-1 code; detected when missing.")


class TagRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[TagItem]
    model: str = "auto"
    topk: int = 5
    min_score: float | None = None
    min_confidence: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Drop occupations below this calibrated confidence (trained models only); an item left "
                    "with none is one to route to a person.")
    review_below: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Queue items whose top confidence is below this for review (GET /v1/review; trained "
                    "models only); their review_id is returned.")


class Occupation(BaseModel):
    uri: str
    label: str
    label_en: str
    isco_code: str
    isco_label: str
    score: float
    confidence: float | None = Field(None, description="Calibrated probability (trained models), else null.")
    source: str = Field("model", description="'rule' when a user's title rule put it first, else 'model'.")


class TaggedItem(BaseModel):
    id: str | int | None
    language: str = Field(description="The language routing took: the item's, else detected (auto), else the "
                                      "model's.")
    model: str
    occupations: list[Occupation]
    review_id: int | None = Field(None, description="The review queue item, when review_below queued it.")


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uri: str | None = Field(description="The occupation the posting is, or null: no ESCO occupation fits.")
    reviewer: str | None = Field(None, max_length=200, description="Who decided (kept with the decision).")


class RuleFromDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field("title", pattern="^(title|label)$",
                      description="'title': this title gets the occupation first; 'label': it becomes a label.")
    language: str | None = Field(None, description="The rule's language; default the item's, '' for any.")


class TagResponse(BaseModel):
    items: list[TaggedItem]
    seconds: float
