"""How the service starts. The plan it is started for (the default, ``accurate``) answers at once when its indices
and heads are in the cache. Otherwise the service answers with ``fast`` as soon as fast's indices are ready, builds
the default plan's indices and trains its missing heads in the background, then switches to it between two batches
(``ServiceState.switch``); ``wait`` opens the port only once the default plan is ready, as before."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..index.views import taxonomy_views
from ..learn.training import train_models, trainable_models
from ..storage import NotCached, cache_only
from ..tagging.models import model_spec
from ..tagging.pipeline import Pipeline
from ..tagging.tagger import Tagger

log = logging.getLogger("escotag.service")
FIRST_PLAN = "fast"  # answers while the plan asked for is built (that plan itself once built, fast included)


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


def _cached(pipeline: Pipeline, lang: str) -> bool:
    try:
        with cache_only():
            pipeline.block(lang)
    except NotCached:
        return False
    return True


class Progress:
    """The time left of a build: blocks to encode weighted by their texts, at each encoder's pace so far (the
    build's pace for an encoder not yet timed), and heads to train at their mean time so far."""

    HEAD_SECONDS = 30.0  # a head's time before one has been timed

    def __init__(self, blocks: list[tuple[str, int]], heads: int) -> None:
        self.blocks, self.heads = list(blocks), heads  # (encoder, texts) still to build
        self.texts: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.head_seconds: list[float] = []

    def block_done(self, encoder: str, texts: int, seconds: float) -> None:
        self.blocks.remove((encoder, texts))
        self.texts[encoder] = self.texts.get(encoder, 0) + texts
        self.seconds[encoder] = self.seconds.get(encoder, 0) + seconds

    def head_done(self, seconds: float) -> None:
        self.heads -= 1
        self.head_seconds.append(seconds)

    def seconds_left(self) -> float | None:
        """None until a block or a head has been timed."""
        if not self.texts and not self.head_seconds:
            return None
        overall = sum(self.texts.values()) / max(sum(self.seconds.values()), 1e-9)
        left = sum(texts / (self.texts[e] / max(self.seconds[e], 1e-9) if e in self.texts else overall or 1.0)
                   for e, texts in self.blocks)
        per_head = sum(self.head_seconds) / len(self.head_seconds) if self.head_seconds else self.HEAD_SECONDS
        return left + self.heads * per_head


def complete(tagger: Tagger, report: Callable[[str], None] = log.info) -> None:
    """Build every index block of the tagger's plan and train its missing heads, reporting each step with an
    estimate of the time left; the tagger ends with every model loaded, heads included."""
    todo = [(p, lang) for p, lang in build_steps(tagger) if not _cached(p, lang)]
    sizes = {(p, lang): sum(map(len, taxonomy_views(tagger.taxonomy, lang))) for p, lang in todo}
    untrained = [name for name in trainable_models(tagger) if not tagger.is_trained(name)]
    progress = Progress([(p.encoder.name, sizes[(p, lang)]) for p, lang in todo], len(untrained))
    started = time.perf_counter()

    def say(what: str) -> None:
        left = progress.seconds_left()
        report(f"plan {tagger.plan.name}: {what} ({(time.perf_counter() - started) / 60:.1f} min so far; "
               + ("the time left is estimated once a block is built)" if left is None else
                  f"about {left / 60:.0f} min left)"))

    if todo:
        say(f"{len(todo)} index blocks to build ({sum(sizes.values()):,} texts), {len(untrained)} models' heads "
            "to train")
    for pipeline, lang in todo:
        began = time.perf_counter()
        pipeline.block(lang)
        progress.block_done(pipeline.encoder.name, sizes[(pipeline, lang)], time.perf_counter() - began)
        say(f"{pipeline.encoder.name} index of {lang} ready")
    for name in untrained:
        began = time.perf_counter()
        train_models(tagger, [name], missing=True, report=lambda line: None)
        progress.head_done(time.perf_counter() - began)
        say(f"{name}'s heads trained")
    if untrained:
        for pipeline in tagger.pipelines.values():
            pipeline.forget_models()  # read again, with the heads just trained
    tagger.load()


def ready_tagger(plan: str) -> Tagger:
    """A tagger of this plan with every model loaded (built where needed), trained heads where they exist."""
    tagger = Tagger(encoder=plan)
    tagger.load()
    return tagger


def build_in_background(candidate: Tagger, on_ready: Callable[[Tagger], None],
                        on_error: Callable[[Exception], None]) -> threading.Thread:
    """Completes the candidate's plan on a thread of its own (indices, heads), then hands it to on_ready."""
    plan = candidate.plan.name

    def run() -> None:
        try:
            started = time.perf_counter()
            log.info("building plan %s in the background; answering meanwhile with the plan already ready", plan)
            complete(candidate)
            log.info("plan %s built in %.1f min: switching to it", plan, (time.perf_counter() - started) / 60)
            on_ready(candidate)
        except Exception as exc:  # the service goes on with the plan it has
            log.exception("could not build plan %s", plan)
            on_error(exc)

    thread = threading.Thread(target=run, name="escotag-build", daemon=True)
    thread.start()
    return thread
