"""The official ESCO CSV export (a folder or the portal's zip), read with every quirk of real exports handled:
repeated rows, newline-separated multi-value cells, BOMs, re-saved files that lost leading zeros, missing ISCO
files."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import DataError
from .taxonomy import PIVOT, IscoGroup, Labels, Occupation, Taxonomy

DOWNLOAD_HINT = (
    "download the ESCO classification as CSV (https://esco.ec.europa.eu/en/use-esco/download: "
    "'classification', format CSV, the languages you need) and point ESCOTAG_ESCO_DIR at the folder or the zip"
)
_OCC_FILE = re.compile(r"occupations_([a-z]{2,3})\.csv$")
_OCC_COLUMNS = ("conceptUri", "iscoGroup", "preferredLabel", "altLabels", "hiddenLabels", "description", "code")
_ISCO_COLUMNS = ("conceptUri", "code", "preferredLabel")
_BROADER_COLUMNS = ("conceptUri", "broaderUri")
_VERSION = re.compile(r"\bv(\d+\.\d+(?:\.\d+)?)\b")


class _Source:
    """A folder or a zip file of ESCO CSV files, read by file name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            raise DataError(path, f"no such ESCO folder or zip; {DOWNLOAD_HINT}")
        self.zip: zipfile.ZipFile | None = None
        if path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile as exc:
                raise DataError(path, f"not a folder nor a readable zip file ({exc})") from exc
            self.names = {Path(n).name: n for n in self.zip.namelist() if not n.endswith("/")}
        else:
            self.names = {p.name: p.name for p in path.iterdir() if p.is_file()}

    def display(self, name: str) -> str:
        return f"{self.path}!{self.names[name]}" if self.zip else str(self.path / name)

    def read(self, name: str) -> bytes:
        try:
            if self.zip:
                return self.zip.read(self.names[name])
            return (self.path / name).read_bytes()
        except OSError as exc:
            raise DataError(self.display(name), f"cannot read file ({exc.strerror or exc})") from exc


def _rows(source: _Source, name: str, data: bytes, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    where = source.display(name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(where, f"not UTF-8 text ({exc.reason})", line) from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(where, f"missing column(s) {', '.join(missing)} (is this an ESCO CSV export?)", 1)
        for row in reader:
            if None in row or any(v is None for v in row.values()):
                raise DataError(where, "row has a different number of fields than the header", reader.line_num)
            yield reader.line_num, row
    except csv.Error as exc:
        raise DataError(where, f"malformed CSV ({exc})", reader.line_num) from exc


def _split(cell: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in cell.split("\n") if v.strip()))


def _labels(row: dict) -> Labels:
    return Labels(
        preferred=row["preferredLabel"].strip(),
        alt=_split(row.get("altLabels", "")),
        hidden=_split(row.get("hiddenLabels", "")),
        description=(row.get("description") or "").strip(),
    )


def _read_occupations(source: _Source, name: str, data: bytes) -> dict[str, tuple[dict, Labels]]:
    """Rows by URI; when a URI repeats, the row with the newest modifiedDate wins."""
    out: dict[str, tuple[dict, Labels]] = {}
    newest: dict[str, str] = {}
    for line, row in _rows(source, name, data, _OCC_COLUMNS):
        uri = row["conceptUri"].strip()
        if not uri:
            raise DataError(source.display(name), "empty conceptUri", line)
        modified = row.get("modifiedDate", "")
        if uri in out and modified <= newest[uri]:
            continue
        newest[uri] = modified
        out[uri] = (row, _labels(row))
    return out


def read_csv_export(path: str | Path, languages: list[str] | None = None, version: str = "") -> Taxonomy:
    """Read an ESCO CSV export folder or zip: occupations_<lang>.csv (English required),
    ISCOGroups_<lang>.csv where present, broaderRelationsOccPillar_<lang>.csv.

    ISCO and ESCO codes and the status come from the English file: some re-saved exports lost leading zeros.
    The ESCO version is the given one, else the one the portal's zip names (``ESCO dataset - v1.2.1 - …``).
    """
    source = _Source(Path(path))
    found = {m.group(1): name for name in source.names if (m := _OCC_FILE.search(name))}
    if PIVOT not in found:
        raise DataError(
            source.path, f"no occupations_en.csv (found: {', '.join(sorted(source.names)) or 'nothing'}); "
            f"English is required; {DOWNLOAD_HINT}"
        )
    langs = [PIVOT, *sorted(lang for lang in found if lang != PIVOT and (languages is None or lang in languages))]
    read = source.read
    occupations: dict[str, Occupation] = {}
    for lang in langs:
        name = found[lang]
        for uri, (row, labels) in _read_occupations(source, name, read(name)).items():
            if lang == PIVOT:
                isco = row["iscoGroup"].strip()
                if not isco.isdigit():
                    raise DataError(source.display(name), f"iscoGroup {isco!r} of {uri} is not an ISCO code")
                occupations[uri] = Occupation(uri, row["code"].strip(), None, {}, (row.get("status") or "").strip(),
                                              isco_code=isco.zfill(4))
            if uri in occupations and labels.preferred:
                occupations[uri].labels[lang] = labels

    groups: dict[str, IscoGroup] = {}
    for lang in [PIVOT, *(lang for lang in langs if lang != PIVOT)]:
        name = f"ISCOGroups_{lang}.csv"
        if name not in source.names:
            continue
        for _, row in _rows(source, name, read(name), _ISCO_COLUMNS):
            uri = row["conceptUri"].strip()
            if lang == PIVOT:
                groups[uri] = IscoGroup(uri, row["code"].strip(), status=(row.get("status") or "").strip())
            if uri in groups:
                groups[uri].labels[lang] = _labels(row)

    broader = next((n for n in sorted(source.names) if n.startswith("broaderRelationsOccPillar")), None)
    if broader:
        for _, row in _rows(source, broader, read(broader), _BROADER_COLUMNS):
            concept = occupations.get(row["conceptUri"]) or groups.get(row["conceptUri"])
            if concept is not None:
                concept.parent = row["broaderUri"].strip()
    if not version and source.zip is not None:
        found_version = _VERSION.search(" ".join(source.names.values()))
        version = found_version.group(1) if found_version else ""
    return Taxonomy(list(occupations.values()), groups, str(source.path), version)
