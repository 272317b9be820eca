"""How the shipped weights that touch postings were chosen (make choose-weights): out-of-fold on real titles.

The only real labelled postings here are the jobbert_val vacancy titles. Per encoder of the plan, the trained
EnV2 head's weight on a title (training.TITLE_HEAD_WEIGHTS); then, for a two-encoder plan, the second encoder's
share of the fused score (the `accurate` alias). Each is chosen on four folds (best Acc@5, then best MRR, then
the smaller value) and scored on the fifth — nested, so no fold's figure saw its own rows — and finally chosen on
all rows (the value to ship). The MELO sets are not read: they only check the choice (`make eval`).

    python benchmarks/choose_weights.py [--encoders use,e5]   # needs `escotag train -m EnV2 --encoder ENC` first

An encoder fine-tuned on these titles (e5ft) is scored out-of-fold: ``--adapters`` names one adapter per fold, each
trained with that fold held out (`escotag finetune --holdout-fold F`; ``shipped`` for the package's, fold 5), and
each fold's rows are scored by its own adapter. Choosing on four folds then uses adapters that saw the fifth fold's
titles (never its scores): the usual out-of-fold stacking; a fully nested choice would take 20 trainings.
``--fold F`` reads only fold F's rows and makes the whole nested choice within them: with ``--fold 5`` the
weights for the shipped adapter (which never saw fold 5) are chosen without fold adapters, on a fifth of the rows.

Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold

from escotag import Tagger
from escotag.evaluation.postings import postings_ranking
from escotag.metrics import gold_ranks, metrics
from escotag.tagging.fusion import fuse
from escotag.text.postings import clean_title, fold_of, read_labelled, rows_of_fold

SHARED = Path(os.environ.get("ESCOTAG_SHARED", "../shared"))
HEAD_GRID = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
SHARE_GRID = tuple(round(x, 2) for x in np.arange(0.0, 1.0001, 0.05))
FOLDS = 5


def parts(encoder: str, path: Path, fold: int | None = None) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """Untrained EnV2 scores of the titles (of one fold: 1..5), the trained EnV2 head's logits on them, and their
    gold."""
    untrained = postings_ranking(path, Tagger(encoder=encoder, trained=False, progress=False), "EnV2", "title",
                                 fold=fold)
    tagger = Tagger(encoder=encoder, progress=False)
    head = tagger.trained("EnV2")
    if head is None:
        raise SystemExit(f"no trained EnV2 for {encoder}: run escotag train -m EnV2 --encoder {encoder}")
    rows = read_labelled(path)
    if fold is not None:
        rows = rows_of_fold(rows, fold)
    titles = [clean_title(r["title"]) for r in rows]
    logits = np.concatenate([head.head.logits(tagger.pipeline.embed(titles[s : s + 512]))
                             for s in range(0, len(titles), 512)])
    return untrained.scores, logits, untrained.gold


def out_of_fold_parts(adapters: list[str], path: Path) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """parts() of e5ft with each fold's rows scored by the adapter that fold was held out of."""
    folds = fold_of(len(read_labelled(path)))
    if len(adapters) != FOLDS:
        raise SystemExit(f"--adapters needs {FOLDS} adapters, one per held-out fold, in fold order")
    scores = logits = None
    gold: list[list[int]] = [[] for _ in folds]
    for fold, adapter in enumerate(adapters, 1):
        s0, h, g = parts("e5ft" if adapter == "shipped" else f"e5ft:{adapter}", path, fold)
        rows = np.flatnonzero(folds == fold - 1)
        if scores is None:
            scores, logits = np.zeros((len(folds), s0.shape[1]), s0.dtype), np.zeros((len(folds), h.shape[1]), h.dtype)
        scores[rows], logits[rows] = s0, h
        for i, row in enumerate(rows):
            gold[row] = g[i]
    return scores, logits, gold


def scored(scores: np.ndarray, gold: list[list[int]], rows: np.ndarray) -> tuple[float, dict[int, float]]:
    return metrics(gold_ranks(scores[rows], [gold[i] for i in rows]))


def best(grid, scores_of, gold: list[list[int]], rows: np.ndarray) -> float:
    """The grid value with the best Acc@5 on rows (ties: the better MRR, then the smaller value)."""
    def key(v: float) -> tuple[float, float, float]:
        mrr, acc = scored(scores_of(v), gold, rows)
        return acc[5], mrr, -v
    return max(grid, key=key)


def choose(pieces: dict, gold: list[list[int]], rows: np.ndarray) -> dict:
    """Head weight per encoder, then the last encoder's share, all chosen on rows."""
    chosen = {"head": {enc: best(HEAD_GRID, lambda w, p=p: p[0] + w * p[1], gold, rows)
                       for enc, p in pieces.items()}}
    if len(pieces) == 2:
        (a, pa), (b, pb) = pieces.items()
        sa, sb = pa[0] + chosen["head"][a] * pa[1], pb[0] + chosen["head"][b] * pb[1]
        chosen["share"] = best(SHARE_GRID, lambda s: fuse([sa, sb], [1 - s, s]), gold, rows)
    return chosen


def final_scores(pieces: dict, chosen: dict) -> np.ndarray:
    trained = [p[0] + chosen["head"][enc] * p[1] for enc, p in pieces.items()]
    if len(trained) == 1:
        return trained[0]
    return fuse(trained, [1 - chosen["share"], chosen["share"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoders", default="use,e5", help="one encoder, or two for the ensemble share")
    parser.add_argument("--file", default=str(SHARED / "eval/postings/jobbert_val_titles_en.csv"))
    parser.add_argument("--adapters", help="e5ft's adapter per held-out fold, comma-separated in fold order "
                        "('shipped' for the package's, fold 5): scores e5ft out-of-fold")
    parser.add_argument("--fold", type=int, choices=range(1, FOLDS + 1),
                        help="only this fold's rows, the nested choice made within them (5: the shipped e5ft)")
    args = parser.parse_args()
    if args.fold and args.adapters:
        raise SystemExit("--fold and --adapters exclude each other: --adapters scores every fold")
    path = Path(args.file)
    pieces, gold = {}, None
    for enc in args.encoders.split(","):
        if enc == "e5ft" and args.adapters:
            s0, h, gold = out_of_fold_parts(args.adapters.split(","), path)
        else:
            s0, h, gold = parts(enc, path, args.fold)
        pieces[enc] = (s0, h)
    n = len(gold)
    out_of_fold = np.zeros_like(next(iter(pieces.values()))[0])
    folds = []
    for train_rows, test_rows in KFold(FOLDS, shuffle=True, random_state=0).split(np.arange(n)):
        chosen = choose(pieces, gold, train_rows)
        out_of_fold[test_rows] = final_scores(pieces, chosen)[test_rows]
        folds.append(chosen)
    everything = np.arange(n)
    untrained = {enc: scored(p[0], gold, everything) for enc, p in pieces.items()}
    mrr, acc = metrics(gold_ranks(out_of_fold, gold))
    summary = {
        "file": path.name, "fold": args.fold, "rows": n, "folds": folds,
        "untrained": {enc: {"mrr": round(m, 4), "acc@1": round(a[1], 4), "acc@5": round(a[5], 4)}
                      for enc, (m, a) in untrained.items()},
        "out_of_fold": {"mrr": round(mrr, 4), "acc@1": round(acc[1], 4), "acc@5": round(acc[5], 4)},
        "chosen_on_all_rows": choose(pieces, gold, everything),
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
