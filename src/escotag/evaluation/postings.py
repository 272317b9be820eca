"""Labelled postings (``escotag eval postings``): every posting ranked against all occupations."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np

from ..esco.taxonomy import Taxonomy
from ..tagging.tagger import Tagger
from ..text.postings import FOLDS, Posting, read_labelled, rows_of_fold
from .protocol import (
    Ranking,
    Result,
    check_adapters,
    heads_trained_on,
)


def posting_hits(taxonomy: Taxonomy, row: dict) -> list[int]:
    """Occupation positions that count as correct: the gold (or every occupation under a gold ISCO group)
    and any acceptable_uris."""
    uris = [row["gold_uri"].strip(), *(u for u in (row.get("acceptable_uris") or "").split("|") if u.strip())]
    hits: set[int] = set()
    for uri in uris:
        if "/isco/" in uri:
            hits |= {taxonomy.position[u] for u in taxonomy.occupations_under(uri)}
        elif uri in taxonomy.position:
            hits.add(taxonomy.position[uri])
    return sorted(hits)

def postings_ranking(path: str | Path, tagger: Tagger, model: str = "EnV2", fields: str = "title,description",
                     batch: int = 256, fold: int | None = None) -> Ranking:
    """Every labelled posting scored against all occupations by the named model; 'auto' routes each row to its
    language's model, as the service does (the Ranking's model then counts the rows per model). fold (1..FOLDS):
    only that fold's rows (postings.fold_of), to score a part trained on the other folds out-of-fold."""
    rows = read_labelled(path)
    check_adapters(tagger.pipelines.values(), labelled=Path(path), fold=fold)
    if fold is not None:
        rows = rows_of_fold(rows, fold)
    use_description = "description" in fields
    postings = [Posting(r["title"], r.get("description", "") if use_description else "") for r in rows]
    routed = [(r.model, r.cross_lingual) for r in tagger.routes(postings, model)]
    names = list(dict.fromkeys(name for name, _ in routed))
    heads = [h for name in names for h in tagger.heads(name)]
    for head in heads:
        if head is not None:
            head.check_titles([r["title"] for r in rows], Path(path).name)
    scores = np.zeros((len(postings), len(tagger.taxonomy)), dtype=np.float32)
    for route in dict.fromkeys(routed):
        where = [i for i, r in enumerate(routed) if r == route]
        for start in range(0, len(where), batch):
            chunk = where[start : start + batch]
            scores[chunk] = tagger.scores([postings[i] for i in chunk], *route)
    counts = Counter(name for name, _ in routed)
    label = names[0] if len(names) == 1 else "auto:" + ",".join(f"{n}={counts[n]}" for n in names)
    return Ranking(scores, [posting_hits(tagger.taxonomy, r) for r in rows], label, heads_trained_on(heads))

def eval_postings(path: str | Path, tagger: Tagger, model: str = "EnV2", fields: str = "title,description",
                  batch: int = 256, fold: int | None = None) -> Result:
    started = time.perf_counter()
    ranking = postings_ranking(path, tagger, model, fields, batch, fold)
    mrr, acc = ranking.metrics()
    extra = {"fields": fields, "trained_on": ranking.trained_on} | ({"fold": f"{fold}/{FOLDS}"} if fold else {})
    return Result(Path(path).stem, ranking.model, len(ranking.gold), mrr, acc, time.perf_counter() - started, extra)
