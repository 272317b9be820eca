"""Posting inputs: the item type and how a posting's description is cut down to what carries signal."""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from .normalization import clean_text, lead

# Only the lead of a description is encoded: it is where ads say what the job is, and encoding cost grows
# with length (docs/speed.md).
DESCRIPTION_CHARS = 400
# What an encoder that reads postings whole (mpnet) is given: more than its 256 tokens, so its tokenizer decides
WHOLE_POSTING_CHARS = 1_500
_FIELD_LINE = re.compile(r"^[\w /&-]{1,30}:\s*.{0,80}$")  # 'Company: ACME', 'Key Responsibilities:'
# Gender markers of job ads: (m/w/d), (m/f/x), (H/F), (M/V), m/w/d, (male only), (all genders). Measured: on
# deu_q_de_c_de with ' (m/w/d)' appended to every query, MRR .6106 noisy vs .6242 stripped (= the clean queries);
# on 13,307 real jobbert_val titles MRR .3314 -> .3315.
_G = r"(?:m|w|f|d|x|h|v|div|divers|diverse)"
_GENDER = re.compile(
    rf"[(\[]\s*{_G}(?:\s*[/|,]\s*{_G}){{1,3}}\s*[)\]]|(?<![\w/]){_G}(?:/{_G}){{2,3}}(?![\w/])"
    r"|[(\[]\s*(?:male|female|male only|female only|all genders?|gn\*?)\s*[)\]]", re.IGNORECASE)


@dataclass(frozen=True)
class Posting:
    """A posting as every door hands it on: its title and description cleaned once, here (``clean_text``), so
    stray spaces, no-break and zero-width characters or decomposed accents never change an answer."""

    title: str
    description: str = ""
    id: str | None = None
    language: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "title", clean_text(self.title))
        object.__setattr__(self, "description", clean_text(self.description, lines=True))


def as_posting(item: object) -> Posting:
    """A Posting from a Posting, a title string, a mapping with 'title' (and 'description'), or a tuple."""
    if isinstance(item, Posting):
        posting = item
    elif isinstance(item, str):
        posting = Posting(item)
    elif isinstance(item, Mapping):
        posting = Posting(
            str(item.get("title") or ""), str(item.get("description") or ""),
            None if item.get("id") is None else str(item["id"]), item.get("language"),
        )
    elif isinstance(item, tuple) and 1 <= len(item) <= 2:
        posting = Posting(*(str(x or "") for x in item))
    else:
        raise ConfigError(f"cannot read a posting from {type(item).__name__}: give a title string or a dict")
    if not posting.title:
        raise ConfigError("a posting needs a non-empty title")
    return posting


# A job named in two gendered forms: 'Bäcker/-in', 'Verkäufer*in', 'Vendedor(a)', 'Chargé(e)' (a feminine ending,
# lower case, after a slash, star, colon, underscore or middle dot, or in brackets); 'Leiter/Leiterin - Lager',
# 'Kaufmann/Kauffrau im Einzelhandel' (two words, the second the first with a feminine ending); ESCO's own
# 'Lehrassistent Grundschule/Lehrassistentin Grundschule' (two whole forms, word for word). The first form is
# kept. Measured on ESCO labels written so, for occupations no adapter saw, against English (esco-xling
# --concept-fold 1): `use` +0.005 to +0.04 MRR, the title mix +0.007 on average over de/es/fr/pt and the three
# ways of writing them (docs/accuracy.md, "Titles in two gendered forms").
_SUFFIX = r"-?(?:innen|in|frau|a|as|e|es|se|euse|rice|ère)"
_SHORT_FORM = re.compile(rf"(?<=\w\w\w)(?:[/*:_·]{_SUFFIX}|\({_SUFFIX}\))(?![\w(-])")
_WORD_PAIR = re.compile(r"(?<![\w/])([\w-]{4,})/([\w-]{4,})(?![\w/])")
_FEMININE_TAILS = frozenset({
    "in", "innen", "e", "a", "as", "es", "frau", "ess", "esse", "ress", "euse", "se", "rice", "ice", "ster", "ière",
    "ère", "eira", "ora", "ara", "vrouw", "ina", "ta", "te", "ne", "rin", "erin", "ressa", "eresse"})


