"""Evaluation harness: MELO, labelled postings and ESCO cross-lingual checks, with one set of metrics.

Protocol (README, "Evaluation"): MELO ranks exactly the dataset's candidate concepts, using only texts in
the corpus language(s) and English; postings rank all occupations, an ISCO-group gold counting every
occupation under it; queries and gold labels are used for scoring only.

Learned parts obey the same language rule (``training_languages``): the harness uses a trained model only when
every language it learned from is allowed for the set, and otherwise trains one on the allowed languages.
"""

from __future__ import annotations

import csv
import functools
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError, LeakageError
from ..esco.taxonomy import PIVOT, Taxonomy
from ..heads.trained import TrainedModel
from ..index.concepts import ConceptIndex, Views
from ..learn.training import for_languages
from ..metrics import gold_ranks, metrics
from ..storage import file_sha
from ..tagging.models import AUTO, BY_LANGUAGE, MODELS, resolve
from ..tagging.pipeline import Candidates, Pipeline, available_models, occupation_description
from ..tagging.tagger import Tagger
from ..text.normalization import label_variants
from ..text.postings import FOLDS, Posting, read_labelled, rows_of_fold


@dataclass
class Result:
    dataset: str
    model: str
    n: int
    mrr: float
    acc: dict[int, float]
    seconds: float
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"dataset": self.dataset, "model": self.model, "n": self.n, "mrr": round(self.mrr, 4)}
        out.update({f"acc@{k}": round(v, 4) for k, v in self.acc.items()})
        out["seconds"] = round(self.seconds, 2)
        out.update(self.extra)
        return out


def _read_tsv(path: Path, columns: int) -> list[list[str]]:
    if not path.exists():
        raise DataError(path, "missing file (is this a MELO dataset folder?)")
    rows = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        for line_no, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if len(row) < columns:
                raise DataError(path, f"expected {columns} tab-separated fields, got {len(row)}", line_no)
            rows.append(row)
    return rows


def _scored(tagger: Tagger, texts: Sequence[str], model: str, cross_lingual: bool, candidates: Candidates,
            batch: int = 512) -> np.ndarray:
    """Queries scored as titles against a candidate set, by the code that tags (Tagger.scores), in batches."""
    chunks = [tagger.scores([Posting(t) for t in texts[start : start + batch]], model, cross_lingual, candidates)
              for start in range(0, len(texts), batch)]
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


def melo_languages(name: str) -> list[str]:
    """Languages a model may use on a MELO dataset: its corpus language(s) and English."""
    match = re.search(r"_c_([a-z_]+)$", name)
    if not match:
        raise DataError(name, "not a MELO dataset name (<country>_q_<lang>_c_<langs>)")
    corpus = [c for c in match.group(1).split("_") if c]
    return list(dict.fromkeys([*corpus, PIVOT]))


def training_languages(query: str, corpus: Sequence[str], available: Sequence[str]) -> list[str]:
    """Languages whose texts may have reached a learned part of a model scored on a set.

    Monolingual sets (the query language among the corpus languages): the corpus languages and English.
    Cross-lingual sets (an English corpus for queries in another language, esco-xling): every ESCO language
    except the query language, so the set measures transfer to a language the model never learned from.
    """
    if query in corpus:
        return list(dict.fromkeys([*corpus, PIVOT]))
    return [lang for lang in available if lang != query]


def trained_for(pipeline: Pipeline, model: str, allowed: Sequence[str], purpose: str) -> TrainedModel:
    """The model's trained parts when they learned from allowed languages only; else parts trained now on
    exactly the allowed languages. Checked again before use, whatever the source."""
    spec = MODELS.get(resolve(model))
    own = pipeline.trained(spec.name) if spec and spec.name in available_models(pipeline.taxonomy) else None
    chosen = own if own is not None and set(own.languages) <= set(allowed) else None
    if chosen is None:
        chosen = for_languages(pipeline, allowed, spec.language if spec else PIVOT, progress=pipeline.progress)
    chosen.check_languages(allowed, purpose)
    return chosen


def _query_language(name: str) -> str:
    match = re.search(r"_q_([a-z]+)_c_", name)
    if not match:
        raise DataError(name, "not a MELO dataset name (<country>_q_<lang>_c_<langs>)")
    return match.group(1)


