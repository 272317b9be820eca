"""The eval commands end to end on small data built here: a MELO-format folder and a postings CSV."""

import json
import subprocess
import sys

import pytest

from conftest import write_labelled
from escotag import load_taxonomy

KEYS = {"dataset", "model", "n", "mrr", "acc@1", "acc@5", "acc@10", "seconds", "trained_on"}


@pytest.fixture
def run(esco_slice, monkeypatch):
    monkeypatch.setenv("ESCOTAG_ESCO_DIR", str(esco_slice))

    def _run(*args):
        out = subprocess.run([sys.executable, "-m", "escotag", "eval", *args, "--json"], capture_output=True,
                             text=True)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])
    return _run


def test_eval_melo_folder(tmp_path, esco_slice, run):
    tx = load_taxonomy(esco_slice)
    occupations = tx.occupations[:40]
    folder = tmp_path / "tst_q_de_c_de"
    folder.mkdir()
    with (folder / "corpus_elements.tsv").open("w") as ce, (folder / "concept_mapping.tsv").open("w") as cm:
        for i, occ in enumerate(occupations):
            ce.write(f"C{i}\t{occ.label('de')}\n")
            cm.write(f"C{i}\t{occ.uri}\n")
    # queries: the German alternative labels (not in the corpus) of the first 10 concepts that have one
    with_alt = [(i, o) for i, o in enumerate(occupations) if o.labels["de"].alt][:10]
    (folder / "queries.tsv").write_text("".join(f"Q{i}\t{o.labels['de'].alt[0]}\n" for i, o in with_alt))
    (folder / "annotations.tsv").write_text("".join(f"Q{i}\t0\tC{i}\t1\n" for i, _ in with_alt))
    result = run("melo", str(folder))
    assert set(result) == KEYS
    assert result["n"] == len(with_alt) and result["model"] == "De:de+en" and result["trained_on"] == "de+en"
    assert result["acc@10"] >= result["acc@5"] >= result["acc@1"]
    assert result["mrr"] > 0.5  # chance over 40 concepts is about 0.1


def test_eval_postings_isco_gold_and_acceptable(tmp_path, esco_slice, run):
    tx = load_taxonomy(esco_slice)
    baker = next(o for o in tx.occupations if o.label() == "baker")
    chef = next(o for o in tx.occupations if o.label() == "chef")
    path = write_labelled(tmp_path / "p.csv", [
        ["1", "baker", "", baker.uri, ""],
        ["2", "bread baker", "", f"http://data.europa.eu/esco/isco/C{baker.isco_code}", ""],
        ["3", "chef", "", baker.uri, chef.uri],  # gold wrong, acceptable right
    ], acceptable=True)
    result = run("postings", str(path), "--fields", "title")
    assert set(result) == KEYS | {"fields"} and result["n"] == 3
    assert result["acc@1"] == 1.0


def test_eval_postings_auto_routes_each_row(tmp_path, esco_slice, run):
    tx = load_taxonomy(esco_slice)
    baker = next(o for o in tx.occupations if o.label() == "baker")
    nurse = next(o for o in tx.occupations if o.label() == "nurse responsible for general care")
    path = write_labelled(tmp_path / "mixed.csv", [
        ["1", "Bäckerin in Vollzeit", "", baker.uri], ["2", "Verpleegkundige", "", nurse.uri],
        ["3", "baker", "", baker.uri],
    ])
    result = run("postings", str(path), "--fields", "title", "--model", "auto")
    assert result["model"] == "auto:De=1,Nl=1,EnV2=1" and result["n"] == 3
    assert result["acc@5"] == 1.0


def test_eval_esco_xling(run):
    result = run("esco-xling", "--lang", "de", "--queries", "labels")
    assert result["model"] == "en-only" and result["n"] >= 300
    assert result["mrr"] > 0.3  # chance over 300 occupations is about 0.02


@pytest.mark.parametrize("lang", ["de", "en"])
def test_eval_esco_labels_in_their_language_leave_the_queries_out_of_the_index(esco_slice, run, lang):
    from escotag.text.normalization import label_variants

    tx = load_taxonomy(esco_slice)
    asked = 0
    for occ in tx.occupations:
        labels = occ.labels.get(lang)
        if labels is not None and set(labels.variants()) - set(label_variants(labels.preferred)):
            asked += len(label_variants(labels.preferred))  # an occupation with another label to be found by
    result = run("esco-xling", "--lang", lang, "--queries", "labels", "--untrained", "--same-language")
    assert (result["dataset"], result["model"], result["n"]) == (f"esco-{lang}", f"{lang}-only", asked)
    # a query left in the index would be its own answer (MRR 1); English occupations have ~10 other labels each,
    # German ones ~5, so English is found more often by them
    assert asked > 100 and 0.3 < result["mrr"] < {"de": 0.95, "en": 0.99}[lang]
    if lang == "en":  # English labels against an English index are only a same-language set
        across = subprocess.run([sys.executable, "-m", "escotag", "eval", "esco-xling", "--lang", "en",
                                 "--queries", "labels", "--untrained"], capture_output=True, text=True)
        assert across.returncode != 0 and "--same-language" in across.stderr.splitlines()[-1]


def test_eval_esco_synthetic_postings_across_and_in_their_language(esco_slice, run):
    tx = load_taxonomy(esco_slice)
    german = sum(len(o.labels["de"].description.split(". ")) > 1 for o in tx.occupations if "de" in o.labels)
    across = run("esco-xling", "--lang", "de", "--queries", "postings", "--untrained")
    same = run("esco-xling", "--lang", "de", "--queries", "postings", "--untrained", "--same-language")
    assert (across["dataset"], across["model"], same["dataset"], same["model"]) == \
        ("esco-xling-de", "en-only", "esco-de", "de-only")
    assert across["n"] == same["n"] and across["n"] > german / 2  # one per description beyond its lead
    assert same["mrr"] > 0.2 and across["mrr"] > 0.2  # chance over 300 occupations is about 0.02
    ads = run("esco-xling", "--lang", "de", "--queries", "ads", "--untrained", "--same-language")
    titled = sum(bool(o.parent and tx.get(o.parent) and "de" in tx.get(o.parent).labels) for o in tx.occupations
                 if "de" in o.labels and len(o.labels["de"].description.split(". ")) > 1)
    assert 0 < ads["n"] <= same["n"] and ads["n"] >= titled / 2 and ads["mrr"] > 0.1  # a broader concept's title
    for asked, reason in ((["--queries", "postings"], "untrained"), (["--untrained"], "postings")):
        refused = subprocess.run([sys.executable, "-m", "escotag", "eval", "esco-xling", "--lang", "de",
                                  "--same-language", *asked], capture_output=True, text=True)
        assert refused.returncode != 0 and reason in refused.stderr.splitlines()[-1]
