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
    cross_lingual: bool = Field(description="Answered on the cross-lingual path: the model's index holds no ESCO "
                                            "labels in the item's language (its English labels answered).")
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
    plan: str = Field(description="The encoder plan that answered (fast while the default plan is being built).")
    seconds: float


class Health(BaseModel):
    status: str = Field(description="'ok' while the process answers.")


class Readiness(BaseModel):
    ready: bool = Field(description="Requests are answered (503 until then).")
    plan: str | None = Field(description="The encoder plan answering now.")
    default: str = Field(description="The plan this service was started for; it answers once built.")
    building: bool = Field(description="The default plan's indices and heads are being built in the background.")
    error: str | None = Field(None, description="Why the default plan could not be built (the service goes on "
                                                "answering with the plan it has).")


class ReloadResult(BaseModel):
    rules: int = Field(description="How many rules are in force now.")
    kinds: dict[str, int] = Field(description="Rules per kind (title, label, exclude).")
    file: str | None = Field(description="The rules file read, or null: no rules file.")


class IscoGroupRef(BaseModel):
    code: str
    label: str


class BroaderRef(BaseModel):
    uri: str
    label: str


class OccupationDetail(BaseModel):
    uri: str
    code: str = Field(description="ESCO's occupation code (ISCO unit group code, then its own digits).")
    lang: str = Field(description="The language of the texts: the one asked for, else English.")
    preferred_label: str
    alt_labels: list[str]
    hidden_labels: list[str]
    description: str
    isco: IscoGroupRef
    broader: BroaderRef | None = Field(description="The broader occupation, or null under an ISCO group directly.")


class SearchHit(BaseModel):
    uri: str
    matched_label: str = Field(description="The label that matched the query.")
    label: str = Field(description="The occupation's preferred label in the language asked for.")
    isco_code: str


class ReviewItem(BaseModel):
    id: int
    created_at: str
    origin: str = Field(description="api, cli or file.")
    origin_key: str | None
    external_id: str | None = Field(description="The posting's own id.")
    title: str
    description: str
    language: str | None
    model: str
    candidates: list[Occupation] = Field(description="The tagger's top-k, with confidences.")
    top_confidence: float
    status: str = Field(description="'open' or 'decided'.")
    decided_uri: str | None = Field(description="The decided occupation; null when decided that none fits.")
    reviewer: str | None
    decided_at: str | None


class ReviewQueue(BaseModel):
    items: list[ReviewItem]
    counts: dict[str, int] = Field(description="Items per status in the whole queue.")


class RuleOut(BaseModel):
    kind: str
    pattern: str
    language: str
    occupation_uri: str


class RuleMade(BaseModel):
    rule: RuleOut
    file: str = Field(description="The rules file it was appended to.")
    rules: int = Field(description="How many rules are in force now.")


class ErrorDetail(BaseModel):
    code: str = Field(description="invalid_request, not_found, conflict, not_ready, unauthorized, too_large, …")
    message: str


class ErrorResponse(BaseModel):
    """What every error answers, whatever its status."""

    error: ErrorDetail


# documented on every route (the handlers in errors.py answer them)
ERRORS = {status: {"model": ErrorResponse} for status in (401, 404, 409, 413, 422, 500, 503)}
