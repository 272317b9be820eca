"""An encoder plan's pipelines: which of them score a model's postings and at what weight, their trained heads, one
encoding per request however many models answer it, and the fused scores."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

from ..encoders import Encoder
from ..encoders.plan import EncoderPlan
from ..errors import ConfigError
from ..esco.taxonomy import Taxonomy
from ..heads.trained import TrainedModel
from ..index.concepts import Weights, encoder_weights
from ..text.postings import Posting, has_description
from .fusion import fuse_outputs
from .models import model_spec
from .pipeline import Candidates, Pipeline, encoder_folder
from .routing import Route
from .rules import Rules

Members = list[tuple[Pipeline, float]]


class Ensemble:
    """One Pipeline per encoder of the plan (keyed by the names the plan uses); a model's score is the weighted
    sum of its pipelines' standardised scores (``fusion``)."""

    def __init__(self, taxonomy: Taxonomy, plan: EncoderPlan, encoders: dict[str, Encoder],
                 weights: Weights | None, progress: bool, models_dir: Path, trained: bool,
                 dense_dims: int | None, rules: Rules) -> None:
        self.taxonomy, self.plan = taxonomy, plan
        self.pipelines = {
            name: Pipeline(taxonomy, e, weights or encoder_weights(e.name), progress, models_dir / encoder_folder(e),
                           trained, dense_dims, rules)
            for name, e in encoders.items()
        }

    def members(self, model: str, cross_lingual: bool = False, described: bool = False) -> Members:
        """The pipelines (and their weights) that score this model's postings (cross_lingual: postings in a
        language the model's index holds no labels in; described: postings with a description)."""
        spec = model_spec(self.taxonomy, model)
        return [(self.pipelines[name], w) for name, w in self.plan.members(spec.language, cross_lingual, described)]

    def describe(self) -> str:
        """The plan spelled out, with each encoder's id (cache keys, manifests, /v1/models)."""
        ids = ", ".join(p.encoder.id for p in self.pipelines.values())
        return f"{self.plan.name} ({self.plan.describe()}: {ids})" if self.plan.name != self.plan.describe() \
            else f"{self.plan.name} ({ids})"

    # ---- trained parts -----------------------------------------------------------------------------------
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
        """ConfigError unless every one of these models is trained (confidences need its calibration)."""
        untrained = sorted({name for name in models if not self.is_trained(name)})
        if untrained:
            raise ConfigError(f"min_confidence and review need calibrated confidences, and {', '.join(untrained)} "
                              "is not trained: run escotag train (En is never trained; use EnV2)")

    def set_rules(self, rules: Rules) -> None:
        for pipeline in self.pipelines.values():
            pipeline.set_rules(rules)

    # ---- scoring -----------------------------------------------------------------------------------------
    @contextmanager
    def encoded_once(self, postings: Sequence[Posting], routes: Sequence[Route]) -> Iterator[None]:
        """Each pipeline encodes all the postings it will score in one call, however many models answer them."""
        mine: dict[Pipeline, list[Posting]] = {}
        members: dict[tuple[str, bool, bool], Members] = {}
        for posting, r in zip(postings, routes, strict=True):
            key = (r.model, r.cross_lingual, has_description(posting))
            if key not in members:
                members[key] = self.members(*key)
            for pipeline, _ in members[key]:
                mine.setdefault(pipeline, []).append(posting)
        with ExitStack() as stack:
            for pipeline, scored in mine.items():
                stack.enter_context(pipeline.remembering(pipeline.inputs(scored)))
            yield

    def scores(self, postings: Sequence[Posting], model: str, cross_lingual: bool = False,
               candidates: Mapping[Pipeline, Candidates] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Fused scores of one model over its pipelines, and calibrated probabilities when every pipeline is
        trained (their weighted mean). Postings with and without a description may take different plan parts.
        candidates: per pipeline, another set of concepts to rank (evaluation), scored the same way."""
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

    def _fused(self, postings: Sequence[Posting], model: str, members: Members,
               candidates: Mapping[Pipeline, Candidates] | None) -> tuple[np.ndarray, np.ndarray | None]:
        if not postings:
            return np.zeros((0, len(self.taxonomy)), dtype=np.float32), None
        return fuse_outputs([(p.scores(postings, model, candidates[p] if candidates else None), w)
                             for p, w in members])
