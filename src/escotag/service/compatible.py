"""The old service's API, unchanged for its clients: ``POST /occupations-detection`` and ``GET /all-models``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from ..tagging.models import AUTO, model_names
from ..tagging.ranking import Thresholds
from ..text.postings import Posting
from .errors import ApiError, describe
from .schemas import LEGACY_SCHEMA, LegacyRequest
from .state import Ready

router = APIRouter(tags=["compatible"])


@router.post("/occupations-detection", response_model=list[str] | list[list[str]],
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": LEGACY_SCHEMA}}}})
async def occupations_detection(request: Request, state: Ready) -> Any:
    """The old service's endpoint: a list of `topk` URIs for one item, a list of such lists for several.
    The body is read as JSON whatever its Content-Type (the old README's curl sends a form type)."""
    body = await request.body()
    try:
        req = LegacyRequest.model_validate_json(body)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", describe(exc.errors())) from exc
    postings = [Posting(i.title, i.description or "") for i in req.items]
    name = state.check(req.model, req.topk, postings)
    answer = await state.batcher.tag(postings, name, Thresholds(req.topk))  # type: ignore[union-attr]
    uris = [[p.uri for p in t.predictions] for t in answer.results]
    return uris[0] if len(uris) == 1 else uris


@router.get("/all-models", response_model=list[str])
async def all_models(state: Ready) -> list[str]:
    """Model names, as the old service listed them (plus the new ones)."""
    available = state.tagger.available_models()  # type: ignore[union-attr]
    return [n for n in model_names() if n == AUTO or n in available]
