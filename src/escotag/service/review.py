"""The review queue's API: list unsure postings, decide them (once), and turn a decision into a rule."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from ..settings import get_settings
from ..tagging.rules import append_rules, checked_rule, rules_path
from .errors import ApiError
from .schemas import Decision, ReviewItem, ReviewQueue, RuleFromDecision, RuleMade
from .state import Ready

router = APIRouter(prefix="/v1/review", tags=["review"])
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("", response_model=ReviewQueue)
async def queue(state: Ready, status: Literal["open", "decided", "all"] = "open",
                limit: int = Query(50, ge=1, le=500), after: int = Query(0, ge=0, le=2**31 - 1)) -> dict:
    """Items by id (after the given id): title, description, language, model, the top-k candidates with their
    confidences, and for decided ones the decision, who took it and when; with the queue's counts."""
    store = state.review
    rows = await run_in_threadpool(store.list, None if status == "all" else status, limit, after)
    return {"items": rows, "counts": await run_in_threadpool(store.counts)}


@router.get("/{item_id}", response_model=ReviewItem)
async def item(item_id: ItemId, state: Ready) -> dict:
    return await run_in_threadpool(state.review.get, item_id)


@router.post("/{item_id}", response_model=ReviewItem)
async def decide(item_id: ItemId, decision: Decision, state: Ready) -> dict:
    """Decide an item: {"uri": an occupation} or {"uri": null} (no ESCO occupation fits), with the reviewer.
    An item is decided once: a second decision (two coders at once) gets 409 and changes nothing."""
    if decision.uri is not None and decision.uri not in state.tagger.taxonomy.position:
        raise ApiError(422, "invalid_request", f"{decision.uri!r} is not an occupation URI of this ESCO")
    return await run_in_threadpool(state.review.decide, item_id, decision.uri, decision.reviewer)


@router.post("/{item_id}/rule", response_model=RuleMade)
async def rule_from_decision(item_id: ItemId, state: Ready, body: RuleFromDecision | None = None) -> dict:
    """Make a rule from a decided item (by default a title rule in the item's language), append it to the rules
    file (ESCOTAG_RULES, else ESCOTAG_HOME/rules.csv) and reload the rules: the next posting with this title is
    answered by the rule."""
    body = body or RuleFromDecision()
    current = await run_in_threadpool(state.review.get, item_id)
    if current["status"] != "decided" or not current["decided_uri"]:
        raise ApiError(409, "conflict", f"review item {item_id} has no decided occupation to make a rule of")
    language = (current["language"] or "") if body.language is None else body.language
    tagger = state.tagger
    rule = checked_rule([body.kind, current["title"].strip(), language.strip(), current["decided_uri"]],
                        tagger.taxonomy)  # DataError (422) before anything is written
    path = tagger.rules.source or rules_path() or get_settings().home / "rules.csv"
    rules = await run_in_threadpool(append_rules, path, [rule], tagger.taxonomy)
    await run_in_threadpool(tagger.set_rules, rules)
    return {"rule": {"kind": rule.kind, "pattern": rule.pattern, "language": rule.language,
                     "occupation_uri": rule.uri}, "file": str(path), "rules": len(rules)}
