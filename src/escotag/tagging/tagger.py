"""The Tagger: ranks ESCO occupations for job postings with a named model and an encoder plan.

A facade over the jobs of tagging: routing (``routing``), the plan's pipelines and their fusion (``ensemble``,
``fusion``), users' rules (``rules``) and ranking with the caller's thresholds (``ranking``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import nullcontext
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
from ..text.postings import Posting, as_posting
from .ensemble import Ensemble, Members
from .models import AUTO, MODELS, ModelSpec, available_models, model_spec, resolve
from .pipeline import Candidates, Pipeline
from .ranking import Prediction, Ranker, Tagged, Thresholds
from .routing import Route, route
from .rules import Rules


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
        self.rules = Rules.of(rules, taxonomy)
        self.progress = progress
        self.models_dir = Path(models) if models is not None else get_settings().models_dir
        if isinstance(encoder, str) or encoder is None:
            self.plan = configured_plan(encoder)
            encoders = {name: get_encoder(name) for name in self.plan.encoders}
        else:
            self.plan = EncoderPlan.parse(encoder.name)
            encoders = {encoder.name: encoder}
        self.ensemble = Ensemble(taxonomy, self.plan, encoders, weights, progress, self.models_dir, trained,
                                 dense_dims, self.rules)
        self.pipelines = self.ensemble.pipelines
        self._ranker = Ranker(taxonomy)

    # ---- encoders and models ------------------------------------------------------------------
    @property
    def pipeline(self) -> Pipeline:
        """The one pipeline of a single-encoder tagger (ConfigError for an ensemble: use members())."""
        if len(self.pipelines) != 1:
            raise ConfigError(f"encoder plan {self.plan.name!r} has {len(self.pipelines)} encoders; "
                              "this needs a single one")
        return next(iter(self.pipelines.values()))

    @property
    def encoder_description(self) -> str:
        """The plan spelled out, with each encoder's id (cache keys, manifests, /v1/models)."""
        return self.ensemble.describe()

    def members(self, model: str, cross_lingual: bool = False, described: bool = False) -> Members:
        """The pipelines (and their weights) that score this model's postings."""
        return self.ensemble.members(model, cross_lingual, described)

    def available_models(self) -> list[str]:
        """Models whose language has ESCO data in this taxonomy."""
        return available_models(self.taxonomy)

    def spec(self, model: str) -> ModelSpec:
        return model_spec(self.taxonomy, model)

    def trained(self, model: str) -> TrainedModel | None:
        """The model's trained parts (single-encoder taggers; ensembles: ``heads``)."""
        return self.pipeline.trained(model)

    def heads(self, model: str) -> list[TrainedModel | None]:
        """Each of the model's pipelines' trained parts (None where untrained)."""
        return self.ensemble.heads(model)

    def is_trained(self, model: str) -> bool:
        return self.ensemble.is_trained(model)

    def trained_on(self, model: str) -> list[str] | None:
        """The languages this model's heads learned from, or None unless every pipeline is trained."""
        return self.ensemble.trained_on(model)

    def index(self, model: str) -> None:
        """Load (building where needed) one model in every pipeline it uses."""
        for pipeline in self.ensemble.model_pipelines(model):
            pipeline.index(model)

    def load(self, models: Iterable[str] | None = None) -> None:
        """Load (building where needed) these models, by default all available ones."""
        for name in models if models is not None else self.available_models():
            self.index(name)

    def set_rules(self, rules: Rules | str | Path | None = None) -> Rules:
        """Use other rules from now on (default: read the rules file again); requests in flight finish with the
        old ones. A bad file raises DataError and leaves the current rules in place."""
        new = Rules.of(self.rules.source if rules is None and self.rules.source is not None else rules,
                       self.taxonomy)
        self.ensemble.set_rules(new)
        self.rules = new
        return new

    def check(self, model: str, thresholds: Thresholds) -> None:
        """Fail before any work: a named model is loaded (built where needed), and trained when the thresholds
        need confidences. 'auto' is checked per posting once routed (``tag_each``)."""
        if resolve(model) != AUTO:
            self.index(model)
            if thresholds.needs_confidence:
                self.ensemble.require_calibrated([model])

    def routes(self, postings: Sequence[Posting], model: str | Sequence[str] = AUTO) -> list[Route]:
        """Per posting, the model that answers it and the posting's language as routing took it (``Route``)."""
        return route(self.taxonomy, postings, model)

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
        model may also name one model per item."""
        return self.tag_each(items, model, Thresholds(topk, min_score, min_confidence))

    def tag_each(self, items: Sequence[object], model: str | Sequence[str],
                 thresholds: Thresholds | Sequence[Thresholds]) -> list[Tagged]:
        """What every door calls: each item tagged by its model (one name, or one per item) and cut by its
        thresholds (one Thresholds, or one per item) by the one rule of ``ranking.Thresholds``. ConfigError
        before any work when thresholds need confidences a routed model cannot give."""
        postings = [as_posting(item) for item in items]
        cuts = [thresholds] * len(postings) if isinstance(thresholds, Thresholds) else list(thresholds)
        if len(cuts) != len(postings):
            raise ConfigError(f"{len(cuts)} thresholds for {len(postings)} items")
        routes = self.routes(postings, model)
        self.ensemble.require_calibrated(r.model for r, cut in zip(routes, cuts, strict=True) if cut.needs_confidence)
        out: list[Tagged | None] = [None] * len(postings)
        rules = self.rules
        groups = list(dict.fromkeys((r.model, r.cross_lingual) for r in routes))
        with self.ensemble.encoded_once(postings, routes) if len(groups) > 1 else nullcontext():
            for name, cross_lingual in groups:
                rows = [i for i, r in enumerate(routes) if (r.model, r.cross_lingual) == (name, cross_lingual)]
                scores, probs = self.ensemble.scores([postings[i] for i in rows], name, cross_lingual)
                matched = [rules.match(postings[i].title, routes[i].language) for i in rows] if rules else []
                ranked = self._ranker.rank(scores, probs, MODELS[name].language, max(cuts[i].topk for i in rows),
                                           matched)
                for row, preds in zip(rows, ranked, strict=True):
                    out[row] = Tagged(cuts[row].cut(preds), name, routes[row].language, cross_lingual)
        return out  # type: ignore[return-value]

    def scores(self, postings: Sequence[Posting], model: str, cross_lingual: bool = False,
               candidates: dict[Pipeline, Candidates] | None = None) -> np.ndarray:
        """Fused scores (n_postings, n_occupations) of one model (n_concepts of ``candidates`` when given: per
        pipeline, another set of concepts to rank)."""
        return self.ensemble.scores(postings, model, cross_lingual, candidates)[0]
