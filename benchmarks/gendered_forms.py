"""How reading a title in two gendered forms once was chosen (docs/accuracy.md, "Titles in two gendered forms").

ESCO preferred labels written in two gendered forms ('Diretor técnico/Diretora técnica') are the queries, against
the English texts alone (esco-xling), so the first form is not itself in the index. Each is written three ways —
ESCO's whole forms, one word paired ('Lehrassistent/Lehrassistentin Grundschule'), an ending ('Lehrassistent/in
Grundschule', 'técnico/a', '(e)', '(a)') — and read as written (gender markers dropped, as before) or by
``clean_title`` (the first form). Untrained; not a test.

    python benchmarks/gendered_forms.py --encoder use
    python benchmarks/gendered_forms.py --encoder 'use*0.4+e5ft:ADAPTER*0.6' --concept-fold 1   # an adapter
                                                                   # trained with --holdout-concepts 1

Prints one JSON line per plan, way of writing, reading and language.
"""

from __future__ import annotations

import argparse
import json
from unittest import mock

from escotag import Tagger
from escotag.evaluation import xling
from escotag.tagging import pipeline, rules
from escotag.text.postings import _GENDER, _first_whole_form, clean_title

STYLES = ("whole", "word", "ending")


def markers_only(title: str) -> str:
    """clean_title as it was: gender markers dropped, both forms kept."""
    if not _GENDER.search(title):
        return title
    return " ".join(_GENDER.sub(" ", title).split()).strip(" -–|,") or title


def written(label: str, style: str) -> list[str]:
    """The label written in this style, or nothing when it is not a word-for-word pair of gendered forms."""
    if _first_whole_form(label) is None:
        return []
    first, second = (part.split() for part in label.split("/", 1))
    if style == "whole":
        return [label]
    differ = [i for i, (x, y) in enumerate(zip(first, second, strict=True)) if x != y]
    if len(differ) != 1:
        return []
    i = differ[0]
    x, y = first[i], second[i]
    if style == "word":
        word = f"{x}/{y}"
    elif y == x + "in":
        word = x + "/in"
    elif y == x + "e":
        word = x + "(e)"
    elif y == x + "a":
        word = x + "(a)"
    elif x.endswith("o") and y == x[:-1] + "a":
        word = x + "/a"
    else:
        return []
    return [" ".join([*first[:i], word, *first[i + 1:]])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="use")
    parser.add_argument("--concept-fold", type=int, default=None)
    parser.add_argument("--languages", default="de,es,fr,pt")
    args = parser.parse_args()
    tagger = Tagger(encoder=args.encoder, progress=False, trained=False)
    for style in STYLES:
        for reduce in (False, True):
            read = clean_title if reduce else markers_only
            with mock.patch.object(xling, "label_variants", lambda label, s=style: written(label, s)), \
                    mock.patch.object(pipeline, "clean_title", read), mock.patch.object(rules, "clean_title", read):
                for lang in args.languages.split(","):
                    r = xling.eval_esco_xling(tagger, lang, "labels", trained=False, concept_fold=args.concept_fold)
                    print(json.dumps({"encoder": args.encoder, "written": style, "first_form": reduce, "lang": lang,
                                      "n": r.n, "mrr": round(r.mrr, 4), "acc@1": round(r.acc[1], 4),
                                      "acc@5": round(r.acc[5], 4)}), flush=True)


if __name__ == "__main__":
    main()
