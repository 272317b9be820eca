"""Whether the EnV2 head's training settings (heads.head.HeadConfig) should change: chosen on real titles, nested.

For each setting in a grid of epochs x learning rate x decay, an EnV2 head is trained on ESCO as `escotag train`
trains it (the dev split, the same examples), and its logits are added to the untrained scores of one jobbert_val
fold's titles at every head weight of choose_weights' grid. The (setting, weight) pair with the best Acc@5 (then
MRR, then the shipped setting, then the smaller weight) is chosen on four inner folds and scored on the fifth —
the figure to set against choose_weights' nested choice of the weight alone. Fold 5 is the one no shipped e5ft
adapter saw. The MELO sets are not read.

    python benchmarks/choose_head_config.py --encoder e5ft --fold 5   # ~4 min for e5ft's English head

Prints one JSON line per setting (its ESCO dev check, jobbert at the shipped weight and at its best weight), then
the nested choice per shuffle of the inner folds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
from choose_weights import FOLDS, HEAD_GRID, SHARED, best, scored
from sklearn.model_selection import KFold

from escotag import Tagger
from escotag.evaluation.postings import postings_ranking
from escotag.heads.head import HeadConfig
from escotag.learn.training import title_head_weight, train
from escotag.metrics import gold_ranks, metrics
from escotag.text.postings import clean_title, read_labelled, rows_of_fold

GRID = {"epochs": (2, 4, 8), "learning_rate": (2e-3, 4e-3, 8e-3), "decay": (1e-4, 1e-3, 1e-2)}


def _figures(mrr: float, acc: dict[int, float]) -> list[float]:
    return [round(mrr, 4), round(acc[1], 4), round(acc[5], 4)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="e5ft")
    parser.add_argument("--file", default=str(SHARED / "eval/postings/jobbert_val_titles_en.csv"))
    parser.add_argument("--fold", type=int, default=5, choices=range(1, FOLDS + 1))
    args = parser.parse_args()
    path = Path(args.file)
    tagger = Tagger(encoder=args.encoder, trained=False, progress=False)
    untrained = postings_ranking(path, tagger, "EnV2", "title", fold=args.fold)
    base, gold = untrained.scores, untrained.gold
    pipeline = tagger.pipeline
    vectors = pipeline.embed([clean_title(r["title"]) for r in rows_of_fold(read_labelled(path), args.fold)])
    languages = pipeline.spec("EnV2").languages
    shipped_weight, shipped = title_head_weight(pipeline.encoder.name, languages[0]), HeadConfig()
    everything = np.arange(len(gold))
    logits = {}
    for epochs, rate, decay in itertools.product(*GRID.values()):
        config = HeadConfig(epochs=epochs, learning_rate=rate, decay=decay)
        started = time.perf_counter()
        model = train(pipeline, languages, "EnV2", config=config, progress=False, head_weight=shipped_weight)
        logits[config] = model.head.logits(vectors)
        top = best(HEAD_GRID, lambda w, c=config: base + w * logits[c], gold, everything)
        at_shipped, at_top = (_figures(*scored(base + w * logits[config], gold, everything))
                              for w in (shipped_weight, top))
        dev = model.manifest["dev"]
        print(json.dumps({"epochs": epochs, "learning_rate": rate, "decay": decay,
                          "seconds": round(time.perf_counter() - started, 1),
                          "esco_dev_mrr": [dev["untrained_mrr"], dev["trained_mrr"]],
                          f"at_{shipped_weight}": at_shipped,
                          "best_weight": top, "at_best": at_top}), flush=True)
    candidates = [(c, w) for c in logits for w in HEAD_GRID]

    def key(candidate: tuple[HeadConfig, float], rows: np.ndarray) -> tuple:
        config, weight = candidate
        mrr, acc = scored(base + weight * logits[config], gold, rows)
        return acc[5], mrr, config == shipped, -weight

    for seed in (0, 1, 2):
        out_of_fold, chosen = np.zeros_like(base), []
        for train_rows, test_rows in KFold(FOLDS, shuffle=True, random_state=seed).split(everything):
            config, weight = max(candidates, key=lambda c: key(c, train_rows))
            chosen.append([config.epochs, config.learning_rate, config.decay, weight])
            out_of_fold[test_rows] = (base + weight * logits[config])[test_rows]
        print(json.dumps({"seed": seed, "chosen": chosen,
                          "nested": _figures(*metrics(gold_ranks(out_of_fold, gold)))}), flush=True)


if __name__ == "__main__":
    main()
