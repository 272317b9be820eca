"""``escotag finetune``: fine-tune multilingual-e5-small for occupations into a low-rank adapter (needs torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..esco.folds import CONCEPT_FOLDS
from ..finetune.pairs import LABELLED_REPEAT
from ..finetune.train import FinetuneConfig
from ..text.postings import FOLDS

DEFAULTS = FinetuneConfig()  # the options' defaults are the training recipe's (the shipped adapter's)


def finetune(
    labelled: Annotated[list[Path] | None, typer.Option(
        "--labelled", help="Labelled postings CSV (id,title,description,gold_uri): real titles, a review export "
                           "(repeatable). Titles pair with the gold occupation's English label.")] = None,
    holdout_fold: Annotated[int | None, typer.Option(
        "--holdout-fold", min=1, max=FOLDS,
        help=f"Leave out this fold (1-{FOLDS}) of every --labelled file, to score it out-of-fold with "
             "'escotag eval postings --fold'.")] = None,
    holdout_concepts: Annotated[int | None, typer.Option(
        "--holdout-concepts", min=1, max=CONCEPT_FOLDS,
        help=f"Leave out every pair of the occupations in this concept fold (1-{CONCEPT_FOLDS}, by URI), in every "
             "language and in --labelled files, to score them with 'escotag eval esco-xling --concept-fold'.")
    ] = None,
    postings: Annotated[bool, typer.Option(
        "--postings/--no-postings",
        help="Add synthetic posting descriptions (an occupation's description after its lead, in English with "
             "some of its --skills) paired with its preferred label, in every language.")] = False,
    skills: Annotated[Path | None, typer.Option(
        "--skills", exists=True, dir_okay=False,
        help="CSV of each occupation's ESCO skill labels (occupationUri, relationType, skillLabel), e.g. "
             "occupationSkillLabels_en.csv.gz: English synthetic postings list some of them (with --postings).")
    ] = None,
    languages: Annotated[str | None, typer.Option(
        "--languages", help="Comma-separated ESCO languages to pair (default: every language of the taxonomy).")
    ] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Adapter folder (default ESCOTAG_HOME/adapters/e5-occupations); use it as encoder "
                      "'e5ft:<folder>'.")] = None,
    steps: Annotated[int, typer.Option(min=1, help="Training steps.")] = DEFAULTS.steps,
    batch_size: Annotated[int, typer.Option("--batch-size", min=2, help="Pairs per step (in-batch negatives).")
                          ] = DEFAULTS.batch_size,
    mini_batch: Annotated[int, typer.Option(
        "--mini-batch", min=0,
        help="Back-propagate a batch this many pairs at a time (a cached loss: the same gradient, the memory of "
             "this many pairs), so a large --batch-size fits in memory. 0: the whole batch at once.")
    ] = DEFAULTS.mini_batch,
    learning_rate: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW, linear decay).")
                             ] = DEFAULTS.learning_rate,
    warmup: Annotated[int, typer.Option(min=1, help="Steps of linear warm-up to the peak learning rate.")
                      ] = DEFAULTS.warmup,
    rank: Annotated[int, typer.Option(min=1, help="Adapter rank.")] = DEFAULTS.rank,
    seed: Annotated[int, typer.Option(help="Seed of the pair order and the adapter's initial weights.")
                    ] = DEFAULTS.seed,
    mask_isco_group: Annotated[bool, typer.Option(
        "--mask-isco-group", help="Do not use occupations of the same ISCO-08 unit group as negatives.")
    ] = DEFAULTS.mask_isco_group,
    hard_negatives: Annotated[int, typer.Option(
        "--hard-negatives", min=0,
        help="Make each batch of blocks of this many pairs of alike occupations (clusters of the base model's "
             "vectors of their English labels): hard negatives at no extra cost a step. 0: random batches.")
    ] = DEFAULTS.hard_negatives,
    resume: Annotated[bool, typer.Option(help="Continue from the checkpoint in --out, if any.")] = True,
) -> None:
    """Contrastive fine-tuning (in-batch negatives) of e5's adapters on ESCO labels in every language (synonyms,
    translations, description leads, optionally synthetic postings) and labelled titles; checkpoints every 50
    steps (and every 10 minutes), resumes when run again."""
    import time

    from ..encoders.sentence_transformers import default_device
    from ..esco import load_taxonomy
    from ..esco.folds import concepts_in_fold, fold_name
    from ..esco.synthetic import read_skill_labels
    from ..esco.taxonomy import PIVOT
    from ..finetune.pairs import esco_pairs, labelled_pairs, posting_pairs
    from ..finetune.train import finetune as run
    from ..settings import get_settings
    from ..storage import file_sha
    from ..text.postings import read_labelled

    taxonomy = load_taxonomy()
    langs = [x.strip() for x in languages.split(",")] if languages else None
    held_out = concepts_in_fold(taxonomy, holdout_concepts) if holdout_concepts else set()
    if skills and not postings:
        raise typer.BadParameter("--skills is read for synthetic postings: add --postings", param_hint="--skills")
    pairs = esco_pairs(taxonomy, langs, held_out)
    if postings:
        pairs += posting_pairs(taxonomy, read_skill_labels(skills, taxonomy) if skills else None, langs, held_out)
    sources = []
    for path in labelled or []:
        rows = read_labelled(path)
        found = labelled_pairs(taxonomy, rows, holdout_fold - 1 if holdout_fold else None, held_out)
        pairs += found * LABELLED_REPEAT
        sources.append({"file": path.name, "sha256": file_sha(path), "rows": len(rows), "pairs": len(found),
                        "repeat": LABELLED_REPEAT})
    config = FinetuneConfig(steps=steps, batch_size=batch_size, learning_rate=learning_rate, warmup=warmup, rank=rank,
                            alpha=rank * DEFAULTS.alpha / DEFAULTS.rank, seed=seed, mask_isco_group=mask_isco_group,
                            hard_negatives=hard_negatives, mini_batch=mini_batch)
    record = {"esco": {"source": taxonomy.source, "version": taxonomy.version, "content": taxonomy.content_hash,
                       "languages": langs or taxonomy.languages,
                       "holdout_concepts": fold_name(holdout_concepts) if holdout_concepts else None,
                       "held_out_occupations": len(held_out),
                       "skills": {"file": skills.name, "sha256": file_sha(skills)} if skills else None},
              "labelled": sources, "holdout_fold": f"{holdout_fold}/{FOLDS}" if holdout_fold else None}
    target = out or get_settings().home / "adapters" / "e5-occupations"
    device = default_device()
    typer.echo(f"escotag: {len(pairs):,} pairs, {steps} steps of {batch_size} on {device} -> {target}", err=True)
    started = time.perf_counter()
    run(pairs, target, config, [o.isco_code for o in taxonomy.occupations], record, device=device, resume=resume,
        labels=[o.label(PIVOT) for o in taxonomy.occupations])
    typer.echo(f"escotag: adapter written to {target} in {time.perf_counter() - started:.0f}s; use it with "
               f"--encoder e5ft:{target}", err=True)


def average_adapters(
    adapters: Annotated[list[Path], typer.Argument(
        help="Adapter folders escotag finetune wrote from the same pairs (e.g. random batches and "
             "--hard-negatives).", exists=True, file_okay=False)],
    out: Annotated[Path, typer.Option("--out", help="The averaged adapter's folder; use it as 'e5ft:<folder>'.")],
) -> None:
    """Average adapters of the same base and training pairs into one (a "soup", exact: its rank is the sum of
    theirs). The shipped adapter is the soup of two 6,000-step runs (docs/fine-tuning.md)."""
    from ..finetune.soup import average_adapters as average

    soup = average(adapters, out)
    typer.echo(f"escotag: {len(adapters)} adapters averaged into {out} (rank {soup.summary()['rank']}); use it with "
               f"--encoder e5ft:{out}", err=True)
