"""Rules benchmark (make bench-rules): tagging speed with 10,000 rules loaded against no rules, in one process on
the same titles. Prints a JSON summary.

The rules are made from ESCO itself, as a user's file would look: title rules on real-looking titles (an ESCO
label with a company or seniority word), label rules (company titles) and exclude rules (the longest word of a
label), each for a random occupation, in the taxonomy's languages or for any. The titles are the shared real
vacancy titles (repeated), routed by language ('auto'), in 256-title batches as ``escotag tag`` does.
BENCH_REPEAT alternating rounds; the median is the figure (on this shared 2-core VM the best of a few rounds swung
by ±12 % between runs of the same code). Run it on an idle machine after ``escotag build``.
"""

from __future__ import annotations

import csv
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from escotag import Tagger
from escotag.tagging.rules import COLUMNS, Rules

SHARED = Path(os.environ.get("ESCOTAG_SHARED", "../shared"))
N_RULES = int(os.environ.get("BENCH_RULES", "10000"))
N_TITLES = int(os.environ.get("BENCH_TITLES", "10000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "7"))
MIX = {"title": 0.6, "label": 0.2, "exclude": 0.2}
WORDS = ["Senior", "Junior", "Lead", "Acme", "Globex", "Initech", "Team", "Nord", "Sud", "Plus"]


def make_rules(tagger: Tagger, n: int, path: Path) -> None:
    rng = random.Random(0)
    occupations = tagger.taxonomy.occupations
    languages = ["", *tagger.taxonomy.languages]
    seen: set[tuple[str, str]] = set()
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        written = 0
        while written < n:
            kind = rng.choices(list(MIX), weights=list(MIX.values()))[0]
            occ = rng.choice(occupations)
            lang = rng.choice(languages)
            label = occ.label(lang or "en")
            if kind == "exclude":  # a distinctive word, as a coder would exclude ('nurse'), not 'and' or 'of'
                pattern = max(label.split(), key=len)
            else:
                pattern = f"{rng.choice(WORDS)} {label} {rng.randrange(1000)}"
            if kind == "title" and (pattern.lower(), lang) in seen:
                continue
            seen.add((pattern.lower(), lang))
            writer.writerow([kind, pattern, lang, occ.uri])
            written += 1


def titles() -> list[str]:
    with (SHARED / "eval/postings/jobbert_val_titles_en.csv").open(encoding="utf-8") as f:
        rows = [r["title"] for r in csv.DictReader(f)]
    return (rows * (N_TITLES // len(rows) + 1))[:N_TITLES]


def rate(tagger: Tagger, items: list[str]) -> float:
    started = time.perf_counter()
    for i in range(0, len(items), 256):
        tagger.tag_with_models(items[i : i + 256], "auto", 5)
    return len(items) / (time.perf_counter() - started)


def main() -> None:
    plain = Tagger(rules=Rules(), progress=False)
    path = Path(tempfile.mkdtemp(prefix="escotag-bench-rules-")) / "rules.csv"
    make_rules(plain, N_RULES, path)
    started = time.perf_counter()
    ruled = Tagger(taxonomy=plain.taxonomy, rules=path, progress=False)
    ruled.load()
    load_seconds = time.perf_counter() - started
    plain.load()
    items = titles()
    rate(plain, items[:512]), rate(ruled, items[:512])  # warm caches
    rates: dict[str, list[float]] = {"none": [], "rules": []}
    for _ in range(REPEAT):
        rates["none"].append(rate(plain, items))
        rates["rules"].append(rate(ruled, items))
    median = {k: statistics.median(v) for k, v in rates.items()}
    ruled_answers = sum(p[0].source == "rule" for p in ruled.tag(items[:2000], "auto", 1) if p)
    print(json.dumps({
        "rules": len(ruled.rules), "kinds": {k: sum(r.kind == k for r in ruled.rules.rules) for k in MIX},
        "titles": len(items), "encoder": ruled.plan.name, "titles_per_s_no_rules_median": round(median["none"], 1),
        "titles_per_s_with_rules_median": round(median["rules"], 1),
        "slowdown_percent": round(100 * (1 - median["rules"] / median["none"]), 2),
        "all_rounds": {k: [round(x, 1) for x in v] for k, v in rates.items()},
        "load_with_rules_seconds": round(load_seconds, 1), "title_rule_answers_in_first_2000": ruled_answers,
    }, indent=1))


if __name__ == "__main__":
    main()
