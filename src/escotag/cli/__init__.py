"""The ``escotag`` command line: ``tag`` and ``serve`` here; the other commands in their modules (``models``,
``evaluate``, ``finetune``, ``spark``, ``esco``, ``review``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import EscotagError
from ..settings import get_settings, use_settings
from .esco import app as esco_app
from .evaluate import app as eval_app
from .evaluate import tune
from .finetune import average_adapters, finetune
from .models import build, models, train
from .options import EncoderOpt, JsonOpt, MinConfidenceOpt, ModelOpt, RulesOpt, TopkOpt, fail, make_tagger
from .review import app as review_app
from .spark import spark_tag

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Tag job postings with ESCO occupations.")


@app.callback()
def _options(device: Annotated[str, typer.Option(
        "--device", envvar="ESCOTAG_DEVICE", show_envvar=True,
        help="Where torch encoders (mpnet, st:) run: auto (CUDA when present), cpu, cuda, cuda:N.")] = "auto",
             ) -> None:
    """Tag job postings with ESCO occupations."""
    use_settings(get_settings().model_copy(update={"device": device}))


@app.command()
def tag(
    title: Annotated[str | None, typer.Argument(help="A job title (or use --input).")] = None,
    description: Annotated[str, typer.Option("--description", "-d", help="The posting's description.")] = "",
    model: ModelOpt = "auto",
    topk: TopkOpt = 5,
    min_confidence: MinConfidenceOpt = None,
    as_json: JsonOpt = False,
    input: Annotated[Path | None, typer.Option("--input", "-i", help="CSV, JSONL or Parquet file.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="CSV, JSONL or Parquet file.")] = None,
    title_col: Annotated[str, typer.Option(help="Input column holding the title.")] = "title",
    description_col: Annotated[str, typer.Option(help="Input column holding the description.")] = "description",
    id_col: Annotated[str, typer.Option(help="Input column holding the row id.")] = "id",
    batch_size: Annotated[int | None, typer.Option(
        min=1, max=10_000, help="Rows tagged per batch (default 1,024).", show_default=False)] = None,
    strict: Annotated[bool, typer.Option(help="Stop at the first bad row instead of skipping it.")] = False,
    resume: Annotated[bool, typer.Option(
        help="Continue an interrupted run into its --output (checkpointed after every batch).")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --output.")] = False,
    review_below: Annotated[float | None, typer.Option(
        "--review-below", min=0.0, max=1.0,
        help="Queue postings whose top confidence is below this for review (escotag review; trained models).")
    ] = None,
    rules: RulesOpt = None,
    encoder: EncoderOpt = None,
) -> None:
    """Tag one title, or every row of --input into --output (never over an existing file without --overwrite;
    a killed run continues with --resume)."""
    if input is None:
        if not title:
            fail("give a TITLE, or --input FILE --output FILE")
        from ..tagging.ranking import Thresholds

        tagger = make_tagger(encoder=encoder, rules=rules)
        item = {"title": title, "description": description}
        results = tagger.tag_each([item], model, Thresholds(topk, min_confidence=min_confidence,
                                                            review_below=review_below))
        queued = _queue_for_review([item], results, review_below)
        preds, used = results[0].predictions, results[0].model
        if as_json:
            typer.echo(json.dumps(results[0].to_dict(), ensure_ascii=False))
            return
        if not preds:
            typer.echo(f"no occupation reaches confidence {min_confidence} ({used}): route to a person")
        for rank, p in enumerate(preds, 1):
            confidence = f"  p={p.confidence:.2f}" if p.confidence is not None else ""
            rule = "  (rule)" if p.source == "rule" else ""
            typer.echo(f"{rank}. {p.score:.3f}{confidence}  {p.label}  [ISCO {p.isco_code}]  {p.uri}{rule}")
        if queued:
            typer.echo(f"queued for review as item {queued[0]}")
        return
    if output is None:
        fail("--input needs --output")
    if resume and overwrite:
        fail("--resume continues an output, --overwrite replaces it: give one")
    from ..batch import Columns, tag_file

    summary = tag_file(
        make_tagger(encoder=encoder, rules=rules), input, output, model, topk,
        Columns(title_col, description_col, id_col), batch_size, strict, min_confidence=min_confidence,
        resume=resume, overwrite=overwrite, review_below=review_below,
        on_skip=lambda n, problem: typer.echo(f"escotag: row {n}: {problem}; skipped", err=True),
    )
    resumed = f" (resumed after input row {summary.resumed_after})" if summary.resumed_after else ""
    queued = f"; {summary.queued} queued for review" if review_below is not None else ""
    typer.echo(f"escotag: tagged {summary.tagged} rows into {output}; skipped {summary.skipped}{queued}{resumed}",
               err=True)


def _queue_for_review(items: list[dict], results: list, review_below: float | None) -> list[int]:
    if review_below is None:
        return []
    from ..review import ReviewStore, review_entries

    return ReviewStore.open().add(review_entries(items, results, review_below, origin="cli"))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 5000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes; each loads every model.")] = 1,
    rules: RulesOpt = None,
    encoder: EncoderOpt = None,
    wait: Annotated[bool, typer.Option(
        "--wait", help="Open the port only once the plan's indices and heads are built (by default a plan not yet "
                       "built is built in the background while the fast plan answers).")] = False,
) -> None:
    """Serve the HTTP API, the web page and the review page. A plan already built answers at once; one not yet
    built is built (indices, missing heads) in the background while the fast plan answers, then takes over."""
    import logging
    from functools import partial

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from ..encoders.plan import configured_plan
    from ..service import create_app

    if encoder:
        configured_plan(encoder)  # a bad plan fails here, not in every worker
    settings = get_settings().model_copy(update={"encoder": encoder or get_settings().encoder,
                                                 "rules": rules.resolve() if rules else get_settings().rules})

    package_log = logging.getLogger("escotag")  # the service logs with timestamps, through the root logger
    package_log.handlers.clear()
    package_log.propagate = True
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if workers > 1:  # built once here, not by every worker at once
        from ..service.startup import complete
        from ..tagging.tagger import Tagger

        use_settings(settings)
        complete(Tagger(encoder=settings.encoder, progress=False))
    # the settings travel to uvicorn's worker processes inside the app factory (pickled), not through the environment
    config = uvicorn.Config(partial(create_app, settings=settings, wait=wait), factory=True, host=host, port=port,
                            workers=workers, log_level="info", server_header=False)
    if workers == 1:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            raise typer.Exit(3)  # start-up failed (as uvicorn.run exits)
    else:
        Multiprocess(config, sockets=[config.bind_socket()]).run()


# after tag and serve, in the order of a user's path
app.command()(models)
app.command()(build)
app.command()(train)
app.add_typer(eval_app, name="eval")
app.command()(tune)
app.command("finetune")(finetune)
app.command("average-adapters")(average_adapters)
app.command("spark-tag")(spark_tag)
app.add_typer(esco_app, name="esco")
app.add_typer(review_app, name="review")


def main() -> None:
    import logging

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("escotag: %(message)s"))
    package_log = logging.getLogger("escotag")
    package_log.addHandler(handler)
    package_log.setLevel(logging.INFO)
    package_log.propagate = False
    try:
        app()
    except EscotagError as exc:
        typer.echo(f"escotag: error: {exc}", err=True)
        sys.exit(2)
