"""Administration: reload the rules file without a restart (the API key guards it when one is set)."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from .schemas import ReloadResult
from .state import Ready

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post("/reload", response_model=ReloadResult)
async def reload(state: Ready) -> dict:
    """Read the rules file again (ESCOTAG_RULES / --rules, default ESCOTAG_HOME/rules.csv). Requests keep being
    answered meanwhile, with the old rules until the new ones are built; a bad file is a 422 naming its line,
    and the old rules stay."""
    rules = await run_in_threadpool(state.tagger.set_rules)
    return {"rules": len(rules), "kinds": dict(Counter(r.kind for r in rules.rules)),
            "file": str(rules.source) if rules.source else None}
