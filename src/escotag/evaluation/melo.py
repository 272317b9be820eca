"""MELO (``escotag eval melo``): national occupation titles ranked against the dataset's candidate concepts."""

from __future__ import annotations

import csv
import re
import time
from collections import defaultdict
from pathlib import Path

from ..errors import DataError
from ..esco.taxonomy import PIVOT
from ..index.views import Views, occupation_description
from ..tagging.models import AUTO, BY_LANGUAGE, resolve
from ..tagging.tagger import Tagger
from ..text.normalization import label_variants
from .protocol import (
    Ranking,
    Result,
    heads_trained_on,
    melo_languages,
    scored,
    trained_for,
    training_languages,
)


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

def _query_language(name: str) -> str:
    match = re.search(r"_q_([a-z]+)_c_", name)
    if not match:
        raise DataError(name, "not a MELO dataset name (<country>_q_<lang>_c_<langs>)")
    return match.group(1)

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
    views = {lang: (Views.from_pairs(lab), Views.from_pairs(desc)) for lang, (lab, desc) in per_lang.items()}
    cross_lingual = query_lang not in langs
    candidates = {}
    for pipeline, _ in tagger.members(model, cross_lingual):
        head = trained_for(pipeline, model, allowed, folder.name) if trained else None
        if head is not None:
            head.check_titles(titles, folder.name)
        candidates[pipeline] = pipeline.candidates(views, len(concepts), meta, head,
                                                   head.concept_scores(concepts, tx) if head else None)
    scores = scored(tagger, titles, model, cross_lingual, candidates)
    return Ranking(scores, [sorted(gold.get(q[0], ())) for q in queries], f"{model}:{'+'.join(langs)}",
                   heads_trained_on([c.trained for c in candidates.values()]))

def eval_melo(folder: str | Path, tagger: Tagger, model: str = "auto", trained: bool = True) -> Result:
    """MELO metrics of melo_ranking."""
    started = time.perf_counter()
    ranking = melo_ranking(folder, tagger, model, trained)
    mrr, acc = ranking.metrics()
    return Result(Path(folder).name, ranking.model, len(ranking.gold), mrr, acc, time.perf_counter() - started,
                  {"trained_on": ranking.trained_on})
