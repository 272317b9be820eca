"""What the commands share: their common options, the Tagger a command uses, and how a command fails."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
         "use+e5 or 'en=use*0.4+mpnet*0.6;*=use+e5' (README: Plans).")]


RulesOpt = Annotated[Path | None, typer.Option(
    "--rules", envvar="ESCOTAG_RULES", show_envvar=True,
    help="Rules CSV (kind,pattern,language,occupation_uri; README: Review and rules); default "
         "ESCOTAG_HOME/rules.csv when it exists.")]


def make_tagger(progress: bool = True, trained: bool = True, encoder: str | None = None, rules: Path | None = None,
            use_rules: bool = True):
    """A Tagger for a command; use_rules=False for training and evaluation, which measure the model alone."""
    from ..tagging.rules import Rules
    from ..tagging.tagger import Tagger

    return Tagger(progress=progress, trained=trained, encoder=encoder, rules=rules if use_rules else Rules())


def fail(message: str) -> None:
    typer.echo(f"escotag: error: {message}", err=True)
    raise typer.Exit(2)