@dataclass
class Ranking:
    """Scores of every query against every candidate, the gold candidates of each query, and what scored them."""

    scores: np.ndarray
    gold: list[list[int]]
    model: str
    trained_on: str

    def metrics(self) -> tuple[float, dict[int, float]]:
        return metrics(gold_ranks(self.scores, self.gold))


def melo_ranking(folder: str | Path, tagger: Tagger, model: str = "auto", trained: bool = True) -> Ranking:
    """Rank the dataset's candidate concepts for each query, with ESCO knowledge in allowed languages.

    The indexed languages always follow the protocol (corpus languages and English), whatever the model;
    'auto' means the query language's model. With trained, the model's head is used when it learned from allowed
    languages only (training_languages), else one is trained on them first (cached).
    """
    folder = Path(folder)
    langs = melo_languages(folder.name)
    query_lang = _query_language(folder.name)
    model = resolve(model)
    if model == AUTO:
        model = BY_LANGUAGE.get(query_lang, BY_LANGUAGE[PIVOT])
    queries = _read_tsv(folder / "queries.tsv", 2)
    corpus = dict(_read_tsv(folder / "corpus_elements.tsv", 2))
    mapping = dict(_read_tsv(folder / "concept_mapping.tsv", 2))
    concepts = list(dict.fromkeys(mapping.values()))
    position = {uri: i for i, uri in enumerate(concepts)}
    gold: dict[str, set[int]] = defaultdict(set)
    for qid, _, cid, rel, *_ in _read_tsv(folder / "annotations.tsv", 4):
        if rel.strip() != "0":
            gold[qid].add(position[mapping[cid]])

    corpus_lang = langs[0]
    per_lang: dict[str, tuple[list, list]] = {lang: ([], []) for lang in langs}
    for cid, text in corpus.items():
        per_lang[corpus_lang][0].extend((position[mapping[cid]], v) for v in label_variants(text))
    tx = tagger.taxonomy
    for uri, j in position.items():
        concept = tx.get(uri)
        if concept is None:
            continue
        for lang in langs:
            texts = concept.labels.get(lang)
            if texts:
                per_lang[lang][0].extend((j, v) for v in texts.variants())
                if texts.description:
                    per_lang[lang][1].append((j, occupation_description(texts)))
    meta = {"taxonomy": tx.content_hash, "candidates": "melo"}  # texts are in the key: equal blocks share vectors
    allowed = training_languages(query_lang, langs, tx.languages)
    titles = [q[1] for q in queries]
    heads: dict[int, TrainedModel | None] = {}

    def candidates(pipeline: Pipeline) -> tuple[ConceptIndex, TrainedModel | None]:
        """The dataset's concepts, from its corpus and ESCO texts in the allowed languages, with a head that
        learned from allowed languages only."""
        blocks = [
            pipeline.build_block(lang, Views.from_pairs(lab), Views.from_pairs(desc), len(concepts), meta)
            for lang, (lab, desc) in per_lang.items()
        ]
        if not trained:
            heads[id(pipeline)] = None
            return ConceptIndex(blocks, len(concepts), pipeline.weights), None
        head = trained_for(pipeline, model, allowed, folder.name)
        head.check_titles(titles, folder.name)
        heads[id(pipeline)] = head
        return ConceptIndex(blocks, len(concepts), head.weights(pipeline.weights),
                            head.concept_scores(concepts, tx)), head

    scores = _scored(tagger, titles, model, query_lang not in langs, functools.cache(candidates))
    return Ranking(scores, [sorted(gold.get(q[0], ())) for q in queries], f"{model}:{'+'.join(langs)}",
                   _trained_on(list(heads.values())))


def eval_melo(folder: str | Path, tagger: Tagger, model: str = "auto", trained: bool = True) -> Result:
    """MELO metrics of melo_ranking."""
    started = time.perf_counter()
    ranking = melo_ranking(folder, tagger, model, trained)
    mrr, acc = ranking.metrics()
    return Result(Path(folder).name, ranking.model, len(ranking.gold), mrr, acc, time.perf_counter() - started,
                  {"trained_on": ranking.trained_on})


