"""What every evaluation shares: results and rankings, scoring queries through the code that tags, and the
protocol's rules on learned parts (docs/accuracy.md, "Evaluation protocol").

MELO ranks exactly the dataset's candidate concepts, using only texts in the corpus language(s) and English;
postings rank all occupations, an ISCO-group gold counting every occupation under it; queries and gold labels are
used for scoring only. Learned parts obey the same language rule (``training_languages``): the harness uses a
trained model only when every language it learned from is allowed for the set, and otherwise trains one on the
allowed languages; a fine-tuned encoder is refused on what it learned from (``check_adapters``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError, LeakageError
from ..esco.folds import fold_name
from ..esco.taxonomy import PIVOT
from ..heads.trained import TrainedModel
from ..learn.training import for_languages
from ..metrics import gold_ranks, metrics
from ..storage import file_sha
from ..tagging.models import MODELS, available_models, resolve
from ..tagging.pipeline import Candidates, Pipeline
from ..tagging.tagger import Tagger
from ..text.postings import FOLDS, Posting


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

@dataclass
class Ranking:
    """Scores of every query against every candidate, the gold candidates of each query, and what scored them."""

    scores: np.ndarray
    gold: list[list[int]]
    model: str
    trained_on: str

    def metrics(self) -> tuple[float, dict[int, float]]:
        return metrics(gold_ranks(self.scores, self.gold))

def scored(tagger: Tagger, texts: Sequence[str | Posting], model: str, cross_lingual: bool,
            candidates: dict[Pipeline, Candidates], batch: int = 512) -> np.ndarray:
    """Queries (a text is scored as a title) against a candidate set, by the code that tags (Tagger.scores), in
    batches."""
    chunks = [tagger.scores([Posting(t) if isinstance(t, str) else t for t in texts[start : start + batch]], model,
                            cross_lingual, candidates)
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

def heads_trained_on(heads: Sequence[TrainedModel | None]) -> str:
    """The languages the pipelines' heads learned from; 'untrained' when none has a head, and a note of how many
    pipelines have none when only some do."""
    trained = [h for h in heads if h is not None]
    if not trained:
        return "untrained"
    langs = "+".join(dict.fromkeys(lang for h in trained for lang in h.languages))
    missing = len(heads) - len(trained)
    return langs if not missing else f"{langs} ({missing} of {len(heads)} pipelines untrained)"

def check_adapters(pipelines: Iterable[Pipeline], labelled: Path | None = None, fold: int | None = None,
                   esco_language: str | None = None, concept_fold: int | None = None) -> None:
    """LeakageError when a fine-tuned encoder learned what a set measures: the rows of a labelled file outside
    the fold it held out, or a language's ESCO labels paired with English (esco-xling) unless the set scores only
    the concept fold the encoder held out."""
    for pipeline in pipelines:
        adapter = getattr(pipeline.encoder, "adapter", None)
        if adapter is None:
            continue
        record, name = adapter.manifest, pipeline.encoder.name
        esco = record.get("esco", {})
        held_out = esco.get("holdout_concepts")
        if (esco_language and esco_language in esco.get("languages", [])
                and (concept_fold is None or held_out != fold_name(concept_fold))):
            raise LeakageError(
                f"encoder {name} was fine-tuned on {esco_language} ESCO labels paired with English"
                + (f" except concept fold {held_out}: score only that fold (--concept-fold {held_out.split('/')[0]})"
                   if held_out else f": esco-xling-{esco_language} cannot measure it (escotag finetune --languages "
                                    f"without {esco_language}, or --holdout-concepts)"))
        if labelled is None:
            continue
        sha = file_sha(labelled)
        held_out = record.get("holdout_fold")
        for source in record.get("labelled", []):
            if source.get("sha256") == sha and (fold is None or held_out != f"{fold}/{FOLDS}"):
                raise LeakageError(f"encoder {name} was fine-tuned on {labelled.name}"
                                   + (f" except fold {held_out}: score only that fold (--fold "
                                      f"{held_out.split('/')[0]})" if held_out else ""))
