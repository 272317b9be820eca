"""Batch tagging of files: streaming readers and writers, resumable runs."""

from .tagging import Columns, Summary, tag_file

__all__ = ["Columns", "Summary", "tag_file"]
