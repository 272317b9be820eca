"""``escotag train``: a model's learned parts, from ESCO (plus optional labelled postings), never from eval sets.

1. A dev split is carved from ESCO: held-out alternative labels per training language, kept out of the index
   and out of the training examples (tuning.dev_tasks). Its queries are split in two halves: "fit" fits the
   calibration temperatures, "check" reports trained vs. untrained. The head's weight on a title is not chosen
   here but on real titles (TITLE_HEAD_WEIGHTS); a posting with a description is scored without the head.
2. The classifier head (head.py) learns from every other label and gendered variant and each description
   lead, in the model's languages only, plus labelled posting titles detected to be in those languages.
3. The result is written with a manifest (trained.py); evaluation retrains on the fly when a model's
   languages are not allowed for a set (evaluation.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from ..errors import ConfigError
from ..heads.head import Head, HeadConfig, fit_head, log_softmax
from ..heads.trained import Calibration, LabelledTitles, TrainedModel, title_hash
from ..metrics import expected_calibration_error, gold_ranks, metrics
from ..settings import get_settings
from ..storage import file_sha, load_or_build
from ..tagging.models import MODELS
from ..tagging.pipeline import Pipeline, encoder_folder
from ..tagging.routing import detect_languages
from ..tagging.tagger import Tagger
from ..text.postings import Posting, clean_title, read_labelled
from .tuning import DevTask, dev_tasks, fused

log = logging.getLogger(__name__)
DEV_QUERIES = 600  # held-out labels per training language
# The head's weight on a title, per encoder and posting language ("*": every other one). Chosen out-of-fold on real
# vacancy titles (make choose-weights), not on the ESCO dev split, whose queries are ESCO labels like the head's
# training examples: it over-rewards the head (it chose 1.0-2.0 for use, which lost to the untrained model on real
# German, Dutch and English titles). The real titles here are English: use's weight held on every other language's
# MELO set, e5's lost Acc@1 on German and Dutch, so outside English an e5 head only calibrates confidences.
# mpnet scores postings read whole in `accurate`, where no head is added; no real titles chose a weight for it.
# e5ft: chosen for the rank-32 adapter out-of-fold within jobbert_val fold 5, which it never saw (docs/fine-tuning.md):
# 1.5 on four inner folds of five (2.0 on one); English only, as for e5.
TITLE_HEAD_WEIGHTS = {"use": {"*": 0.25}, "e5": {"en": 1.5, "*": 0.0}, "mpnet": {"*": 0.0},
                      "e5ft": {"en": 0.75, "*": 0.0}}
DEFAULT_TITLE_HEAD_WEIGHT = 0.25


def esco_examples(pipeline: Pipeline, languages: Sequence[str], dropped: set[tuple[int, str]]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Every indexed label view and description lead of these languages, minus the dev split's labels."""
    xs, ys = [], []
    for lang in languages:
        block = pipeline.esco_block(lang)
        for channel in (block.labels, block.descriptions):
            keep = channel.views.keeping(dropped)
            xs.append(channel.vectors[keep])
            ys.append(channel.views.owner[keep])
    return np.concatenate(xs), np.concatenate(ys)


def labelled_examples(pipeline: Pipeline, path: str | Path, languages: Sequence[str]
                      ) -> tuple[LabelledTitles, np.ndarray, dict]:
    """Titles of labelled postings whose language is one of languages and whose gold is an occupation (gender
    markers stripped, as queries are, with their vectors and occupations), the raw titles' hashes, and counts."""
    rows = read_labelled(path)
    tx = pipeline.taxonomy
    titles, gold, skipped_language, skipped_gold = [], [], 0, 0
    coded = []
    for row in rows:
        title = (row.get("title") or "").strip()
        uri = (row.get("gold_uri") or "").strip()
        if not title or uri not in tx.position:
            skipped_gold += 1
            continue
        coded.append((Posting(title, row.get("description") or ""), tx.position[uri]))
    for (posting, concept), language in zip(coded, detect_languages([p for p, _ in coded]), strict=True):
        if language not in languages:
            skipped_language += 1
            continue
        titles.append(posting.title)
        gold.append(concept)
    stats = {"file": Path(path).name, "sha256": file_sha(Path(path)), "rows": len(rows), "used": len(titles),
             "skipped_other_language": skipped_language, "skipped_no_occupation_gold": skipped_gold}
    cleaned = [clean_title(t) for t in titles]
    vectors = pipeline.embed(cleaned) if titles else np.zeros((0, pipeline.dense_dims), np.float32)
    hashes = np.array([title_hash(t) for t in titles], dtype=np.uint64)
    return LabelledTitles(np.array(gold, dtype=np.int64), cleaned, vectors), hashes, stats


