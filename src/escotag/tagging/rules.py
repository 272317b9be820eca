"""Rules users edit: a CSV of ``kind,pattern,language,occupation_uri`` (``ESCOTAG_RULES`` or ``--rules FILE``;
default ``ESCOTAG_HOME/rules.csv`` when it exists).

- ``title``: a posting whose normalised title (gender markers stripped, case and accents folded) equals the
  normalised pattern gets that occupation first.
- ``label``: an extra label of the occupation (a company's own job title, a national title), indexed like an ESCO
  alternative label: in the language's block (a blank language: in every language's block).
- ``exclude``: never that occupation for a posting whose normalised title contains the pattern's words, whole and
  in order (``*``: every title).

``language`` (ISO 639-1, blank = any) limits a rule to postings in that language (the given one, else the
detected one when routing by language, else the model's). Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from ..esco.taxonomy import Taxonomy
from ..settings import get_settings
from ..text.normalization import normalize
from ..text.postings import clean_title

KINDS = ("title", "label", "exclude")
COLUMNS = ("kind", "pattern", "language", "occupation_uri")
ANY = ""  # the language of a rule that applies to every language
EVERY_TITLE = "*"
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


def rules_path() -> Path | None:
    """ESCOTAG_RULES, else ESCOTAG_HOME/rules.csv when that file exists, else None (no rules)."""
    return get_settings().rules_file


def title_key(title: str) -> str:
    """How titles and title patterns are compared: normalised, without gender markers."""
    return normalize(clean_title(title))


@dataclass(frozen=True)
class Rule:
    kind: str
    pattern: str
    language: str
    uri: str
    line: int = 0  # where it was read (0: made in code)


@dataclass
class Rules:
    """Parsed rules, indexed for matching. ``Rules()`` is the empty set (rules off)."""

    rules: list[Rule] = field(default_factory=list)
    source: Path | None = None

    def __post_init__(self) -> None:
        self.titles: dict[tuple[str, str], Rule] = {}
        self.excludes: dict[tuple[str, ...], list[Rule]] = {}
        self.longest_exclude = 0
        for rule in self.rules:
            if rule.kind == "title":
                self.titles[(title_key(rule.pattern), rule.language)] = rule
            elif rule.kind == "exclude":
                words = () if rule.pattern.strip() == EVERY_TITLE else tuple(title_key(rule.pattern).split())
                self.excludes.setdefault(words, []).append(rule)
                self.longest_exclude = max(self.longest_exclude, len(words))

    @property
    def digest(self) -> str:
        """A fingerprint of the rules' content (a resumed file run must use the same rules)."""
        blob = "\n".join(f"{r.kind}\t{r.pattern}\t{r.language}\t{r.uri}" for r in self.rules)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def labels_for(self, language: str) -> list[tuple[str, str]]:
        """(uri, label) of the label rules indexed in this language's block."""
        return [(r.uri, r.pattern.strip()) for r in self.rules
                if r.kind == "label" and r.language in (ANY, language)]

    def match(self, title: str, language: str) -> tuple[str | None, set[str]]:
        """The occupation a title rule puts first (or None), and the occupations exclude rules remove."""
        if not self.rules:
            return None, set()
        key = title_key(title)
        rule = self.titles.get((key, language)) or self.titles.get((key, ANY))
        excluded: set[str] = set()
        if self.excludes:
            words = key.split()
            spans = {()} | {tuple(words[i:j]) for i in range(len(words))
                            for j in range(i + 1, min(len(words), i + self.longest_exclude) + 1)}
            for span in spans & self.excludes.keys():
                excluded.update(r.uri for r in self.excludes[span] if r.language in (ANY, language))
        return (rule.uri if rule else None), excluded

    # ---- reading and writing ------------------------------------------------------------------------
    @classmethod
    def of(cls, rules: Rules | str | Path | None, taxonomy: Taxonomy) -> Rules:
        """These rules; those of a CSV path; for None the configured file's (``rules_path``), else none."""
        if isinstance(rules, Rules):
            return rules
        path = Path(rules) if rules is not None else rules_path()
        return cls.read(path, taxonomy) if path is not None else cls()

    @classmethod
    def read(cls, path: str | Path, taxonomy: Taxonomy) -> Rules:
        """Rules from a CSV file, checked against the taxonomy; DataError names the file and line of a bad one."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError as exc:
            raise DataError(path, "no such rules file") from exc
        except UnicodeDecodeError as exc:
            raise DataError(path, "not UTF-8 text") from exc
        return cls.parse(text, taxonomy, path)

    @classmethod
    def parse(cls, text: str, taxonomy: Taxonomy, source: Path | None = None) -> Rules:
        where = source or "rules"
        reader = csv.reader(io.StringIO(text))
        rules: list[Rule] = []
        seen: dict[tuple[str, str], Rule] = {}
        header_seen = False
        for row in reader:
            line = reader.line_num
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            cells = [c.strip() for c in row]
            if not header_seen:
                header_seen = True
                if tuple(c.lower() for c in cells) == COLUMNS:
                    continue
            rule = checked_rule(cells, taxonomy, where, line)
            if rule.kind == "title":
                key = (title_key(rule.pattern), rule.language)
                other = seen.get(key)
                if other is not None and other.uri != rule.uri:
                    raise DataError(where, f"title rule {rule.pattern!r} also given on line {other.line} with "
                                           f"another occupation", line)
                seen[key] = rule
            rules.append(rule)
        return cls(rules, source)


def checked_rule(cells: list[str], taxonomy: Taxonomy, where: object = "rule", line: int | None = None) -> Rule:
    """A Rule from its four fields, or DataError saying what is wrong (and where)."""
    if len(cells) != len(COLUMNS):
        raise DataError(where, f"{len(cells)} fields; a rule has {len(COLUMNS)}: {','.join(COLUMNS)}", line)
    kind, pattern, language, uri = cells
    kind, language = kind.lower(), language.lower()
    if kind not in KINDS:
        raise DataError(where, f"unknown kind {kind!r}; use one of {', '.join(KINDS)}", line)
    if language and not _LANGUAGE.match(language):
        raise DataError(where, f"language {language!r} is not an ISO 639-1 code (or blank for any)", line)
    if kind == "label" and language and language not in taxonomy.languages:
        raise DataError(where, f"a label rule in {language!r}, which this ESCO has no labels in "
                               f"({', '.join(taxonomy.languages)})", line)
    if not (title_key(pattern) or (kind == "exclude" and pattern == EVERY_TITLE)):
        raise DataError(where, "empty pattern", line)
    if kind != "exclude" and pattern == EVERY_TITLE:
        raise DataError(where, f"'*' (every title) is for exclude rules, not {kind} rules", line)
    if uri not in taxonomy.position:
        raise DataError(where, f"{uri!r} is not an occupation URI of this ESCO", line)
    return Rule(kind, pattern, language, uri, line or 0)


_append_lock = threading.Lock()


def append_rules(path: str | Path, rules: Iterable[Rule], taxonomy: Taxonomy) -> Rules:
    """Add rules at the end of a rules file (created with its header) and return the file's rules. The file as it
    would be is checked first: a rule that would break it (a title already ruled to another occupation) is a
    DataError and nothing is written."""
    path = Path(path)
    with _append_lock:
        text = path.read_text(encoding="utf-8-sig") if path.exists() else ""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if not text.strip():
            writer.writerow(COLUMNS)
        elif not text.endswith(("\n", "\r")):
            buffer.write("\n")
        writer.writerows((r.kind, r.pattern, r.language, r.uri) for r in rules)
        result = Rules.parse(text + buffer.getvalue(), taxonomy, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8", newline="") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        return result
