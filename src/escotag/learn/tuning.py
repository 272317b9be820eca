"""Fusion weights chosen on a dev split carved from ESCO itself, never on evaluation sets.

Dev queries are held-out alternative labels (with their near-duplicate gendered forms removed from the
index) and, for postings, the same label as title plus the part of the occupation's description that the
index does not hold as the posting description.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import numpy as np

from ..esco.taxonomy import PIVOT
from ..index.concepts import ConceptIndex, Weights
from ..index.views import OCC_DESCRIPTION_CHARS, Views
from ..metrics import gold_ranks, metrics
from ..tagging.pipeline import Pipeline
from ..text.normalization import normalize, split_lead
from ..text.postings import description_lead, whole_posting

GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


@dataclass
class DevTask:
    name: str
    channels: dict[str, np.ndarray]
    posting: np.ndarray | None
    gold: list[list[int]]
    vectors: np.ndarray  # the queries' title vectors
    dropped: set[tuple[int, str]]  # (occupation, label) pairs kept out of the index (and out of training)
    whole: bool = False  # posting holds the scores of the pseudo-postings read whole (Pipeline.reads_whole_postings)


def _holdout(pipeline: Pipeline, lang: str, rng: random.Random, max_queries: int) -> tuple[list[tuple[int, str]], set]:
    """One alternative label per occupation (up to max_queries), and the (occupation, label) pairs to drop."""
    queries, dropped = [], set()
    occupations = list(enumerate(pipeline.taxonomy.occupations))
    rng.shuffle(occupations)
    for i, occ in occupations:
        labels = occ.labels.get(lang)
        if labels is None or len(queries) >= max_queries:
            continue
        variants = labels.variants()
        preferred = set(Views.from_pairs([(0, v) for v in variants[:2]]).texts)
        candidates = [v for v in variants if v not in preferred]
        if not candidates:
            continue
        held = rng.choice(candidates)
        stem = normalize(held)[: max(4, len(held) - 3)]
        queries.append((i, held))
        dropped |= {(i, v) for v in variants if normalize(v).startswith(stem) or stem.startswith(normalize(v))}
    return queries, dropped


def dev_tasks(pipeline: Pipeline, langs: list[str], seed: int = 0, max_queries: int = 800) -> list[DevTask]:
    """Monolingual tasks (query and index in lang + English) and cross-lingual ones (index English only)."""
    tx = pipeline.taxonomy
    tasks = []
    for lang in langs:
        # each language's split depends on the seed and the language only, whatever else is in langs
        queries, dropped = _holdout(pipeline, lang, random.Random(f"{seed}:{lang}"), max_queries)
        if not queries:
            continue  # no alternative labels to hold out (ESCO has almost none in some languages, e.g. uk)
        blocks = [pipeline.esco_block(block_lang).without(dropped) for block_lang in dict.fromkeys([lang, PIVOT])]
        titles = [q for _, q in queries]
        gold = [[i] for i, _ in queries]
        vectors = pipeline.embed(titles)
        settings = [(f"{lang}-mono", blocks)]
        if lang != PIVOT:
            settings.append((f"{lang}-xling", [pipeline.esco_block(PIVOT)]))
        posting_texts = []
        for i, q in queries:
            _, rest = split_lead(tx.occupations[i].labels[lang].description, OCC_DESCRIPTION_CHARS)
            posting_texts.append(description_lead(rest, q))
        whole = pipeline.reads_whole_postings
        dvecs = pipeline.embed([whole_posting(q, t) if whole else t or q
                                for t, q in zip(posting_texts, titles, strict=True)])
        for name, bl in settings:
            index = ConceptIndex(bl, len(tx), pipeline.weights)
            posting = index.labels(dvecs) if whole else index.posting(dvecs)
            tasks.append(DevTask(name, index.channels(vectors, titles), posting, gold, vectors, dropped, whole))
    return tasks


def fused(task: DevTask, weights: Weights, posting: bool = False) -> np.ndarray:
    if posting and task.whole and task.posting is not None:
        return task.posting
    out = weights.fuse(task.channels)
    if posting and task.posting is not None:
        out = out + weights.posting * task.posting
    return out


def evaluate(tasks: list[DevTask], weights: Weights, posting: bool = False) -> dict[str, float]:
    return {task.name: metrics(gold_ranks(fused(task, weights, posting), task.gold))[0] for task in tasks}


def grid_search(tasks: list[DevTask]) -> list[tuple[float, Weights, dict[str, float]]]:
    """Every (description, lexical) pair on GRID for titles, then the posting weight for the best pair."""
    results = []
    for d, lex in itertools.product(GRID, GRID):
        scores = evaluate(tasks, Weights(d, lex, 0.0))
        results.append((float(np.mean(list(scores.values()))), Weights(d, lex, 0.0), scores))
    results.sort(key=lambda r: -r[0])
    best = results[0][1]
    posting_results = []
    for p in GRID:
        scores = evaluate(tasks, Weights(best.description, best.lexical, p), posting=True)
        posting_results.append((float(np.mean(list(scores.values()))), Weights(best.description, best.lexical, p),
                                scores))
    posting_results.sort(key=lambda r: -r[0])
    return [posting_results[0], *results]