def _halves(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(0, n, 2), np.arange(1, n, 2)


def _nll(scores: np.ndarray, gold: list[list[int]], temperature: float) -> float:
    logp = log_softmax(scores / temperature)
    return float(-np.mean([logp[i, g].max() for i, g in enumerate(gold)]))


def _temperature(scores: list[np.ndarray], gold: list[list[int]]) -> float:
    stacked = np.concatenate(scores)
    return float(minimize_scalar(lambda t: _nll(stacked, gold, t), bounds=(1e-3, 2.0), method="bounded").x)


def title_head_weight(encoder_name: str, language: str) -> float:
    """The head's weight on a title in this language for this encoder (TITLE_HEAD_WEIGHTS, else the default)."""
    weights = TITLE_HEAD_WEIGHTS.get(encoder_name, TITLE_HEAD_WEIGHTS.get(encoder_name.split(":")[0], {}))
    return weights.get(language, weights.get("*", DEFAULT_TITLE_HEAD_WEIGHT))


def fit_fusion(tasks: list[DevTask], head: Head, pipeline: Pipeline, head_weight: float
               ) -> tuple[dict[str, float], Calibration, dict]:
    """Temperatures (least NLL on the dev split's fit halves) for titles with the head at head_weight and for
    pseudo-postings (scored without the head), and the check halves' untrained vs. trained title metrics."""
    weights = pipeline.weights
    base = [fused(t, weights) for t in tasks]
    postings = [fused(t, weights, posting=True) for t in tasks]
    trained_titles = [b + head_weight * head.logits(t.vectors) for b, t in zip(base, tasks, strict=True)]
    fit = [_halves(len(t.gold))[0] for t in tasks]
    check = [_halves(len(t.gold))[1] for t in tasks]
    fit_gold = [t.gold[i] for t, r in zip(tasks, fit, strict=True) for i in r]
    calibration = Calibration(
        _temperature([s[r] for s, r in zip(trained_titles, fit, strict=True)], fit_gold),
        _temperature([s[r] for s, r in zip(postings, fit, strict=True)], fit_gold),
    )
    report: dict = {"queries_fit": int(sum(map(len, fit))), "queries_check": int(sum(map(len, check))),
                    "tasks": {}}
    for t, b, a, r in zip(tasks, base, trained_titles, check, strict=True):
        gold = [t.gold[i] for i in r]
        (mrr_b, acc_b), (mrr_a, acc_a) = (metrics(gold_ranks(s[r], gold)) for s in (b, a))
        report["tasks"][t.name] = {"untrained_mrr": round(mrr_b, 4), "trained_mrr": round(mrr_a, 4),
                                   "untrained_acc@1": round(acc_b[1], 4), "trained_acc@1": round(acc_a[1], 4)}
    for kind in ("untrained_mrr", "trained_mrr"):
        report[kind] = round(float(np.mean([v[kind] for v in report["tasks"].values()])), 4)
    confidences, correct = [], []
    for t, s, r in zip(tasks, trained_titles, check, strict=True):
        probs = calibration.probabilities(s[r])
        top = probs.argmax(axis=1)
        confidences.append(probs[np.arange(len(r)), top])
        correct.append(np.array([top[k] in t.gold[i] for k, i in enumerate(r)]))
    report["ece_titles"] = round(expected_calibration_error(np.concatenate(confidences), np.concatenate(correct)), 4)
    return {"head": head_weight}, calibration, report


def train(pipeline: Pipeline, languages: Sequence[str], name: str, seed: int = 0, labelled: str | Path | None = None,
          config: HeadConfig | None = None, progress: bool = True, dev_queries: int = DEV_QUERIES,
          head_weight: float | None = None) -> TrainedModel:
    """Train a head on ESCO texts in exactly these languages (and labelled titles in them); head_weight (default:
    TITLE_HEAD_WEIGHTS for the encoder and the first language, a model's own) is its weight on a title."""
    started = time.perf_counter()
    config = config or HeadConfig()
    if head_weight is None:
        head_weight = title_head_weight(pipeline.encoder.name, languages[0])
    if head_weight < 0:
        raise ConfigError(f"the head weight must not be negative, got {head_weight}")
    languages = tuple(dict.fromkeys(languages))
    missing = sorted(set(languages) - set(pipeline.taxonomy.languages))
    if missing:
        raise ConfigError(f"no ESCO texts in {', '.join(missing)} to train on")
    tasks = dev_tasks(pipeline, list(languages), seed, dev_queries)
    if not tasks:
        raise ConfigError(f"no alternative labels in {', '.join(languages)} to hold out for the dev split")
    dropped = set().union(*(t.dropped for t in tasks))
    x, y = esco_examples(pipeline, languages, dropped)
    hashes, labelled_stats, examples = np.zeros(0, dtype=np.uint64), None, None
    if labelled is not None:
        examples, hashes, labelled_stats = labelled_examples(pipeline, labelled, languages)
        x, y = np.concatenate([x, examples.vectors]), np.concatenate([y, examples.owner])
    head = fit_head(x, y, len(pipeline.taxonomy), config, seed, progress)
    fusion, calibration, dev = fit_fusion(tasks, head, pipeline, head_weight)
    manifest = {
        "taxonomy": pipeline.taxonomy.content_hash, "esco_source": str(pipeline.taxonomy.source),
        "encoder": pipeline.space, "channels": pipeline.weights.channels(), "occupations": len(pipeline.taxonomy),
        "seed": seed, "config": config.to_dict(),
        "data": {"esco_examples": int(len(x) - len(hashes)), "labelled": labelled_stats,
                 "dev_split": f"{dev_queries} held-out alternative labels per language (seed {seed})"},
        "dev": dev, "seconds": round(time.perf_counter() - started, 1),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return TrainedModel(name, languages, head, fusion, calibration, manifest, hashes, examples)


def train_model(pipeline: Pipeline, model: str, out: str | Path | None = None, seed: int = 0,
                labelled: str | Path | None = None, progress: bool = True, head_weight: float | None = None
                ) -> tuple[TrainedModel, Path]:
    """Train a named model on its own languages and save it under out (default: the models folder), in the
    encoder's sub-folder."""
    spec = pipeline.spec(model)
    if not spec.trainable:
        raise ConfigError(f"{spec.name} is the plain-similarity model and has nothing to train")
    trained = train(pipeline, spec.languages, spec.name, seed, labelled, progress=progress, head_weight=head_weight)
    return trained, trained.save(Path(out or get_settings().models_dir) / encoder_folder(pipeline.encoder) / spec.name)


def trainable_models(tagger: Tagger) -> list[str]:
    """Every model of this ESCO that escotag train can give a head (all but En)."""
    return [n for n in tagger.available_models() if MODELS[n].trainable]


def train_models(tagger: Tagger, names: Sequence[str], out: str | Path | None = None, seed: int = 0,
                 labelled: str | Path | None = None, head_weight: float | None = None, missing: bool = False,
                 report: Callable[[str], None] = log.info) -> int:
    """Train these models' heads for every pipeline of the tagger's plan that scores them, saved under out
    (default: the models folder); with ``missing``, only those without a usable trained folder. Reports a line
    per model; returns how many were trained."""
    count = 0
    for pipeline in tagger.pipelines.values():
        todo = [n for n in names if pipeline in tagger.ensemble.model_pipelines(n)]
        if missing:
            folder = Path(out or get_settings().models_dir) / encoder_folder(pipeline.encoder)
            kept = [n for n in todo
                    if TrainedModel.load(folder / n, tagger.taxonomy, pipeline.space, pipeline.weights) is not None]
            if kept:
                report(f"already trained, kept: {', '.join(kept)} ({pipeline.encoder.name})")
            todo = [n for n in todo if n not in kept]
        for name in todo:
            trained, folder = train_model(pipeline, name, out, seed, labelled, progress=tagger.progress,
                                          head_weight=head_weight)
            dev = trained.manifest["dev"]
            count += 1
            report(f"{trained.name}: trained on {'+'.join(trained.languages)} with encoder {pipeline.encoder.name} "
                   f"in {trained.manifest['seconds']}s; dev MRR {dev['untrained_mrr']} -> {dev['trained_mrr']}, "
                   f"head weight {trained.fusion['head']}, ECE {dev['ece_titles']}; saved to {folder}")
    return count


def for_languages(pipeline: Pipeline, languages: Sequence[str], language: str, seed: int = 0, progress: bool = True
                  ) -> TrainedModel:
    """A head trained on exactly these languages for postings in language, for evaluation (cached under
    ESCOTAG_HOME/heads)."""
    languages = tuple(sorted(set(languages)))
    weight = title_head_weight(pipeline.encoder.name, language)
    key = hashlib.sha256(json.dumps([pipeline.taxonomy.content_hash, pipeline.space, languages, seed,
                                     HeadConfig().to_dict(), DEV_QUERIES, weight]).encode()).hexdigest()[:20]
    folder = get_settings().home / "heads" / key

    def load() -> TrainedModel | None:
        cached = TrainedModel.load(folder, pipeline.taxonomy, pipeline.space, pipeline.weights)
        return cached if cached is not None and cached.languages == languages else None

    return load_or_build(f"head cache {folder}", load,
                         lambda: train(pipeline, languages, "+".join(languages), seed, progress=progress,
                                       head_weight=weight),
                         lambda trained: trained.save(folder))
