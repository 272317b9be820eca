"""The HTTP service: the old service's API (drop-in), the v1 API, the review queue, a web page, health and
readiness.

``create_app()`` builds it (``escotag serve`` runs it with uvicorn): one router per API (``compatible``, ``v1``,
``review``, ``admin``, ``ops``), sharing a ``ServiceState`` through FastAPI dependencies (``state``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..encoders.plan import configured_plan
from ..errors import EscotagError
from ..review import ReviewStore
from ..settings import Settings, get_settings, use_settings
from ..tagging.tagger import Tagger
from ..text import langid
from . import admin, compatible, ops, review, startup, v1
from .errors import install_handlers
from .guard import GuardMiddleware
from .microbatch import MicroBatcher
from .schemas import ERRORS
from .search import LabelSearch
from .state import ServiceState

__all__ = ["Settings", "create_app"]

log = logging.getLogger("escotag.service")


def create_app(tagger: Tagger | None = None, settings: Settings | None = None, wait: bool = False) -> FastAPI:
    """The escotag FastAPI app, sharing one tagger between requests. Without a tagger it makes one from
    ``settings`` (default: the environment's), which become this process's settings: its plan answers at once when
    it is built, else ``fast`` answers while it is built in the background (``startup``); ``wait``: the port opens
    once the plan is ready."""
    if tagger is None and settings is not None:
        use_settings(settings)  # the indices, encoders and rules the tagger loads read them
    state = ServiceState(settings or get_settings(), tagger)

    async def answer_with(tagger: Tagger) -> None:
        state.search = state.search or LabelSearch(tagger.taxonomy)
        if state.batcher is None:
            state.batcher = MicroBatcher(tagger)
            state.batcher.start()
        state.switch(tagger)
        state.ready = True
        log.info("escotag answering with plan %s: %s models", tagger.plan.name, len(tagger.available_models()))

    async def start_building(candidate: Tagger) -> None:
        loop = asyncio.get_running_loop()

        def ready(built: Tagger) -> None:
            async def go() -> None:
                await answer_with(built)
                state.building = False
            asyncio.run_coroutine_threadsafe(go(), loop)

        def failed(exc: Exception) -> None:
            loop.call_soon_threadsafe(lambda: (setattr(state, "building", False), setattr(state, "error", str(exc))))

        state.building = True
        startup.build_in_background(candidate, ready, failed)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        started = time.perf_counter()
        state.review = await run_in_threadpool(ReviewStore.open, state.settings.review_database)
        await run_in_threadpool(langid.warm)  # auto's detector holds the GIL while it loads: not in a request
        if state.tagger is not None:  # given: answer with it once loaded
            given, state.tagger = state.tagger, None
            state.default = given.plan.name
            await run_in_threadpool(given.load)
            await answer_with(given)
        else:
            state.default = configured_plan(state.settings.encoder).name
            try:
                candidate = await run_in_threadpool(partial(Tagger, encoder=state.default, progress=False))
            except EscotagError as exc:  # e.g. mpnet's weights missing: fast answers, /ready says why
                if wait:
                    raise
                candidate, state.error = None, str(exc)
                log.error("plan %s cannot be used: %s", state.default, exc)
            ready = candidate is not None and await run_in_threadpool(startup.is_ready, candidate)
            if candidate is not None and (ready or wait):
                if not ready:
                    await run_in_threadpool(startup.complete, candidate)
                await answer_with(candidate)
            else:
                await answer_with(await run_in_threadpool(startup.ready_tagger, startup.FIRST_PLAN))
                if candidate is not None:
                    await start_building(candidate)
        log.info("escotag ready in %.1fs", time.perf_counter() - started)
        yield
        if state.batcher is not None:
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
