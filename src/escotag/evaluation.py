"""Evaluation harness: MELO, labelled postings and ESCO cross-lingual checks, with one set of metrics.

Protocol (README, "Evaluation"): MELO ranks exactly the dataset's candidate concepts, using only texts in
the corpus language(s) and English; postings rank all occupations, an ISCO-group gold counting every
occupation under it; queries and gold labels are used for scoring only.
"""

from __future__ import annotations

import csv
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DataError
from .index import Block, ConceptIndex, Views
from .models import resolve
from .postings import Posting
from .tagger import Tagger, occupation_description
from .taxonomy import PIVOT, Taxonomy
from .text import label_variants

KS = (1, 5, 10)


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
        return out


def metrics(ranks: Sequence[int | None]) -> tuple[float, dict[int, float]]:
    """MRR and Acc@k over all queries; a rank is 1-based, None when the gold was not ranked at all."""
    if not ranks:
        return 0.0, {k: 0.0 for k in KS}
    r = np.array([x if x else np.inf for x in ranks], dtype=float)
    return float(np.mean(1.0 / r)), {k: float(np.mean(r <= k)) for k in KS}


def gold_ranks(scores: np.ndarray, gold: Sequence[Sequence[int]]) -> list[int | None]:
    """Rank of the best-scored gold concept in each row (ties count against the gold)."""
    ranks: list[int | None] = []
    for row, hits in zip(scores, gold, strict=True):
        if len(hits) == 0:
            ranks.append(None)
            continue
        best = row[list(hits)].max()
        ties = int((row == best).sum()) - int((row[list(hits)] == best).sum())
        ranks.append(int((row > best).sum()) + ties + 1)
    return ranks


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


def _batched_scores(index: ConceptIndex, tagger: Tagger, texts: list[str], batch: int = 512) -> np.ndarray:
    out = np.empty((len(texts), index.n_concepts), dtype=np.float32)
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        out[start : start + len(chunk)] = index.score(tagger.encoder.encode(chunk), chunk)
    return out


def melo_languages(name: str) -> list[str]:
    """Languages a model may use on a MELO dataset: its corpus language(s) and English."""
    match = re.search(r"_c_([a-z_]+)$", name)
    if not match:
        raise DataError(name, "not a MELO dataset name (<country>_q_<lang>_c_<langs>)")
    corpus = [c for c in match.group(1).split("_") if c]
    return list(dict.fromkeys([*corpus, PIVOT]))


def eval_melo(folder: str | Path, tagger: Tagger, model: str = "auto") -> Result:
    """Rank the dataset's candidate concepts for each query, with ESCO knowledge in allowed languages.

    The indexed languages always follow the protocol (corpus languages and English), whatever the model; the
    model's name is validated and recorded with them in the result.
    """
    model = resolve(model)
    folder = Path(folder)
    started = time.perf_counter()
    langs = melo_languages(folder.name)
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
    meta = {"dataset": folder.name, "taxonomy": tx.content_hash}
    blocks = [
        Block.build(lang, Views.from_pairs(lab), Views.from_pairs(desc), len(concepts), tagger.encoder, meta)
        for lang, (lab, desc) in per_lang.items()
    ]
    index = ConceptIndex(blocks, len(concepts), tagger.weights)
    scores = _batched_scores(index, tagger, [q[1] for q in queries])
    ranks = gold_ranks(scores, [sorted(gold.get(q[0], ())) for q in queries])
    mrr, acc = metrics(ranks)
    return Result(folder.name, f"{model}:{'+'.join(langs)}", len(queries), mrr, acc, time.perf_counter() - started)


def read_postings(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file")
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"title", "gold_uri"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(path, f"missing column(s) {', '.join(sorted(missing))}", 1)
        return list(reader)


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


def eval_postings(path: str | Path, tagger: Tagger, model: str = "EnV2", fields: str = "title,description",
                  batch: int = 256) -> Result:
    started = time.perf_counter()
    rows = read_postings(path)
    use_description = "description" in fields
    name = tagger.spec(model).name
    postings = [Posting(r["title"], r.get("description", "") if use_description else "") for r in rows]
    scores = np.concatenate([
        tagger.scores(postings[i : i + batch], name) for i in range(0, len(postings), batch)
    ]) if postings else np.zeros((0, len(tagger.taxonomy)))
    ranks = gold_ranks(scores, [posting_hits(tagger.taxonomy, r) for r in rows])
    mrr, acc = metrics(ranks)
    return Result(Path(path).stem, name, len(rows), mrr, acc, time.perf_counter() - started,
                  {"fields": fields})


def eval_esco_xling(tagger: Tagger, lang: str, queries: str = "all", batch: int = 512) -> Result:
    """Queries: this language's ESCO preferred labels (each gendered variant) and descriptions; the index
    holds English texts only, so nothing in the query language reaches the model."""
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
    english = tagger.block(PIVOT)
    index = ConceptIndex([english], len(tx), tagger.weights)
    scores = _batched_scores(index, tagger, texts, batch)
    ranks = gold_ranks(scores, gold)
    mrr, acc = metrics(ranks)
    return Result(f"esco-xling-{lang}", "en-only", len(texts), mrr, acc, time.perf_counter() - started,
                  {"queries": queries})


