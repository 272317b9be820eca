"""The ``escotag`` command line: tag titles or files, list and build models, evaluate, tune."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import EscotagError
from ..settings import get_settings, use_settings
from .esco import app as esco_app
from .finetune import finetune
from .review import app as review_app
from .spark import spark_tag

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Tag job postings with ESCO occupations.")
eval_app = typer.Typer(no_args_is_help=True, help="Measure accuracy on labelled sets (README: Evaluation).")
app.add_typer(eval_app, name="eval")


@app.callback()
def _options(device: Annotated[str, typer.Option(
        "--device", envvar="ESCOTAG_DEVICE", show_envvar=True,
        help="Where torch encoders (mpnet, st:) run: auto (CUDA when present), cpu, cuda, cuda:N.")] = "auto",
             ) -> None:
    """Tag job postings with ESCO occupations."""
    use_settings(get_settings().model_copy(update={"device": device}))
app.add_typer(esco_app, name="esco")
app.add_typer(review_app, name="review")
app.command("spark-tag")(spark_tag)
app.command("finetune")(finetune)

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model name, or 'auto' to route by language.")]
TopkOpt = Annotated[int, typer.Option("--topk", "-k", min=1, max=100, help="Occupations per posting.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (one object on the last line for eval).")]
UntrainedOpt = Annotated[bool, typer.Option("--untrained", help="Ignore trained heads (the plain similarity model).")]
MinConfidenceOpt = Annotated[float | None, typer.Option(
    "--min-confidence", min=0.0, max=1.0,
    help="Drop predictions below this calibrated confidence (trained models); none left = route to a person.")]


EncoderOpt = Annotated[str | None, typer.Option(
    "--encoder", "-e", envvar="ESCOTAG_ENCODER", show_envvar=True,
    help="Encoder plan: accurate (default), fast, use, e5, mpnet, st:<path or hub id>, or an ensemble such as "
         "use+e5 or 'en=use*0.4+mpnet*0.6;*=use+e5' (README: Encoders).")]


RulesOpt = Annotated[Path | None, typer.Option(
    "--rules", envvar="ESCOTAG_RULES", show_envvar=True,
    help="Rules CSV (kind,pattern,language,occupation_uri; README: Rules); default ESCOTAG_HOME/rules.csv when it "
         "exists.")]


def _tagger(progress: bool = True, trained: bool = True, encoder: str | None = None, rules: Path | None = None,
            use_rules: bool = True):
    """A Tagger for a command; use_rules=False for training and evaluation, which measure the model alone."""
    from ..tagging.rules import Rules
    from ..tagging.tagger import Tagger

    return Tagger(progress=progress, trained=trained, encoder=encoder, rules=rules if use_rules else Rules())


def _fail(message: str) -> None:
    typer.echo(f"escotag: error: {message}", err=True)
    raise typer.Exit(2)


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
            _fail("give a TITLE, or --input FILE --output FILE")
        tagger = _tagger(encoder=encoder, rules=rules)
        item = {"title": title, "description": description}
        results = tagger.tag_with_models([item], model, topk, min_confidence=min_confidence)
        queued = _queue_for_review(tagger, [item], results, review_below)
        preds, used, _ = results[0]
        if as_json:
            typer.echo(json.dumps({"model": used, "predictions": [p.to_dict() for p in preds]}, ensure_ascii=False))
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
        _fail("--input needs --output")
    if resume and overwrite:
        _fail("--resume continues an output, --overwrite replaces it: give one")
    from ..batch import Columns, tag_file

    summary = tag_file(
        _tagger(encoder=encoder, rules=rules), input, output, model, topk,
        Columns(title_col, description_col, id_col), batch_size, strict, min_confidence=min_confidence,
        resume=resume, overwrite=overwrite, review_below=review_below,
        on_skip=lambda n, problem: typer.echo(f"escotag: row {n}: {problem}; skipped", err=True),
    )
    resumed = f" (resumed after input row {summary.resumed_after})" if summary.resumed_after else ""
    queued = f"; {summary.queued} queued for review" if review_below is not None else ""
    typer.echo(f"escotag: tagged {summary.tagged} rows into {output}; skipped {summary.skipped}{queued}{resumed}",
               err=True)


def _queue_for_review(tagger, items: list[dict], results: list, review_below: float | None) -> list[int]:
    if review_below is None:
        return []
    from ..review import ReviewStore, review_entries

    tagger.require_calibrated(t.model for t in results)
    return ReviewStore.open().add(review_entries(items, results, review_below, origin="cli"))


@app.command()
def models(as_json: JsonOpt = False, encoder: EncoderOpt = None) -> None:
    """List the models, their languages and whether they are trained (escotag train), for an encoder plan."""
    from ..tagging.models import MODELS

    tagger = _tagger(progress=False, encoder=encoder)
    available = set(tagger.available_models())
    rows = []
    for s in MODELS.values():
        heads = tagger.heads(s.name) if s.name in available else []
        trained_on = tagger.trained_on(s.name) if s.name in available else None
        trained = trained_on is not None
        rows.append({"name": s.name, "language": s.language, "indexes": list(s.languages), "summary": s.summary,
                     "available": s.name in available, "encoder": tagger.encoder_description, "trained": trained,
                     "trained_on": trained_on,
                     "dev_mrr": [{"untrained": h.manifest["dev"].get("untrained_mrr"),
                                  "trained": h.manifest["dev"].get("trained_mrr")} for h in heads]
                     if trained else None})
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    for pipeline in tagger.pipelines.values():
        if adapter := getattr(pipeline.encoder, "adapter", None):
            typer.echo(f"adapter {pipeline.encoder.name}: {adapter.folder} (sha256 {adapter.digest[:16]}…, "
                       f"{sum(adapter.manifest.get('pairs', {}).values()):,} pairs)")
    typer.echo(f"encoder {tagger.encoder_description}\n"
               f"auto   routes each posting to its language's model   (trained models: {tagger.models_dir})")
    for r in rows:
        if not r["available"]:
            state = "no ESCO data for this language"
        elif r["trained"]:
            dev = ", ".join(f"{d['untrained']} -> {d['trained']}" for d in r["dev_mrr"])
            state = f"trained on {'+'.join(r['trained_on'])}, dev MRR {dev}"
        else:
            state = "untrained"
        typer.echo(f"{r['name']:<6} {'+'.join(r['indexes']):<6} {state:<45} {r['summary']}")


@app.command()
def build(
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Model(s); default all.")] = None,
    encoder: EncoderOpt = None,
) -> None:
    """Build (or verify) the cached indices of the models."""
    import time

    started = time.perf_counter()
    tagger = _tagger(encoder=encoder)
    tagger.load(model or None)
    typer.echo(f"escotag: indices ready in {time.perf_counter() - started:.1f}s", err=True)


def _report(result, as_json: bool) -> None:
    d = result.to_dict()
    if not as_json:
        typer.echo("  ".join(f"{k}={v}" for k, v in d.items()))
    else:
        typer.echo(json.dumps(d))


@app.command()
def train(
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Model(s) to train.")] = None,
    all_models: Annotated[bool, typer.Option("--all", help="Every trainable model with ESCO data.")] = False,
    labelled: Annotated[Path | None, typer.Option(
        "--labelled", help="Labelled postings CSV (id,title,description,gold_uri); rows in other languages "
                           "than the model's are left out.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Models folder (default ESCOTAG_MODELS or ESCOTAG_HOME/models; the tagger reads from there).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the dev split and the training order.")] = 0,
    missing: Annotated[bool, typer.Option(
        "--missing", help="Only models without a usable trained folder (same ESCO and vector space); keep the rest.")
    ] = False,
    head_weight: Annotated[float | None, typer.Option(
        "--head-weight", help="The head's weight on a title (default: per encoder and language, from real titles).")
    ] = None,
    encoder: EncoderOpt = None,
) -> None:
    """Train the learned parts of models (classifier head, its weight, calibration) from ESCO, for every
    encoder of the plan."""
    import time

    from ..heads.trained import TrainedModel
    from ..learn.training import train_model
    from ..tagging.models import MODELS
    from ..tagging.pipeline import encoder_folder

    if bool(model) == all_models:
        _fail("give --model M (repeatable) or --all")
    tagger = _tagger(trained=False, encoder=encoder, use_rules=False)
    names = [n for n in tagger.available_models() if MODELS[n].trainable] if all_models else model or []
    started = time.perf_counter()
    count = 0
    for pipeline in tagger.pipelines.values():
        todo = [n for n in names if pipeline in tagger.model_pipelines(n)]
        if missing:
            folder = (Path(out) if out is not None else get_settings().models_dir) / encoder_folder(pipeline.encoder)
            kept = [n for n in todo if TrainedModel.load(folder / n, tagger.taxonomy, pipeline.space) is not None]
            if kept:
                typer.echo(f"escotag: already trained, kept: {', '.join(kept)} ({pipeline.encoder.name})", err=True)
            todo = [n for n in todo if n not in kept]
        for name in todo:
            trained, folder = train_model(pipeline, name, out, seed, labelled, head_weight=head_weight)
            dev = trained.manifest["dev"]
            count += 1
            typer.echo(f"escotag: {trained.name}: trained on {'+'.join(trained.languages)} with encoder "
                       f"{pipeline.encoder.name} in {trained.manifest['seconds']}s; dev MRR "
                       f"{dev['untrained_mrr']} -> {dev['trained_mrr']}, head weight {trained.fusion['head']}, "
                       f"ECE {dev['ece_titles']}; saved to {folder}", err=True)
    typer.echo(f"escotag: trained {count} model(s) in {time.perf_counter() - started:.0f}s", err=True)


@eval_app.command("melo")
def eval_melo_cmd(folder: Path, model: ModelOpt = "auto", as_json: JsonOpt = False,
                  untrained: UntrainedOpt = False, encoder: EncoderOpt = None) -> None:
    """MELO dataset folder: rank its candidate concepts (corpus languages + English only, whatever the model;
    a trained head only when it learned from languages the set allows, else one is trained on those)."""
    from ..evaluation.evaluators import eval_melo

    _report(eval_melo(folder, _tagger(progress=False, encoder=encoder, use_rules=False), model,
                        trained=not untrained), as_json)


@eval_app.command("postings")
def eval_postings_cmd(
    file: Path, model: ModelOpt = "EnV2", as_json: JsonOpt = False,
    fields: Annotated[str, typer.Option(help="'title' or 'title,description'.")] = "title,description",
    untrained: UntrainedOpt = False,
    fold: Annotated[int | None, typer.Option(
        "--fold", min=1, max=5, help="Score only this fold (1-5) of the file: what 'escotag finetune "
                                     "--holdout-fold' left out.")] = None,
    encoder: EncoderOpt = None,
) -> None:
    """Labelled postings CSV (id,title,description,gold_uri[,acceptable_uris]) against all occupations."""
    from ..evaluation.evaluators import eval_postings

    tagger = _tagger(progress=False, trained=not untrained, encoder=encoder, use_rules=False)
    _report(eval_postings(file, tagger, model, fields, fold=fold), as_json)


@eval_app.command("esco-xling")
def eval_xling_cmd(lang: Annotated[str, typer.Option("--lang", help="Query language.")],
                   as_json: JsonOpt = False,
                   queries: Annotated[str, typer.Option(help="all, labels or descriptions.")] = "all",
                   untrained: UntrainedOpt = False, encoder: EncoderOpt = None) -> None:
    """This language's ESCO labels and descriptions as queries against an English-only index (and a head
    trained on every other language)."""
    from ..evaluation.evaluators import eval_esco_xling

    tagger = _tagger(progress=False, encoder=encoder, use_rules=False)
    _report(eval_esco_xling(tagger, lang, queries, trained=not untrained), as_json)


@app.command()
def tune(langs: Annotated[str, typer.Option("--langs", help="Comma-separated dev languages.")] = "en,de,nl,pt,fr,es",
         seed: int = 0, encoder: EncoderOpt = None) -> None:
    """Choose fusion weights on held-out ESCO labels (never on evaluation sets); prints the ranking."""
    from ..learn.tuning import dev_tasks, grid_search

    tagger = _tagger(progress=False, encoder=encoder, use_rules=False)
    results = grid_search(dev_tasks(tagger.pipeline, langs.split(","), seed))
    for mean, weights, scores in results[:10]:
        detail = " ".join(f"{k}={v:.3f}" for k, v in scores.items())
        typer.echo(f"{mean:.4f}  {weights}  {detail}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 5000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes; each loads every model.")] = 1,
    rules: RulesOpt = None,
    encoder: EncoderOpt = None,
) -> None:
    """Serve the HTTP API, the web page and the review page (all models are loaded before the port opens)."""
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
    # the settings travel to uvicorn's worker processes inside the app factory (pickled), not through the environment
    config = uvicorn.Config(partial(create_app, settings=settings), factory=True, host=host, port=port,
                            workers=workers, log_level="info", server_header=False)
    if workers == 1:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            raise typer.Exit(3)  # start-up failed (as uvicorn.run exits)
    else:
        Multiprocess(config, sockets=[config.bind_socket()]).run()


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
