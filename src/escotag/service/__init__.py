"""The HTTP service: the old service's API (drop-in), the v1 API, the review queue, a web page, health and
readiness.

``create_app()`` builds it (``escotag serve`` runs it with uvicorn): one router per API (``compatible``, ``v1``,
``review``, ``admin``, ``ops``), sharing a ``ServiceState`` through FastAPI dependencies (``state``).
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..review import ReviewStore
from ..settings import Settings, get_settings, use_settings
from ..tagging.tagger import Tagger
from . import admin, compatible, ops, review, v1
from .errors import install_handlers
from .guard import GuardMiddleware
from .microbatch import MicroBatcher
from .schemas import ERRORS
from .search import LabelSearch
from .state import ServiceState

__all__ = ["Settings", "create_app"]

log = logging.getLogger("escotag.service")


def create_app(tagger: Tagger | None = None, settings: Settings | None = None) -> FastAPI:
    """The escotag FastAPI app. All models are loaded at start-up and shared by every request. Without a tagger,
    it builds one from ``settings`` (default: the environment's), which become this process's settings."""
    if tagger is None and settings is not None:
        use_settings(settings)  # the indices, encoders and rules the tagger loads read them
    state = ServiceState(settings or get_settings(), tagger)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if state.tagger is None:
            state.tagger = await run_in_threadpool(Tagger)
        started = time.perf_counter()
        await run_in_threadpool(state.tagger.load)
        state.search = LabelSearch(state.tagger.taxonomy)
        state.review = await run_in_threadpool(ReviewStore.open, state.settings.review_database)
        state.batcher = MicroBatcher(state.tagger)
        state.batcher.start()
        state.ready = True
        log.info("escotag ready: %s models in %.1fs", len(state.tagger.available_models()),
                 time.perf_counter() - started)
        yield
        await state.batcher.stop()

    app = FastAPI(title="escotag", version=__version__, lifespan=lifespan,
                  description="Tag job postings with ESCO occupations. This service uses the ESCO "
                              "classification of the European Commission.")
    app.state.escotag = state
    if state.settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=state.settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    app.add_middleware(GuardMiddleware, settings=state.settings)
    install_handlers(app)
    for module in (compatible, v1, review, admin, ops):
        app.include_router(module.router, responses=ERRORS)
    return app
