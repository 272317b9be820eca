"""ESCO cross-lingual (``escotag eval esco-xling``): a language's ESCO texts as queries against English alone."""

from __future__ import annotations

import time

from ..errors import ConfigError, DataError
from ..esco.folds import concepts_in_fold, fold_name
from ..esco.synthetic import synthetic_postings
from ..esco.taxonomy import PIVOT, Taxonomy
from ..index.views import occupation_description, taxonomy_views
from ..learn.training import for_languages
from ..metrics import gold_ranks, metrics
from ..tagging.models import BY_LANGUAGE
from ..tagging.tagger import Tagger
from ..text.normalization import label_variants
from ..text.postings import Posting
from .protocol import (
    Result,
    check_adapters,
    heads_trained_on,
    scored,
    training_languages,
)

QUERIES = ("all", "labels", "descriptions", "postings", "ads")


def check_request(lang: str, queries: str, trained: bool, same_language: bool) -> None:
    """ConfigError for what eval_esco_xling cannot score (before a tagger is built for it)."""
    if lang == PIVOT and not same_language:
        raise ConfigError("English ESCO texts query the English index only as a same-language set "
                          "(--same-language); cross-lingual queries are in another language")
    if queries not in QUERIES:
        raise ConfigError(f"queries must be one of {', '.join(QUERIES)}, not {queries!r}")
    if same_language and queries not in ("labels", "postings", "ads"):
        raise ConfigError("a same-language ESCO set queries with labels (left out of the index they are scored "
                          "against) or synthetic postings (--queries labels, postings or ads): its descriptions are "
                          "in that index")
    if same_language and trained:
        raise ConfigError("a same-language ESCO set is scored untrained: every head learned its occupations' texts")


def broader_label(taxonomy: Taxonomy, position: int, lang: str) -> str:
    """The first label variant in lang of the occupation's broader concept (an ISCO group or an occupation), or ''."""
    parent = taxonomy.get(taxonomy.occupations[position].parent or "")
    labels = parent.labels.get(lang) if parent else None
    return label_variants(labels.preferred)[0] if labels and labels.preferred else ""


def eval_esco_xling(tagger: Tagger, lang: str, queries: str = "all", batch: int = 512, trained: bool = True,
                    concept_fold: int | None = None, same_language: bool = False) -> Result:
    """Queries: this language's ESCO preferred labels (each gendered variant) and descriptions (``all``, or
    either), or synthetic posting descriptions (``postings``: the description after its lead, which names the
    occupation; ``esco.synthetic``), each scored as a title is, or synthetic ads (``ads``: that description under
    the label of the occupation's broader concept — an ISCO group or a broader occupation — as the title, scored
    as a posting with a description, by the plan's described part). The index holds English texts only and a
    trained head has learned from every other language but this one, so nothing in the query language reaches
    the model. concept_fold: only the occupations of that fold query (every occupation is still a candidate), so
    an encoder fine-tuned with the fold held out can be scored. same_language: postings against the query
    language's ESCO texts instead, untrained (as a posting in a language with a model is answered); queried labels
    are left out of that index, so an occupation is found by its other labels and its description. English
    queries only this way."""
    started = time.perf_counter()
    tx = tagger.taxonomy
    check_request(lang, queries, trained, same_language)
    if lang not in tx.languages:
        raise DataError(tx.source, f"no ESCO texts in {lang!r} to query with")
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
    if queries in ("postings", "ads"):
        found = synthetic_postings(tx, languages=[lang], only=set(querying))
        if queries == "ads":  # under the broader concept's label; those without one in lang are left out
            titled = [(broader_label(tx, p.concept, lang), p) for p in found]
            texts = [Posting(t, p.text, language=lang) for t, p in titled if t]
            gold = [[p.concept] for t, p in titled if t]
        else:
            texts, gold = [p.text for p in found], [[p.concept] for p in found]
    allowed = training_languages(lang, [PIVOT], tx.languages)
    model = BY_LANGUAGE.get(lang, BY_LANGUAGE[PIVOT])
    members = tagger.members(model, cross_lingual=not same_language, described=queries == "ads")
    check_adapters([pipeline for pipeline, _ in members], esco_language=lang, concept_fold=concept_fold)
    # same-language labels: lang's ESCO texts without the queried labels (an index of its own, cached by its texts);
    # an occupation left with no other label in lang does not query
    views = None
    if same_language and queries == "labels":
        labels, descriptions = taxonomy_views(tx, lang)
        labels = labels.subset(labels.keeping({(g[0], t) for t, g in zip(texts, gold, strict=True)}))
        views = {lang: (labels, descriptions)}
        findable = set(labels.owner.tolist())
        kept = [i for i, g in enumerate(gold) if g[0] in findable]
        texts, gold = [texts[i] for i in kept], [gold[i] for i in kept]
    candidates = {}
    for pipeline, _ in members:
        head = for_languages(pipeline, allowed, lang, progress=pipeline.progress) if trained else None
        if head is not None:
            head.check_languages(allowed, f"esco-xling-{lang}")
        # every occupation from its English (or lang's) ESCO texts alone; a head that learned from every language
        # but lang
        candidates[pipeline] = (
            pipeline.candidates(views, len(tx), {"taxonomy": tx.content_hash, "candidates": "esco without queries"})
            if views else pipeline.esco_candidates(lang if same_language else PIVOT, head))
    ranks = gold_ranks(scored(tagger, texts, model, not same_language, candidates, batch), gold)
    mrr, acc = metrics(ranks)
    return Result(f"esco-{lang}" if same_language else f"esco-xling-{lang}", f"{lang}-only" if same_language
                  else "en-only", len(texts), mrr, acc, time.perf_counter() - started,
                  {"queries": queries, "trained_on": heads_trained_on([c.trained for c in candidates.values()]),
                   **({"concept_fold": fold_name(concept_fold)} if concept_fold else {})})
