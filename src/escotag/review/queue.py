"""Which tagged postings go to the review queue, and what an entry holds."""

from __future__ import annotations

from collections.abc import Sequence

from ..tagging.ranking import Prediction, Tagged
from ..text.postings import Posting, as_posting


def top_confidence(preds: Sequence[Prediction]) -> float:
    """The first prediction's confidence (0 when there is none left or it has none)."""
    return float(preds[0].confidence or 0.0) if preds else 0.0


def needs_review(preds: Sequence[Prediction], below: float) -> bool:
    """The tagger is unsure: its top confidence is below the threshold (a title rule's answer never is)."""
    return top_confidence(preds) < below


def review_entries(items: Sequence[object], results: Sequence[Tagged], below: float,
                   origin: str, keys: Sequence[str | None] | None = None) -> list[dict]:
    """Queue entries for the items whose top confidence is below ``below``, with their position in items.

    ``keys`` (one per item, optional) make a re-queued item a no-op: a resumed file run queues each row once.
    """
    entries = []
    for i, (item, tagged) in enumerate(zip(items, results, strict=True)):
        preds = tagged.predictions
        if not needs_review(preds, below):
            continue
        posting: Posting = as_posting(item)
        entries.append({
            "position": i, "origin": origin, "origin_key": keys[i] if keys is not None else None,
            "external_id": posting.id, "title": posting.title, "description": posting.description,
            "language": tagged.language, "model": tagged.model,
            "candidates": [p.to_dict() for p in preds], "top_confidence": top_confidence(preds),
        })
    return entries
