"""The Tagger: ranks ESCO occupations for job postings with a named model and an encoder plan."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path

import numpy as np

from ..encoders import Encoder, get_encoder
from ..encoders.plan import EncoderPlan, configured_plan
from ..errors import ConfigError
from ..esco import load_taxonomy
from ..esco.taxonomy import Taxonomy
from ..heads.trained import TrainedModel
from ..index.concepts import Weights
from ..settings import get_settings
from ..text import langid
from ..text.postings import Posting, as_posting, has_description
from .models import AUTO, BY_LANGUAGE, MODELS, ModelSpec, resolve
from .pipeline import Candidates, Pipeline, available_models, encoder_folder, model_spec
from .ranking import Prediction, Tagged, Thresholds
from .rules import Rules, rules_path


def detect_languages(postings: Sequence[Posting]) -> list[str]:
    """Each posting's given language, else the one detected from its title and the start of its description (the
    undeclared ones in one batch)."""
    texts = [p.title + " " + p.description[:200] for p in postings if not p.language]
    detected = iter(langid.detect_many(texts) if texts else [])
    return [p.language or next(detected) for p in postings]


def standardise(scores: np.ndarray) -> np.ndarray:
    """Each row's scores as z-scores over its candidates, so pipelines on different scales can be added."""
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return (scores - mean) / np.maximum(std, 1e-9)


