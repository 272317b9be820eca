"""How the service starts. The plan it is started for (the default, ``accurate``) answers at once when its indices
and heads are in the cache. Otherwise the service answers with ``fast`` as soon as fast's indices are ready, builds
the default plan's indices and trains its missing heads in the background, then switches to it between two batches
(``ServiceState.switch``); ``wait`` opens the port only once the default plan is ready, as before."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..encoders.plan import EncoderPlan
from ..learn.training import train_models, trainable_models
from ..storage import NotCached, cache_only
from ..tagging.models import model_spec
from ..tagging.pipeline import Pipeline
from ..tagging.tagger import Tagger

log = logging.getLogger("escotag.service")
FIRST_PLAN = "fast"


def is_ready(tagger: Tagger) -> bool:
    """Every model of this tagger loads from the cache alone and every trainable one has its heads."""
    try:
        with cache_only():
            tagger.load()
    except NotCached:
        return False
    return all(tagger.is_trained(name) for name in trainable_models(tagger))


def build_steps(tagger: Tagger) -> list[tuple[Pipeline, str]]:
    """The (pipeline, language) blocks that loading every model needs, each once, in loading order."""
    steps: dict[tuple[Pipeline, str], None] = {}
    for name in tagger.available_models():
        for pipeline in tagger.ensemble.model_pipelines(name):
            for lang in model_spec(tagger.taxonomy, name).languages:
                steps[(pipeline, lang)] = None
    return list(steps)


def complete(tagger: Tagger, report: Callable[[str], None] = log.info) -> None:
    """Build every index block of the tagger's plan and train its missing heads, reporting each step done with an
    estimate of the time left (at the pace so far)."""
    steps = build_steps(tagger)
    untrained = [name for name in trainable_models(tagger) if not tagger.is_trained(name)]
    total = len(steps) + len(untrained)
    started = time.perf_counter()

    def done(k: int, what: str) -> None:
        elapsed = time.perf_counter() - started
        left = elapsed / k * (total - k)
        report(f"plan {tagger.plan.name}: {what} ({k} of {total} steps in {elapsed / 60:.1f} min; "
               f"about {left / 60:.1f} min left)")

    for k, (pipeline, lang) in enumerate(steps, 1):
        pipeline.block(lang)
        done(k, f"{pipeline.encoder.name} index of {lang} ready")
    tagger.load()
    for k, name in enumerate(untrained, len(steps) + 1):
        train_models(tagger, [name], missing=True, report=lambda line: None)
        done(k, f"{name} trained")


def first_plan(default: str) -> str | None:
    """The plan to answer with while ``default`` is built (None: the default is the first plan itself)."""
    return None if EncoderPlan.parse(default).describe() == EncoderPlan.parse(FIRST_PLAN).describe() else FIRST_PLAN


def ready_tagger(plan: str) -> Tagger:
    """A tagger of this plan with every model loaded (built where needed), trained heads where they exist."""
    tagger = Tagger(encoder=plan)
    tagger.load()
    return tagger


def build_in_background(candidate: Tagger, on_ready: Callable[[Tagger], None],
                        on_error: Callable[[Exception], None]) -> threading.Thread:
    """Completes the candidate's plan on a thread of its own, then hands a fresh tagger of it (heads loaded) to
    on_ready."""
    plan = candidate.plan.name

    def run() -> None:
        try:
            started = time.perf_counter()
            log.info("building plan %s in the background; answering meanwhile with the plan already ready", plan)
            complete(candidate)
            tagger = ready_tagger(plan)
            log.info("plan %s built in %.1f min: switching to it", plan, (time.perf_counter() - started) / 60)
            on_ready(tagger)
        except Exception as exc:  # the service goes on with the plan it has
            log.exception("could not build plan %s", plan)
            on_error(exc)

    thread = threading.Thread(target=run, name="escotag-build", daemon=True)
    thread.start()
    return thread
