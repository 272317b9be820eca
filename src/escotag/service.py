"""The HTTP service: the old service's API (drop-in), the v1 API, a web page, health and readiness.

Create it with ``create_app()``; ``escotag serve`` runs it with uvicorn.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from .errors import EscotagError
from .guard import GuardMiddleware, Settings, error_response
from .microbatch import MicroBatcher
from .models import AUTO, MODELS, model_names, resolve
from .postings import Posting
from .schemas import LEGACY_SCHEMA, LegacyRequest, Occupation, TaggedItem, TagRequest, TagResponse
from .search import LabelSearch
from .tagger import Tagger, detect_language

__all__ = ["Settings", "create_app"]

log = logging.getLogger("escotag.service")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def create_app(tagger: Tagger | None = None, settings: Settings | None = None) -> FastAPI:
    """The escotag FastAPI app. All models are loaded at start-up and shared by every request."""
    settings = settings or Settings.from_env()
    state: dict[str, Any] = {"tagger": tagger, "ready": False}

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if state["tagger"] is None:
            state["tagger"] = await run_in_threadpool(Tagger)
        started = time.perf_counter()
        await run_in_threadpool(state["tagger"].load)
        state["search"] = LabelSearch(state["tagger"].taxonomy)
        state["batcher"] = MicroBatcher(state["tagger"])
        state["batcher"].start()
        state["ready"] = True
        log.info("escotag ready: %s models in %.1fs", len(state["tagger"].available_models()),
                 time.perf_counter() - started)
        yield
        await state["batcher"].stop()

    app = FastAPI(title="escotag", version=__version__, lifespan=lifespan,
                  description="Tag job postings with ESCO occupations. This service uses the ESCO "
                              "classification of the European Commission.")
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    app.add_middleware(GuardMiddleware, settings=settings)

    def current() -> Tagger:
        if not state["ready"]:
            raise ApiError(503, "not_ready", "models are still loading")
        return state["tagger"]

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(EscotagError)
    async def _escotag_error(_: Request, exc: EscotagError) -> JSONResponse:
        return error_response(422, "invalid_request", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _describe(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal_error", "unexpected server error; see the server log")

    def check(model: str, topk: int, postings: list[Posting]) -> str:
        name = resolve(model)
        if name != AUTO:
            current().spec(name)
        if not postings:
            raise ApiError(422, "invalid_request", "items must hold at least one item")
        if len(postings) > settings.max_items:
            raise ApiError(422, "invalid_request", f"at most {settings.max_items} items per request")
        if not 1 <= topk <= settings.max_topk:
            raise ApiError(422, "invalid_request", f"topk must be between 1 and {settings.max_topk}")
        for i, p in enumerate(postings):
            if not p.title.strip():
                raise ApiError(422, "invalid_request", f"items[{i}].title is empty")
            if len(p.title) > settings.max_title_chars:
                raise ApiError(422, "invalid_request", f"items[{i}].title is over {settings.max_title_chars} chars")
            if len(p.description) > settings.max_description_chars:
                raise ApiError(422, "invalid_request",
                               f"items[{i}].description is over {settings.max_description_chars} chars")
        return name

    # -- the old service's API, unchanged for its clients --
    @app.post("/occupations-detection", tags=["compatible"], response_model=list[str] | list[list[str]],
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": LEGACY_SCHEMA}}}})
    async def occupations_detection(request: Request) -> Any:
        """The old service's endpoint: a list of `topk` URIs for one item, a list of such lists for several.
        The body is read as JSON whatever its Content-Type (the old README's curl sends a form type)."""
        body = await request.body()
        try:
            req = LegacyRequest.model_validate_json(body)
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", _describe(exc.errors())) from exc
        postings = [Posting(i.title, i.description or "") for i in req.items]
        name = check(req.model, req.topk, postings)
        results = await state["batcher"].tag(postings, name, req.topk)
        uris = [[p.uri for p in preds] for preds, _ in results]
        return uris[0] if len(uris) == 1 else uris

    @app.get("/all-models", tags=["compatible"], response_model=list[str])
    async def all_models() -> list[str]:
        """Model names, as the old service listed them (plus the new ones)."""
        return [n for n in model_names() if n == AUTO or n in current().available_models()]

    # -- v1 --
    @app.post("/v1/tag", response_model=TagResponse, tags=["v1"])
    async def tag(req: TagRequest) -> TagResponse:
        """Top-k occupations for each item, in order, with the language and model used."""
        started = time.perf_counter()
        postings = [Posting(i.title, i.description, None, i.language) for i in req.items]
        name = check(req.model, req.topk, postings)
        if req.min_confidence is not None:  # checked here: the batcher filters by confidence itself
            tagger = current()
            tagger.require_calibrated([name] if name != AUTO else [tagger.route(p) for p in postings])
        results = await state["batcher"].tag(postings, name, req.topk, req.min_score, req.min_confidence)
        items = [
            TaggedItem(id=item.id, language=detect_language(posting), model=used,
                       occupations=[Occupation(**p.to_dict()) for p in preds])
            for item, posting, (preds, used) in zip(req.items, postings, results, strict=True)
        ]
        return TagResponse(items=items, seconds=round(time.perf_counter() - started, 4))

    @app.get("/v1/models", tags=["v1"])
    async def models() -> list[dict]:
        """Every model: languages, encoder, taxonomy and whether it is loaded."""
        tagger = state["tagger"]
        available = set(tagger.available_models()) if tagger else set()
        return [{"name": s.name, "language": s.language, "languages": list(s.languages),
                 "encoder": tagger.encoder_description if tagger else None,
                 "encoders": [{"name": p.encoder.name, "id": p.encoder.id, "space": p.space, "weight": w}
                              for p, w in tagger.members(s.name)] if tagger and s.name in available else [],
                 "esco": {"source": tagger.taxonomy.source, "version": tagger.taxonomy.version,
                          "languages": tagger.taxonomy.languages, "occupations": len(tagger.taxonomy),
                          "content_hash": tagger.taxonomy.content_hash}
                 if tagger else None,
                 "available": s.name in available, "ready": state["ready"] and s.name in available,
                 "trained_on": tagger.trained_on(s.name) if s.name in available else None}
                for s in MODELS.values()]

    @app.get("/v1/occupations/{occupation_id}", tags=["v1"])
    async def occupation(occupation_id: str, lang: str = Query("en", max_length=8)) -> dict:
        """One occupation by URI or by the UUID at its end: labels, description, ISCO group, broader concept."""
        tx = current().taxonomy
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

    @app.get("/v1/occupations", tags=["v1"])
    async def search(q: str = Query(..., min_length=1, max_length=200), lang: str = Query("en", max_length=8),
                     limit: int = Query(10, ge=1, le=100)) -> list[dict]:
        """Occupations whose labels match q (prefix matches first), for autocomplete."""
        current()
        return state["search"].search(q, lang, limit)

    @app.get("/health", tags=["ops"])
    async def health() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    async def ready() -> JSONResponse:
        """Readiness: every model is loaded."""
        return JSONResponse({"ready": state["ready"]}, status_code=200 if state["ready"] else 503)

    page_html = resources.files("escotag").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html)

    return app


def _describe(errors: Any) -> str:
    """One line from pydantic's errors: 'items.0.title: Field required; topk: …'."""
    parts = []
    for err in list(errors)[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"