def _trained_on(heads: Sequence[TrainedModel | None]) -> str:
    """The languages the pipelines' heads learned from; 'untrained' when none has a head, and a note of how many
    pipelines have none when only some do."""
    trained = [h for h in heads if h is not None]
    if not trained:
        return "untrained"
    langs = "+".join(dict.fromkeys(lang for h in trained for lang in h.languages))
    missing = len(heads) - len(trained)
    return langs if not missing else f"{langs} ({missing} of {len(heads)} pipelines untrained)"


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


def check_adapters(pipelines: Iterable[Pipeline], labelled: Path | None = None, fold: int | None = None,
                   esco_language: str | None = None) -> None:
    """LeakageError when a fine-tuned encoder learned what a set measures: the rows of a labelled file outside
    the fold it held out, or a language's ESCO labels paired with English (esco-xling)."""
    for pipeline in pipelines:
        adapter = getattr(pipeline.encoder, "adapter", None)
        if adapter is None:
            continue
        record, name = adapter.manifest, pipeline.encoder.name
        if esco_language and esco_language in record.get("esco", {}).get("languages", []):
            raise LeakageError(f"encoder {name} was fine-tuned on {esco_language} ESCO labels paired with English: "
                               f"esco-xling-{esco_language} cannot measure it (escotag finetune --languages without "
                               f"{esco_language})")
        if labelled is None:
            continue
        sha = file_sha(labelled)
        held_out = record.get("holdout_fold")
        for source in record.get("labelled", []):
            if source.get("sha256") == sha and (fold is None or held_out != f"{fold}/{FOLDS}"):
                raise LeakageError(f"encoder {name} was fine-tuned on {labelled.name}"
                                   + (f" except fold {held_out}: score only that fold (--fold "
                                      f"{held_out.split('/')[0]})" if held_out else ""))


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
    routed = tagger.routes(postings, model)
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
    return Ranking(scores, [posting_hits(tagger.taxonomy, r) for r in rows], label, _trained_on(heads))


def eval_postings(path: str | Path, tagger: Tagger, model: str = "EnV2", fields: str = "title,description",
                  batch: int = 256, fold: int | None = None) -> Result:
    started = time.perf_counter()
    ranking = postings_ranking(path, tagger, model, fields, batch, fold)
    mrr, acc = ranking.metrics()
    extra = {"fields": fields, "trained_on": ranking.trained_on} | ({"fold": f"{fold}/{FOLDS}"} if fold else {})
    return Result(Path(path).stem, ranking.model, len(ranking.gold), mrr, acc, time.perf_counter() - started, extra)


def eval_esco_xling(tagger: Tagger, lang: str, queries: str = "all", batch: int = 512, trained: bool = True
                    ) -> Result:
    """Queries: this language's ESCO preferred labels (each gendered variant) and descriptions; the index
    holds English texts only and a trained head has learned from every other language but this one, so
    nothing in the query language reaches the model."""
    started = time.perf_counter()
    tx = tagger.taxonomy
    if lang not in tx.languages or lang == PIVOT:
        raise DataError(tx.source, f"no ESCO texts in {lang!r} other than English to query with")
    texts, gold = [], []
    for i, occ in enumerate(tx.occupations):
        labels = occ.labels.get(lang)
        if labels is None:
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
    check_adapters([pipeline for pipeline, _ in tagger.members(model, cross_lingual=True)], esco_language=lang)
    heads: dict[int, TrainedModel | None] = {}

    def candidates(pipeline: Pipeline) -> tuple[ConceptIndex, TrainedModel | None]:
        """Every occupation, from its English ESCO texts alone; a head that learned from every language but lang."""
        english = pipeline.esco_block(PIVOT)
        if not trained:
            heads[id(pipeline)] = None
            return ConceptIndex([english], len(tx), pipeline.weights), None
        head = for_languages(pipeline, allowed, lang, progress=pipeline.progress)
        head.check_languages(allowed, f"esco-xling-{lang}")
        heads[id(pipeline)] = head
        return ConceptIndex([english], len(tx), head.weights(pipeline.weights), head.head.logits), head

    ranks = gold_ranks(_scored(tagger, texts, model, True, functools.cache(candidates), batch), gold)
    mrr, acc = metrics(ranks)
    return Result(f"esco-xling-{lang}", "en-only", len(texts), mrr, acc, time.perf_counter() - started,
                  {"queries": queries, "trained_on": _trained_on(list(heads.values()))})


