"""ESCO data in: the official CSV export (folder or zip), the packed snapshot, and the snapshot shipped inside
the package; packing, provenance and the differences between two ESCO versions."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..settings import get_settings
from .csv_export import DOWNLOAD_HINT, read_csv_export
from .diff import Change, diff_taxonomies
from .snapshot import ATTRIBUTION, embedded_path, is_snapshot, metadata, read_snapshot, write_snapshot
from .taxonomy import Taxonomy

EMBEDDED = "embedded"


def configured_source() -> str:
    """ESCOTAG_ESCO_DIR (a CSV export folder or zip, or a packed snapshot) when set, else 'embedded'."""
    env = (get_settings().esco_dir or "").strip()
    if env and not Path(env).expanduser().exists():
        raise ConfigError(f"ESCOTAG_ESCO_DIR={env} does not exist; unset it to use the ESCO snapshot shipped "
                          f"with escotag, or {DOWNLOAD_HINT}")
    return str(Path(env).expanduser()) if env else EMBEDDED


def load_taxonomy(source: str | Path | None = None, languages: list[str] | None = None) -> Taxonomy:
    """ESCO from a CSV export folder or zip, a packed snapshot (.parquet) or 'embedded' (the snapshot shipped
    with escotag); None means ESCOTAG_ESCO_DIR, else the embedded snapshot."""
    source = configured_source() if source is None else str(source)
    if source == EMBEDDED:
        return read_snapshot(embedded_path(), languages, source=f"{EMBEDDED} ({embedded_path().name})")
    path = Path(source)
    if is_snapshot(path):
        return read_snapshot(path, languages)
    return read_csv_export(path, languages)


__all__ = ["ATTRIBUTION", "EMBEDDED", "Change", "configured_source", "diff_taxonomies", "embedded_path",
           "load_taxonomy", "metadata", "read_csv_export", "read_snapshot", "write_snapshot"]
