"""Liveness, readiness and the web pages (tagging, review)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse

from .schemas import Health, Readiness
from .state import State

router = APIRouter()


@router.get("/health", tags=["ops"], response_model=Health)
async def health() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get("/ready", tags=["ops"], response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(state: State) -> JSONResponse:
    """Readiness: requests are answered, by which plan, and whether the default plan is still being built."""
    answer = Readiness(ready=state.ready, plan=state.tagger.plan.name if state.ready and state.tagger else None,
                       default=state.default, building=state.building, error=state.error)
    return JSONResponse(answer.model_dump(), status_code=200 if state.ready else 503)


@cache
def _page(name: str) -> str:
    return resources.files("escotag").joinpath(f"static/{name}").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    return HTMLResponse(_page("index.html"))


@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
async def review_page() -> HTMLResponse:
    return HTMLResponse(_page("review.html"))
