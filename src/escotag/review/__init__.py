"""The review loop: postings the tagger is unsure of wait in a database queue for a person to decide; decisions
are exported as labelled postings for ``escotag train --labelled`` or turned into rules."""

from .queue import needs_review, review_entries
from .store import ConflictError, NotFoundError, ReviewStore

__all__ = ["ConflictError", "NotFoundError", "ReviewStore", "needs_review", "review_entries"]
