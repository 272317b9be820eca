"""Liveness, readiness and the web pages (tagging, review)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse

from .state import State

router = APIRouter()


@router.get("/health", tags=["ops"])
async def health() -> dict:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", tags=["ops"])
async def ready(state: State) -> JSONResponse:
    """Readiness: every model is loaded."""
    return JSONResponse({"ready": state.ready}, status_code=200 if state.ready else 503)


@cache
def _page(name: str) -> str:
    return resources.files("escotag").joinpath(f"static/{name}").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    return HTMLResponse(_page("index.html"))


@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
async def review_page() -> HTMLResponse:
    return HTMLResponse(_page("review.html"))
