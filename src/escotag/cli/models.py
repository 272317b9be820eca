"""``escotag models``, ``build`` and ``train``: what the models are, their indices built ahead, their heads trained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .options import EncoderOpt, JsonOpt, fail, make_tagger


def models(as_json: JsonOpt = False, encoder: EncoderOpt = None) -> None:
    """List the models, their languages and whether they are trained (escotag train), for an encoder plan."""
    from dataclasses import asdict

    from ..tagging.inventory import models_info

    tagger = make_tagger(progress=False, encoder=encoder)
    rows = models_info(tagger)
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], ensure_ascii=False))
        return
    for pipeline in tagger.pipelines.values():
        if adapter := getattr(pipeline.encoder, "adapter", None):
            typer.echo(f"adapter {pipeline.encoder.name}: {adapter.folder} (sha256 {adapter.digest[:16]}…, "
                       f"{sum(adapter.manifest.get('pairs', {}).values()):,} pairs)")
    typer.echo(f"encoder {tagger.encoder_description}\n"
               f"auto   routes each posting to its language's model   (trained models: {tagger.models_dir})")
    for r in rows:
        if not r.available:
            state = "no ESCO data for this language"
        elif r.trained:
            dev = ", ".join(f"{d.untrained} -> {d.trained}" for d in r.dev_mrr or [])
            state = f"trained on {'+'.join(r.trained_on or [])}, dev MRR {dev}"
        else:
            state = "untrained"
        typer.echo(f"{r.name:<6} {'+'.join(r.languages):<6} {state:<45} {r.summary}")


def build(
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Model(s); default all.")] = None,
    encoder: EncoderOpt = None,
) -> None:
    """Build (or verify) the cached indices of the models."""
    import time

    started = time.perf_counter()
    tagger = make_tagger(encoder=encoder)
    tagger.load(model or None)
    typer.echo(f"escotag: indices ready in {time.perf_counter() - started:.1f}s", err=True)


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

    from ..learn.training import train_models, trainable_models

    if bool(model) == all_models:
        fail("give --model M (repeatable) or --all")
    tagger = make_tagger(trained=False, encoder=encoder, use_rules=False)
    started = time.perf_counter()
    count = train_models(tagger, trainable_models(tagger) if all_models else model or [], out, seed, labelled,
                         head_weight, missing, report=lambda line: typer.echo(f"escotag: {line}", err=True))
    typer.echo(f"escotag: trained {count} model(s) in {time.perf_counter() - started:.0f}s", err=True)
