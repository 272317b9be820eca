"""``escotag eval``: accuracy on labelled sets by the protocol (docs/accuracy.md); ``escotag tune``: fusion weights
on held-out ESCO labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..esco.folds import CONCEPT_FOLDS
from .options import EncoderOpt, JsonOpt, ModelOpt, UntrainedOpt, make_tagger

app = typer.Typer(no_args_is_help=True, help="Measure accuracy on labelled sets (docs/accuracy.md).")


def _report(result, as_json: bool) -> None:
    d = result.to_dict()
    if not as_json:
        typer.echo("  ".join(f"{k}={v}" for k, v in d.items()))
    else:
        typer.echo(json.dumps(d))


@app.command("melo")
def eval_melo_cmd(folder: Path, model: ModelOpt = "auto", as_json: JsonOpt = False,
                  untrained: UntrainedOpt = False, encoder: EncoderOpt = None) -> None:
    """MELO dataset folder: rank its candidate concepts (corpus languages + English only, whatever the model;
    a trained head only when it learned from languages the set allows, else one is trained on those)."""
    from ..evaluation.melo import eval_melo

    _report(eval_melo(folder, make_tagger(progress=False, encoder=encoder, use_rules=False), model,
                        trained=not untrained), as_json)


@app.command("postings")
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
    from ..evaluation.postings import eval_postings

    tagger = make_tagger(progress=False, trained=not untrained, encoder=encoder, use_rules=False)
    _report(eval_postings(file, tagger, model, fields, fold=fold), as_json)


@app.command("esco-xling")
def eval_xling_cmd(lang: Annotated[str, typer.Option("--lang", help="Query language.")],
                   as_json: JsonOpt = False,
                   queries: Annotated[str, typer.Option(
                       help="all (labels and descriptions), labels, descriptions, postings (synthetic: a "
                            "description without its lead, which names the occupation) or ads (such a description "
                            "under its broader concept's label as the title).")] = "all",
                   untrained: UntrainedOpt = False, encoder: EncoderOpt = None,
                   concept_fold: Annotated[int | None, typer.Option(
                       "--concept-fold", min=1, max=CONCEPT_FOLDS,
                       help="Query with this concept fold's occupations only: what 'escotag finetune "
                            "--holdout-concepts' left out.")] = None,
                   same_language: Annotated[bool, typer.Option(
                       "--same-language", help="Against this language's ESCO texts instead of English ones, the "
                                               "queried labels left out (with --queries labels, postings or ads, "
                                               "--untrained); English queries only this way.")
                   ] = False) -> None:
    """This language's ESCO labels, descriptions or synthetic postings as queries against an English-only index
    (and a head trained on every other language), or against its own language's without the queried labels
    (--same-language)."""
    from ..evaluation.xling import check_request, eval_esco_xling

    check_request(lang, queries, not untrained, same_language)
    tagger = make_tagger(progress=False, encoder=encoder, use_rules=False)
    _report(eval_esco_xling(tagger, lang, queries, trained=not untrained, concept_fold=concept_fold,
                            same_language=same_language), as_json)


def tune(langs: Annotated[str, typer.Option("--langs", help="Comma-separated dev languages.")] = "en,de,nl,pt,fr,es",
         seed: int = 0, encoder: EncoderOpt = None) -> None:
    """Choose fusion weights on held-out ESCO labels (never on evaluation sets); prints the ranking."""
    from ..learn.tuning import dev_tasks, grid_search

    tagger = make_tagger(progress=False, encoder=encoder, use_rules=False)
    results = grid_search(dev_tasks(tagger.pipeline, langs.split(","), seed))
    for mean, weights, scores in results[:10]:
        detail = " ".join(f"{k}={v:.3f}" for k, v in scores.items())
        typer.echo(f"{mean:.4f}  {weights}  {detail}")