def _gendered(a: str, b: str) -> bool:
    """Whether b is a's other gendered form: the same stem, then a feminine tail ('Leiter'/'Leiterin',
    'Kaufmann'/'Kauffrau', 'acteur'/'actrice'), or a with its last letter or two dropped ('Beauftragter'/'-te')."""
    a, b = a.casefold(), b.casefold()
    stem = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    if a == b or stem < 3 or len(a) - stem > 4:
        return False
    return b[stem:] in _FEMININE_TAILS or (stem == len(b) and len(a) - stem <= 2)


def _first_whole_form(title: str) -> str | None:
    """'A B/A' B'' written word for word in two gendered forms: the first ('Diretor técnico/Diretora técnica')."""
    parts = [p.strip() for p in (title.split(" / ") if " / " in title else title.split("/"))]
    if len(parts) != 2:
        return None
    first, second = parts[0].split(), parts[1].split()
    if len(first) != len(second) or first == second:
        return None
    return parts[0] if all(x == y or _gendered(x, y) for x, y in zip(first, second, strict=True)) else None


def first_gendered_form(title: str) -> str:
    """The title with a job named in two gendered forms named once, in the first."""
    if "/" not in title and "(" not in title and not any(c in title for c in "*:_·"):
        return title
    title = _SHORT_FORM.sub("", title)
    title = _WORD_PAIR.sub(lambda m: m.group(1) if _gendered(m.group(1), m.group(2)) else m.group(0), title)
    return (_first_whole_form(title) or title) if "/" in title else title


def clean_title(title: str) -> str:
    """The title without gender markers and with a job named in two gendered forms named once (unchanged when
    it has neither, or when nothing else would be left)."""
    if _GENDER.search(title):
        title = " ".join(_GENDER.sub(" ", title).split()).strip(" -–|,") or title
    return first_gendered_form(title)


def description_lead(description: str, title: str = "", max_chars: int = DESCRIPTION_CHARS) -> str:
    """The leading sentences of a description, without 'Field: value' and heading lines."""
    lines = [
        line for line in description.splitlines()
        if line.strip() and not _FIELD_LINE.match(line.strip()) and line.strip() != title.strip()
    ]
    return lead("\n".join(lines), max_chars)


def has_description(posting: Posting) -> bool:
    """Whether a posting's description says anything once 'Field: value' and heading lines are dropped: the one
    test every encoder and plan part uses to read it as a posting rather than a title."""
    return bool(posting.description) and bool(description_lead(posting.description, posting.title))


def whole_posting(title: str, description: str) -> str:
    """A posting as one text for an encoder that reads it whole: the title, then the description without
    'Field: value' and heading lines (the encoder cuts it at its token limit)."""
    return f"{title}. {description_lead(description, title, WHOLE_POSTING_CHARS)}"


FOLDS = 5


def fold_of(n: int, folds: int = FOLDS) -> np.ndarray:
    """Each row's fold (0..folds-1) of a labelled file of n rows: scikit-learn's KFold(folds, shuffle=True,
    random_state=0), the one split behind every out-of-fold figure (``escotag eval postings --fold``,
    ``escotag finetune --holdout-fold``, make choose-weights)."""
    from sklearn.model_selection import KFold

    out = np.empty(n, dtype=np.int64)
    for fold, (_, test) in enumerate(KFold(folds, shuffle=True, random_state=0).split(np.arange(n))):
        out[test] = fold
    return out


def rows_of_fold(rows: list, fold: int) -> list:
    """The rows of one fold (1..FOLDS) of a labelled file's rows, by ``fold_of``."""
    return [r for r, f in zip(rows, fold_of(len(rows)), strict=True) if f == fold - 1]


def read_labelled(path: str | Path) -> list[dict]:
    """Rows of a labelled postings CSV (id,title,description,gold_uri[,acceptable_uris])."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file")
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"title", "gold_uri"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(path, f"missing column(s) {', '.join(sorted(missing))}", 1)
        return list(reader)
