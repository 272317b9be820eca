"""The HTTP service: the old service's API (drop-in), the v1 API, a web page, health and readiness.

Create it with ``create_app()``; ``escotag serve`` runs it with uvicorn.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__, langid
from .batching import MicroBatcher
from .errors import EscotagError
from .models import AUTO, MODELS, model_names, resolve
from .postings import MAX_TITLE_CHARS, Posting
from .search import LabelSearch
from .tagger import Tagger

log = logging.getLogger("escotag.service")


@dataclass
class Settings:
    """Limits and access, from ESCOTAG_* environment variables by default."""

    max_items: int = 256
    max_topk: int = 100
    max_title_chars: int = MAX_TITLE_CHARS
    max_description_chars: int = 100_000
    max_body_bytes: int = 8 * 1024 * 1024
    max_json_depth: int = 32
    api_key: str | None = None
    cors_origins: list[str] = field(default_factory=list)

    @classmethod
    def from_env(cls) -> Settings:
        origins = os.environ.get("ESCOTAG_CORS_ORIGINS", "")
        return cls(
            max_items=int(os.environ.get("ESCOTAG_MAX_ITEMS", 256)),
            api_key=os.environ.get("ESCOTAG_API_KEY") or None,
            cors_origins=[o.strip() for o in origins.split(",") if o.strip()],
        )


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


# ---- request and response models --------------------------------------------------------------------
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


class Occupation(BaseModel):
    uri: str
    label: str
    label_en: str
    isco_code: str
    isco_label: str
    score: float


class TaggedItem(BaseModel):
    id: str | int | None
    language: str
    model: str
    occupations: list[Occupation]


class TagResponse(BaseModel):
    items: list[TaggedItem]
    seconds: float


# ---- middleware: body limits and API key ------------------------------------------------------------
def _json_depth_exceeds(body: bytes, limit: int) -> bool:
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


class GuardMiddleware:
    """Rejects over-large, non-UTF-8 and too deeply nested bodies before parsing, and checks the API key."""

    OPEN_PATHS = frozenset({"/health", "/"})

    def __init__(self, app: Callable, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        s = self.settings
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if s.api_key and scope["path"] not in self.OPEN_PATHS and scope.get("method") != "OPTIONS":
            given = headers.get("x-api-key") or ""
            auth = headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                given = auth[7:].strip()
            if not hmac.compare_digest(given.encode(), s.api_key.encode()):
                await _error(401, "unauthorized", "missing or wrong API key (Authorization: Bearer … or "
                             "X-API-Key)")(scope, receive, send)
                return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > s.max_body_bytes:
            await _error(413, "body_too_large", f"request body over {s.max_body_bytes} bytes")(scope, receive, send)
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > s.max_body_bytes:
                await _error(413, "body_too_large", f"request body over {s.max_body_bytes} bytes")(
                    scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            await _error(400, "invalid_utf8", f"request body is not UTF-8 (byte {exc.start}: {exc.reason})")(
                scope, receive, send)
            return
        if _json_depth_exceeds(body, s.max_json_depth):
            await _error(400, "too_deep", f"JSON nested deeper than {s.max_json_depth} levels")(scope, receive, send)
            return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


# ---- the app ----------------------------------------------------------------------------------------
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
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(EscotagError)
    async def _escotag_error(_: Request, exc: EscotagError) -> JSONResponse:
        return _error(422, "invalid_request", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", _describe(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _error(500, "internal_error", "unexpected server error; see the server log")

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
        results = await state["batcher"].tag(postings, name, req.topk, req.min_score)
        items = [
            TaggedItem(id=item.id, language=item.language or langid.detect(item.title), model=used,
                       occupations=[Occupation(**p.to_dict()) for p in preds])
            for item, (preds, used) in zip(req.items, results, strict=True)
        ]
        return TagResponse(items=items, seconds=round(time.perf_counter() - started, 4))

    @app.get("/v1/models", tags=["v1"])
    async def models() -> list[dict]:
        """Every model: languages, encoder, taxonomy and whether it is loaded."""
        tagger = state["tagger"]
        available = set(tagger.available_models()) if tagger else set()
        return [{"name": s.name, "language": s.language, "languages": list(s.languages),
                 "encoder": tagger.encoder.id if tagger else None,
                 "esco": {"source": tagger.taxonomy.source, "content_hash": tagger.taxonomy.content_hash}
                 if tagger else None,
                 "available": s.name in available, "ready": state["ready"] and s.name in available}
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

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(resources.files("escotag").joinpath("static/index.html").read_text(encoding="utf-8"))

    return app


def _describe(errors: Any) -> str:
    """One line from pydantic's errors: 'items.0.title: Field required; topk: …'."""
    parts = []
    for err in list(errors)[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"

