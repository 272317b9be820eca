"""The v1 API: tagging with labels, ISCO codes, scores and confidences; models; occupation lookup and search."""

from __future__ import annotations

import time

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from ..review import review_entries
from ..tagging.inventory import ModelInfo, models_info
from ..tagging.ranking import Thresholds
from ..text.postings import Posting
from .errors import ApiError
from .schemas import Occupation, OccupationDetail, SearchHit, TaggedItem, TagRequest, TagResponse
from .state import Ready, State

router = APIRouter(prefix="/v1", tags=["v1"])


@router.post("/tag", response_model=TagResponse)
async def tag(req: TagRequest, state: Ready) -> TagResponse:
    """Top-k occupations for each item, in order, with the language and model used."""
    started = time.perf_counter()
    postings = [Posting(i.title, i.description, None if i.id is None else str(i.id), i.language) for i in req.items]
    name = state.check(req.model, req.topk, postings)
    thresholds = Thresholds(req.topk, req.min_score, req.min_confidence, req.review_below)
    state.tagger.check(name, thresholds)  # before the batcher runs; auto's models are checked once routed
    results, plan = await state.batcher.tag(postings, name, thresholds)
    review_ids: list[int | None] = [None] * len(postings)
    if req.review_below is not None:
        entries = review_entries(postings, results, req.review_below, origin="api")
        ids = await run_in_threadpool(state.review.add, entries)
        for entry, review_id in zip(entries, ids, strict=True):
            review_ids[entry["position"]] = review_id
    items = [
        TaggedItem(id=item.id, language=t.language, model=t.model, cross_lingual=t.cross_lingual,
                   occupations=[Occupation(**p.to_dict()) for p in t.predictions], review_id=review_id)
        for item, t, review_id in zip(req.items, results, review_ids, strict=True)
    ]
    return TagResponse(items=items, plan=plan, seconds=round(time.perf_counter() - started, 4))


@router.get("/models", response_model=list[ModelInfo])
async def models(state: State) -> list[ModelInfo]:
    """Every model: languages, encoders, ESCO, whether it is trained and loaded (``escotag models --json`` gives
    the same records, ``ready`` null)."""
    return models_info(state.tagger, state.ready)


@router.get("/occupations/{occupation_id}", response_model=OccupationDetail)
async def occupation(occupation_id: str, state: Ready, lang: str = Query("en", max_length=8)) -> dict:
    """One occupation by URI or by the UUID at its end: labels, description, ISCO group, broader concept."""
    tx = state.tagger.taxonomy
    uri = occupation_id if "/" in occupation_id else f"http://data.europa.eu/esco/occupation/{occupation_id}"
    occ = tx.get(uri)
    if occ is None or uri not in tx.position:
        raise ApiError(404, "not_found", f"no occupation {occupation_id!r}")
    texts = occ.labels.get(lang) or occ.labels["en"]
    broader = tx.get(occ.parent) if occ.parent else None
    return {"uri": occ.uri, "code": occ.code, "lang": lang if lang in occ.labels else "en",
            "preferred_label": texts.preferred, "alt_labels": list(texts.alt), "hidden_labels": list(texts.hidden),
            "description": texts.description,
            "isco": {"code": occ.isco_code, "label": tx.isco_label(occ.isco_code, lang)},
            "broader": {"uri": occ.parent, "label": broader.label(lang) if broader else ""} if occ.parent else None}


@router.get("/occupations", response_model=list[SearchHit])
async def search(state: Ready, q: str = Query(..., min_length=1, max_length=200),
                 lang: str = Query("en", max_length=8), limit: int = Query(10, ge=1, le=100)) -> list[dict]:
    """Occupations whose labels match q (prefix matches first), for autocomplete."""
    return state.search.search(q, lang, limit)
