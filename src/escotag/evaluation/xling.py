"""ESCO cross-lingual (``escotag eval esco-xling``): a language's ESCO texts as queries against English alone."""

from __future__ import annotations

import time

from ..errors import DataError
from ..esco.folds import concepts_in_fold, fold_name
from ..esco.taxonomy import PIVOT
from ..index.views import occupation_description
from ..learn.training import for_languages
from ..metrics import gold_ranks, metrics
from ..tagging.models import BY_LANGUAGE
from ..tagging.tagger import Tagger
from ..text.normalization import label_variants
from .protocol import (
    Result,
    check_adapters,
    heads_trained_on,
    scored,
    training_languages,
)


def eval_esco_xling(tagger: Tagger, lang: str, queries: str = "all", batch: int = 512, trained: bool = True,
                    concept_fold: int | None = None) -> Result:
    """Queries: this language's ESCO preferred labels (each gendered variant) and descriptions; the index
    holds English texts only and a trained head has learned from every other language but this one, so
    nothing in the query language reaches the model. concept_fold: only the occupations of that fold query
    (every occupation is still a candidate), so an encoder fine-tuned with the fold held out can be scored."""
    started = time.perf_counter()
    tx = tagger.taxonomy
    if lang not in tx.languages or lang == PIVOT:
        raise DataError(tx.source, f"no ESCO texts in {lang!r} other than English to query with")
    texts, gold = [], []
    querying = concepts_in_fold(tx, concept_fold) if concept_fold else range(len(tx.occupations))
    for i, occ in enumerate(tx.occupations):
        labels = occ.labels.get(lang)
        if labels is None or i not in querying:
            continue
        if queries in ("all", "labels"):
            for v in label_variants(labels.preferred):
                texts.append(v)
                gold.append([i])
        if queries in ("all", "descriptions") and labels.description:
            texts.append(occupation_description(labels))
            gold.append([i])
    allowed = training_languages(lang, [PIVOT], tx.languages)
    model = BY_LANGUAGE.get(lang, BY_LANGUAGE[PIVOT])
    check_adapters([pipeline for pipeline, _ in tagger.members(model, cross_lingual=True)], esco_language=lang,
                   concept_fold=concept_fold)
    candidates = {}
    for pipeline, _ in tagger.members(model, cross_lingual=True):
        head = for_languages(pipeline, allowed, lang, progress=pipeline.progress) if trained else None
        if head is not None:
            head.check_languages(allowed, f"esco-xling-{lang}")
        # every occupation from its English ESCO texts alone; a head that learned from every language but lang
        candidates[pipeline] = pipeline.esco_candidates(PIVOT, head)
    ranks = gold_ranks(scored(tagger, texts, model, True, candidates, batch), gold)
    mrr, acc = metrics(ranks)
    return Result(f"esco-xling-{lang}", "en-only", len(texts), mrr, acc, time.perf_counter() - started,
                  {"queries": queries, "trained_on": heads_trained_on([c.trained for c in candidates.values()]),
                   **({"concept_fold": fold_name(concept_fold)} if concept_fold else {})})
