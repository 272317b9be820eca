"""What every request shares: the tagger, its micro-batcher, the label search and the limits; FastAPI
dependencies hand them to the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from ..review import ReviewStore
from ..settings import Settings
from ..tagging.models import AUTO, resolve
from ..tagging.tagger import Tagger
from ..text.postings import Posting
from .errors import ApiError
from .microbatch import MicroBatcher
from .search import LabelSearch


@dataclass
class ServiceState:
    settings: Settings
    tagger: Tagger | None = None  # the one answering now
    batcher: MicroBatcher | None = None
    search: LabelSearch | None = None
    review: ReviewStore | None = None
    ready: bool = False
    default: str = ""  # the plan the service was started for
    building: bool = False  # the default plan is being built in the background
    error: str | None = None  # why it could not be

    def switch(self, tagger: Tagger) -> None:
        """Answer with this tagger from the next batch on (on the event loop: between two requests' batches)."""
        if self.tagger is not None and tagger.rules.digest != self.tagger.rules.digest:
            tagger.set_rules(self.tagger.rules)  # rules reloaded while it was built
        self.tagger = tagger
        if self.batcher is not None:
            self.batcher.switch(tagger)

    def check(self, model: str, topk: int, postings: list[Posting]) -> str:
        """The canonical model name, once the request is within the limits (ApiError 422 otherwise)."""
        limits = self.settings
        name = resolve(model)
        if name != AUTO:
            self.tagger.spec(name)  # type: ignore[union-attr]
        if not postings:
            raise ApiError(422, "invalid_request", "items must hold at least one item")
        if len(postings) > limits.max_items:
            raise ApiError(422, "invalid_request", f"at most {limits.max_items} items per request")
        if not 1 <= topk <= limits.max_topk:
            raise ApiError(422, "invalid_request", f"topk must be between 1 and {limits.max_topk}")
        for i, p in enumerate(postings):
            if not p.title:
                raise ApiError(422, "invalid_request", f"items[{i}].title is empty")
            if len(p.title) > limits.max_title_chars:
                raise ApiError(422, "invalid_request", f"items[{i}].title is over {limits.max_title_chars} chars")
            if len(p.description) > limits.max_description_chars:
                raise ApiError(422, "invalid_request",
                               f"items[{i}].description is over {limits.max_description_chars} chars")
        return name


def service_state(request: Request) -> ServiceState:
    return request.app.state.escotag


def ready_state(state: Annotated[ServiceState, Depends(service_state)]) -> ServiceState:
    """The state once every model is loaded (503 before)."""
    if not state.ready:
        raise ApiError(503, "not_ready", "models are still loading")
    return state


State = Annotated[ServiceState, Depends(service_state)]
Ready = Annotated[ServiceState, Depends(ready_state)]
