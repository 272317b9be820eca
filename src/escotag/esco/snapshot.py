"""The packed ESCO snapshot: one Parquet file (zstd), a row per concept and language, with its provenance in
the file's metadata. ``escotag esco pack`` writes it from an official export; escotag ships one inside the
package (``EMBEDDED``) so that a fresh install needs no download.

The file holds no timestamp or path, so packing the same export with the same pyarrow gives the same bytes.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DataError
from .taxonomy import PIVOT, Concept, IscoGroup, Labels, Occupation, Taxonomy

FORMAT = "escotag-esco-snapshot"
FORMAT_VERSION = 1
METADATA_KEY = b"escotag"
EMBEDDED_NAME = "esco.parquet"
ATTRIBUTION = "This service uses the ESCO classification of the European Commission."

_STRINGS = pa.list_(pa.string())
SCHEMA = pa.schema([
    ("kind", pa.dictionary(pa.int8(), pa.string())),
    ("uri", pa.string()),
    ("code", pa.string()),
    ("isco_code", pa.string()),
    ("parent", pa.string()),
    ("status", pa.dictionary(pa.int8(), pa.string())),
    ("lang", pa.dictionary(pa.int8(), pa.string())),
    ("preferred", pa.string()),
    ("alt", _STRINGS),
    ("hidden", _STRINGS),
    ("description", pa.string()),
])
_KINDS = {"occupation": Occupation, "isco": IscoGroup}


def embedded_path() -> Path:
    """The snapshot shipped inside the package."""
    return Path(str(resources.files("escotag") / "data" / EMBEDDED_NAME))


def is_snapshot(path: Path) -> bool:
    return path.is_file() and path.suffix == ".parquet"


def metadata(taxonomy: Taxonomy) -> dict:
    """What the snapshot says about itself (also what ``escotag esco info`` prints)."""
    labels = {lang: sum(len(o.labels[lang].variants()) for o in taxonomy.occupations if lang in o.labels)
              for lang in taxonomy.languages}
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "esco_version": taxonomy.version,
        "languages": taxonomy.languages, "occupations": len(taxonomy),
        "isco_groups": len(taxonomy.isco_groups), "label_variants": labels,
        "content_hash": taxonomy.content_hash, "attribution": ATTRIBUTION,
        "licence": "ESCO: reuse authorised with acknowledgement of the source (Commission Decision 2011/833/EU)",
    }


def _rows(concepts: list[Concept]) -> dict[str, list]:
    columns: dict[str, list] = {name: [] for name in SCHEMA.names}
    for concept in concepts:
        kind = "occupation" if isinstance(concept, Occupation) else "isco"
        for lang in sorted(concept.labels, key=lambda lang: (lang != PIVOT, lang)):
            texts = concept.labels[lang]
            values = (kind, concept.uri, concept.code, getattr(concept, "isco_code", ""), concept.parent or "",
                      concept.status, lang, texts.preferred, list(texts.alt), list(texts.hidden), texts.description)
            for name, value in zip(SCHEMA.names, values, strict=True):
                columns[name].append(value)
    return columns


def write_snapshot(taxonomy: Taxonomy, path: str | Path) -> dict:
    """Write the taxonomy as a snapshot file; returns its metadata."""
    meta = metadata(taxonomy)
    table = pa.table(_rows(taxonomy.concepts()), schema=SCHEMA.with_metadata({METADATA_KEY: json.dumps(meta)}))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=19, use_dictionary=True,
                   row_group_size=len(table) or 1, write_statistics=False, store_schema=True)
    tmp.replace(path)
    return meta


def read_metadata(path: str | Path) -> dict:
    """The snapshot's own metadata (DataError when the file is not an escotag snapshot)."""
    try:
        raw = (pq.read_schema(path).metadata or {}).get(METADATA_KEY)
        meta = json.loads(raw) if raw else {}
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise DataError(path, f"not a readable Parquet file ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise DataError(path, "not an escotag ESCO snapshot (escotag esco pack writes one)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise DataError(path, f"snapshot format {meta.get('format_version')} is not {FORMAT_VERSION}: repack it")
    return meta


def read_snapshot(path: str | Path, languages: list[str] | None = None, source: str | None = None) -> Taxonomy:
    """Load a snapshot file (English always, plus these languages; default all)."""
    meta = read_metadata(path)
    table = pq.read_table(path)
    if languages is not None:
        keep = {PIVOT, *languages}
        table = table.filter(pa.compute.is_in(table["lang"].cast(pa.string()), pa.array(sorted(keep))))
    occupations: dict[str, Occupation] = {}
    groups: dict[str, IscoGroup] = {}
    columns = {name: table[name].to_pylist() for name in SCHEMA.names}
    for kind, uri, code, isco_code, parent, status, lang, preferred, alt, hidden, description in zip(
            *columns.values(), strict=True):
        target: dict = occupations if kind == "occupation" else groups
        concept = target.get(uri)
        if concept is None:
            concept = _KINDS[kind](uri, code, parent or None, {}, status)
            if kind == "occupation":
                concept.isco_code = isco_code
            target[uri] = concept
        concept.labels[lang] = Labels(preferred, tuple(alt), tuple(hidden), description)
    taxonomy = Taxonomy(list(occupations.values()), groups, source or str(path), meta.get("esco_version", ""))
    if languages is None and taxonomy.content_hash != meta.get("content_hash"):
        raise DataError(path, "content does not match the hash in its metadata (corrupt or edited file): repack it")
    return taxonomy