def fuse(scores: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """A weighted sum of standardised score matrices; a single pipeline's scores are returned as they are."""
    if len(scores) == 1:
        return scores[0]
    return sum(w * standardise(s) for s, w in zip(scores, weights, strict=True)).astype(np.float32)


class Tagger:
    """Tags postings with ESCO occupations. Models load on first use and share encoders and language blocks.

    ``encoder`` is an encoder plan (``fast``, ``accurate``, ``use``, ``e5``, ``use+e5``, …; default
    ESCOTAG_ENCODER, else ``accurate``) or an Encoder object. Each encoder the plan names runs its own
    Pipeline; a model's score is the weighted sum of its pipelines' standardised scores.

    A model trained with ``escotag train`` (found in ``models``, default ESCOTAG_MODELS or ESCOTAG_HOME/models,
    one sub-folder per encoder) adds its classifier head and calibrated confidences; ``trained=False`` ignores
    trained models.

    ``rules`` are users' title, label and exclude rules (``rules.py``): a Rules object, a CSV path, or None for
    ESCOTAG_RULES (default ESCOTAG_HOME/rules.csv when it exists); ``Rules()`` turns them off.

    >>> tagger = Tagger()
    >>> tagger.tag(["Softwareentwickler"], model="auto", topk=3)[0][0].label
    """

    def __init__(
        self,
        taxonomy: Taxonomy | str | Path | None = None,
        encoder: Encoder | str | None = None,
        weights: Weights | None = None,
        progress: bool = True,
        models: str | Path | None = None,
        trained: bool = True,
        dense_dims: int | None = None,
        rules: Rules | str | Path | None = None,
    ) -> None:
        if not isinstance(taxonomy, Taxonomy):
            taxonomy = load_taxonomy(taxonomy)
        self.taxonomy = taxonomy
        self.rules = self._read_rules(rules)
        self.progress = progress
        self.models_dir = Path(models) if models is not None else get_settings().models_dir
        if isinstance(encoder, str) or encoder is None:
            self.plan = configured_plan(encoder)
            encoders = {name: get_encoder(name) for name in self.plan.encoders}
        else:
            self.plan = EncoderPlan.parse(encoder.name)
            encoders = {encoder.name: encoder}
        # keyed by the names the plan uses
        self.pipelines = {
            name: Pipeline(taxonomy, e, weights, progress, self.models_dir / encoder_folder(e), trained, dense_dims,
                           self.rules)
            for name, e in encoders.items()
        }
        self._lock = threading.RLock()
        self._descriptions: dict[str, list[tuple[str, str, str, str, str]]] = {}

    # ---- encoders ------------------------------------------------------------------------------
    @property
    def pipeline(self) -> Pipeline:
        """The one pipeline of a single-encoder tagger (ConfigError for an ensemble: use members())."""
        if len(self.pipelines) != 1:
            raise ConfigError(f"encoder plan {self.plan.name!r} has {len(self.pipelines)} encoders; "
                              "this needs a single one")
        return next(iter(self.pipelines.values()))

    def members(self, model: str, cross_lingual: bool = False, described: bool = False
                ) -> list[tuple[Pipeline, float]]:
        """The pipelines (and their weights) that score this model's postings (cross_lingual: postings in a
        language the model's index holds no labels in; described: postings with a description)."""
        spec = self.spec(model)
        return [(self.pipelines[name], w)
                for name, w in self.plan.members(spec.language, cross_lingual, described)]

    @property
    def encoder_description(self) -> str:
        """The plan spelled out, with each encoder's id (cache keys, manifests, /v1/models)."""
        ids = ", ".join(p.encoder.id for p in self.pipelines.values())
        return f"{self.plan.name} ({self.plan.describe()}: {ids})" if self.plan.name != self.plan.describe() \
            else f"{self.plan.name} ({ids})"

    # ---- rules ---------------------------------------------------------------------------------
    def _read_rules(self, rules: Rules | str | Path | None) -> Rules:
        if isinstance(rules, Rules):
            return rules
        path = Path(rules) if rules is not None else rules_path()
        return Rules.read(path, self.taxonomy) if path is not None else Rules()

    def set_rules(self, rules: Rules | str | Path | None = None) -> Rules:
        """Use other rules from now on (default: read the rules file again); requests in flight finish with the
        old ones. A bad file raises DataError and leaves the current rules in place."""
        if rules is None and self.rules.source is not None:
            rules = self.rules.source
        new = self._read_rules(rules)
        for pipeline in self.pipelines.values():
            pipeline.set_rules(new)
        self.rules = new
        return new

    # ---- models --------------------------------------------------------------------------------
    def available_models(self) -> list[str]:
        """Models whose language has ESCO data in this taxonomy."""
        return available_models(self.taxonomy)

    def spec(self, model: str) -> ModelSpec:
        return model_spec(self.taxonomy, model)

    def trained(self, model: str) -> TrainedModel | None:
        """The model's trained parts (single-encoder taggers; ensembles: ``heads``)."""
        return self.pipeline.trained(model)

    def model_pipelines(self, model: str) -> list[Pipeline]:
        """Every pipeline that scores some of this model's postings."""
        return list(dict.fromkeys(p for xl in (False, True) for d in (False, True)
                                  for p, _ in self.members(model, xl, d)))

    def heads(self, model: str) -> list[TrainedModel | None]:
        """Each of the model's pipelines' trained parts (None where untrained)."""
        return [p.trained(model) for p in self.model_pipelines(model)]

    def is_trained(self, model: str) -> bool:
        """Every pipeline of this model has its trained head (so its predictions carry confidences)."""
        return all(h is not None for h in self.heads(model))

    def trained_on(self, model: str) -> list[str] | None:
        """The languages this model's heads learned from, or None unless every pipeline is trained."""
        heads = self.heads(model)
        if not all(h is not None for h in heads):
            return None
        return sorted({lang for h in heads for lang in h.languages})  # type: ignore[union-attr]

    def require_calibrated(self, models: Iterable[str]) -> None:
        """ConfigError unless every one of these models is trained (min_confidence needs its confidences)."""
        untrained = sorted({name for name in models if not self.is_trained(name)})
        if untrained:
            raise ConfigError(f"min_confidence needs calibrated confidences, and {', '.join(untrained)} "
                              "is not trained: run escotag train (En is never trained; use EnV2)")

    def index(self, model: str) -> None:
        """Load (building where needed) one model in every pipeline it uses."""
        for pipeline in self.model_pipelines(model):
            pipeline.index(model)

    def load(self, models: Iterable[str] | None = None) -> None:
        """Load (building where needed) these models, by default all available ones."""
        for name in models if models is not None else self.available_models():
            self.index(name)

    def routes(self, postings: Sequence[Posting], model: str | Sequence[str] = AUTO) -> list[tuple[str, bool]]:
        """Per posting, the model that answers it and whether it is cross-lingual there (its language has no
        labels in that model's index). 'auto' goes by the given or detected language; a named model is taken
        to receive postings in its own language unless a posting gives another."""
        return [(name, lang not in MODELS[name].languages) for name, lang in self._routed(postings, model)]

    def _routed(self, postings: Sequence[Posting], model: str | Sequence[str]) -> list[tuple[str, str]]:
        """Per posting, the model that answers it and the posting's language as routing saw it."""
        requested = [model] * len(postings) if isinstance(model, str) else list(model)
        if len(requested) != len(postings):
            raise ConfigError(f"{len(requested)} model names for {len(postings)} items")
        named = {name: resolve(name) for name in set(requested)}
        concrete = {name: self.spec(n).name for name, n in named.items() if n != AUTO}
        available = self.available_models()
        routed_by_language = [i for i, name in enumerate(requested) if name not in concrete]
        detected = dict(zip(routed_by_language, detect_languages([postings[i] for i in routed_by_language]),
                            strict=True))
        out = []
        for i, (posting, name) in enumerate(zip(postings, requested, strict=True)):
            chosen = concrete.get(name)
            if chosen is None:
                lang = detected[i]
                chosen = BY_LANGUAGE.get(lang, BY_LANGUAGE["en"])
                chosen = chosen if chosen in available else BY_LANGUAGE["en"]
            else:
                lang = posting.language or MODELS[chosen].language
            out.append((chosen, lang))
        return out

    # ---- tagging ------------------------------------------------------------------------------
    def tag(self, items: Sequence[object], model: str = AUTO, topk: int = 5,
            min_confidence: float | None = None) -> list[list[Prediction]]:
        """Top-k occupations for each item (a title string, a dict with title/description, or a Posting).

        min_confidence drops predictions whose calibrated confidence is below it (trained models only), so an
        empty list marks a posting to route to a person.
        """
        return [t.predictions for t in self.tag_with_models(items, model, topk, min_confidence=min_confidence)]

    def tag_with_models(
        self, items: Sequence[object], model: str | Sequence[str] = AUTO, topk: int = 5,
        min_score: float | None = None, min_confidence: float | None = None,
    ) -> list[Tagged]:
        """Like tag, with the model that answered each item and its language as routing took it (``Tagged``).
        model may also name one model per item. The thresholds cut each ranked list by the one rule of
        ``ranking.Thresholds``."""
        thresholds = Thresholds(topk, min_score, min_confidence)
        postings = [as_posting(item) for item in items]
        routed_languages = self._routed(postings, model)
        routed = [(name, lang not in MODELS[name].languages) for name, lang in routed_languages]
        out: list[Tagged | None] = [None] * len(postings)
        if min_confidence is not None:
            self.require_calibrated(name for name, _ in routed)
        rules = self.rules
        groups = list(dict.fromkeys(routed))
        with self._encoded_once(postings, routed) if len(groups) > 1 else nullcontext():
            for name, cross_lingual in groups:
                rows = [i for i, r in enumerate(routed) if r == (name, cross_lingual)]
                scores, probs = self.scores_and_probabilities([postings[i] for i in rows], name, cross_lingual)
                matched = [rules.match(postings[i].title, routed_languages[i][1]) for i in rows] if rules else []
                self._exclude([excluded for _, excluded in matched], scores, probs)
                top = self._top(scores, probs, name, topk)
                for k, (row, preds) in enumerate(zip(rows, top, strict=True)):
                    first = matched[k][0] if matched else None
                    if first is not None:
                        preds = self._ruled(self.taxonomy.position[first], scores[k], probs, name, preds)
                    out[row] = Tagged(thresholds.cut(preds), name, routed_languages[row][1])
        return out  # type: ignore[return-value]

    @contextmanager
    def _encoded_once(self, postings: Sequence[Posting], routed: Sequence[tuple[str, bool]]) -> Iterator[None]:
        """Each pipeline encodes all the postings it will score in one call, however many models answer them."""
        mine: dict[Pipeline, list[Posting]] = {}
        members: dict[tuple[str, bool, bool], list[tuple[Pipeline, float]]] = {}
        for posting, (name, cross_lingual) in zip(postings, routed, strict=True):
            key = (name, cross_lingual, has_description(posting))
            if key not in members:
                members[key] = self.members(*key)
            for pipeline, _ in members[key]:
                mine.setdefault(pipeline, []).append(posting)
        with ExitStack() as stack:
            for pipeline, scored in mine.items():
                stack.enter_context(pipeline.remembering(pipeline.inputs(scored)))
            yield

    def _exclude(self, excluded: list[set[str]], scores: np.ndarray, probs: np.ndarray | None) -> None:
        """Takes the occupations exclude rules remove (per row) out of the running, in place."""
        position = self.taxonomy.position
        for k, uris in enumerate(excluded):
            if uris:
                columns = [position[u] for u in uris]
                scores[k, columns] = -np.inf
                if probs is not None:
                    probs[k, columns] = 0.0

    def _ruled(self, column: int, scores: np.ndarray, probs: np.ndarray | None, model: str,
               preds: list[Prediction]) -> list[Prediction]:
        """A title rule's occupation first (the model's score kept, confidence 1 where the model gives them),
        then the model's others."""
        score = float(scores[column])
        rule = Prediction(*self._described(MODELS[model].language)[column],
                          round(score, 6) if np.isfinite(score) else 0.0,
                          None if probs is None else 1.0, source="rule")
        return [rule, *[p for p in preds if p.uri != rule.uri]]

    def scores(self, postings: Sequence[Posting], model: str, cross_lingual: bool = False,
               candidates: Candidates | None = None) -> np.ndarray:
        """Fused scores (n_postings, n_occupations) of one model (n_concepts of ``candidates`` when given)."""
        return self.scores_and_probabilities(postings, model, cross_lingual, candidates)[0]

    def scores_and_probabilities(self, postings: Sequence[Posting], model: str, cross_lingual: bool = False,
                                 candidates: Candidates | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Fused scores of one model over its pipelines, and calibrated probabilities when every pipeline is
        trained (their weighted mean). Postings with and without a description may take different plan parts.
        candidates: each pipeline's index of another candidate set (evaluation), scored the same way."""
        described = np.array([has_description(p) for p in postings], dtype=bool)
        parts = {d: self.members(model, cross_lingual, d) for d in dict.fromkeys(described.tolist())}
        if len(parts) < 2 or parts[False] == parts[True]:
            return self._fused(postings, model, next(iter(parts.values()), []), candidates)
        rows = {d: np.flatnonzero(described == d) for d in parts}
        fused = {d: self._fused([postings[i] for i in rows[d]], model, parts[d], candidates) for d in parts}
        width = next(iter(fused.values()))[0].shape[1]
        scores = np.empty((len(postings), width), dtype=np.float32)
        probs = None if any(p is None for _, p in fused.values()) else np.empty_like(scores)
        for d, (s, p) in fused.items():
            scores[rows[d]] = s
            if probs is not None:
                probs[rows[d]] = p
        return scores, probs

    def _fused(self, postings: Sequence[Posting], model: str, members: list[tuple[Pipeline, float]],
               candidates: Candidates | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        if not postings:
            return np.zeros((0, len(self.taxonomy)), dtype=np.float32), None
        outputs = [(pipeline.scores(postings, model, candidates), w) for pipeline, w in members]
        scores = fuse([s for (s, _), _ in outputs], [w for _, w in outputs])
        if any(p is None for (_, p), _ in outputs):
            return scores, None
        probs = outputs[0][0][1] if len(outputs) == 1 else sum(w * p for (_, p), w in outputs)
        return scores, probs

    def _described(self, lang: str) -> list[tuple[str, str, str, str, str]]:
        """Per occupation, the fields of its Prediction other than score and confidence."""
        with self._lock:
            if lang not in self._descriptions:
                self._descriptions[lang] = [
                    (o.uri, o.label(lang), o.label("en"), o.isco_code, self.taxonomy.isco_label(o.isco_code))
                    for o in self.taxonomy.occupations
                ]
            return self._descriptions[lang]

    def _top(self, scores: np.ndarray, probs: np.ndarray | None, model: str, topk: int) -> list[list[Prediction]]:
        """Each row's topk occupations by score, best first; one an exclude rule removed (-inf) never listed."""
        k = min(topk, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        values = np.take_along_axis(scores, top, 1)
        order = np.argsort(-values, axis=1, kind="stable")
        top = np.take_along_axis(top, order, 1)
        values = np.take_along_axis(values, order, 1)
        top_scores = np.round(values.astype(np.float64), 6)
        keep = np.isfinite(values)
        top_probs = None if probs is None else np.round(np.take_along_axis(probs, top, 1).astype(np.float64), 6)
        described = self._described(MODELS[model].language)
        out = []
        for i, row in enumerate(top.tolist()):
            scores_i = top_scores[i].tolist()
            probs_i = top_probs[i].tolist() if top_probs is not None else [None] * k
            preds = []
            for j, score, confidence, kept in zip(row, scores_i, probs_i, keep[i].tolist(), strict=True):
                if not kept:
                    break
                preds.append(Prediction(*described[j], score, confidence))
            out.append(preds)
        return out
