"""Real tagging with the default encoder over a 300-occupation ESCO slice."""

import json
import subprocess
import sys

import numpy as np
import pytest

from escotag import ConfigError, Posting
from escotag.tagging.models import BY_LANGUAGE
from escotag.text.langid import detect_many

CASES = [
    ("software developer", "En", "software developer"),
    ("Softwareentwickler", "De", "software developer"),
    ("Bäckerin", "De", "baker"),
    ("مطور برمجيات", "Ar", "software developer"),
    ("محاسب", "Ar", "accountant"),
    ("Elektricien", "Nl", "electrician"),
    ("Verhuiswagenchauffeur", "Nl", "moving truck driver"),
    ("Farmacêutico", "Pt", "pharmacist"),
    ("Engenheiro civil", "Pt", "civil engineer"),
]


@pytest.mark.parametrize(("title", "model", "expected"), CASES)
def test_obvious_occupation_in_top5(tagger, title, model, expected):
    for name in (model, "auto"):
        top = [p.label_en for p in tagger.tag([title], model=name, topk=5)[0]]
        assert expected in top, (name, top)


def test_prediction_fields_and_order(tagger):
    preds = tagger.tag([{"title": "Bäcker", "description": "Wir backen Brot und Brötchen."}], "De", topk=4)[0]
    assert len(preds) == 4
    assert [p.score for p in preds] == sorted((p.score for p in preds), reverse=True)
    assert preds[0].label_en == "baker" and preds[0].label.startswith("Bäcker")
    assert preds[0].isco_code == "7512" and preds[0].isco_label


def test_batch_matches_single_items(tagger):
    items = ["chef", Posting("Koch", "Zubereitung von Speisen"), ("electrician", "wiring")]
    batch = tagger.tag(items, "auto", topk=3)
    single = [tagger.tag([item], "auto", topk=3)[0] for item in items]
    assert [[p.uri for p in ps] for ps in batch] == [[p.uri for p in ps] for ps in single]


def test_description_changes_scores_but_title_dominates(tagger):
    plain = tagger.scores([Posting("nurse")], "En")
    with_desc = tagger.scores([Posting("nurse", "Company: ACME\nWe care for patients in a hospital ward.")], "En")
    assert not np.allclose(plain, with_desc)
    assert tagger.taxonomy.occupations[int(with_desc.argmax())].label() == "nurse responsible for general care"


def test_bad_inputs(tagger):
    with pytest.raises(ConfigError, match="valid models: auto, EnV2"):
        tagger.tag(["x"], model="Klingon")
    with pytest.raises(ConfigError, match="non-empty title"):
        tagger.tag([{"title": "  "}])
    with pytest.raises(ConfigError, match="topk"):
        tagger.tag(["x"], topk=0)
    assert tagger.spec("enV2").name == "EnV2"


def test_language_routing():
    ours = set(BY_LANGUAGE)
    assert detect_many(["مصمم - Kitchen Designer (AutoCAD)", "Softwareentwickler im Bereich Bankwesen",
                        "Verpleegkundige in het ziekenhuis", "Інженер-програміст", "12345"], ours) == \
        ["ar", "de", "nl", "uk", "en"]
    # languages without a model, when lingua is sure of them; a short ambiguous title stays with a model language
    *sure, unsure = detect_many(["Insegnante di scuola primaria", "Kierowca kat. C", "Sjuksköterska",
                                 "Yazılım mühendisi", "Μηχανικός λογισμικού", "Cameriere di sala"], ours)
    assert sure == ["it", "pl", "sv", "tr", "el"] and unsure in ours


def test_batched_language_ids_are_the_one_at_a_time_ones():
    from escotag.text import langid

    texts = ["Bäcker", "chef de cuisine", "مصمم - Kitchen Designer", "verpleegkundige", "123", "motorista de camião",
             "Інженер", "Software Engineer", "Bäcker", "enfermero de urgencias", "Sjuksköterska på akuten"]
    ours = frozenset(BY_LANGUAGE)
    detector = langid._detector()
    one_by_one = [langid._by_script(t, "en") or langid._choose(detector.compute_language_confidence_values(t), ours,
                                                                 "en") for t in texts]
    assert langid.detect_many(texts, ours) == one_by_one == \
        ["de", "fr", "ar", "nl", "en", "pt", "uk", "en", "de", "es", "sv"]
    assert langid.detect_many(texts, ours) == one_by_one  # the second time from memory
    assert langid.detect_many(["12"], ours, default="de") == ["de"]


def test_mixed_arabic_english_title(tagger):
    preds, model, language, _ = tagger.tag_with_models(["مطور - Software Developer (Java)"], "auto", 5)[0]
    assert (model, language) == ("Ar", "ar")
    assert "software developer" in [p.label_en for p in preds]


def test_each_posting_is_routed_once_and_carries_its_language(tagger):
    """The language a result reports is the one routing took: given, else detected under auto, else the model's."""
    postings = [Posting("Bäckerin"), Posting("baker", language="en"), Posting("Elektricien")]
    assert [(t.model, t.language) for t in tagger.tag_with_models(postings, "auto", 2)] == \
        [("De", "de"), ("EnV2", "en"), ("Nl", "nl")]
    assert [(t.model, t.language) for t in tagger.tag_with_models(postings, "De", 2)] == \
        [("De", "de"), ("De", "en"), ("De", "de")]


def test_cli_tag_json_and_errors(esco_slice, monkeypatch):
    monkeypatch.setenv("ESCOTAG_ESCO_DIR", str(esco_slice))
    run = [sys.executable, "-m", "escotag"]
    out = subprocess.run([*run, "tag", "Bäcker", "--json", "-k", "2"], capture_output=True, text=True, check=True)
    answer = json.loads(out.stdout)
    assert answer["model"] == "De" and answer["predictions"][0]["label_en"] == "baker"
    bad = subprocess.run([*run, "tag", "x", "--model", "Zz"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == ["escotag: error: unknown model 'Zz'; valid models: "
                                               "auto, EnV2, En, Ar, De, Nl, Pt, Fr, Es, Uk"]
    monkeypatch.setenv("ESCOTAG_ESCO_DIR", str(esco_slice / "missing"))
    bad = subprocess.run([*run, "tag", "x"], capture_output=True, text=True)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def test_gender_markers_do_not_move_the_ranking(tagger):
    from escotag.text.postings import clean_title

    assert clean_title("Softwareentwickler (m/w/d)") == "Softwareentwickler"
    assert clean_title("Ingénieur (H/F)") == "Ingénieur" and clean_title("Koch [m|w|d]") == "Koch"
    assert clean_title("TCP/IP engineer") == "TCP/IP engineer" and clean_title("(m/w/d)") == "(m/w/d)"
    plain, marked = tagger.tag(["Bäcker", "Bäcker (m/w/d)"], "De", topk=5)
    assert [p.uri for p in marked] == [p.uri for p in plain] and marked[0].score == plain[0].score


def test_a_job_named_in_two_gendered_forms_is_read_once(tagger):
    from escotag.text.postings import clean_title

    for written in ("Leiter/Leiterin - Lager", "Leiter/-in - Lager", "Leiter*in - Lager", "Leiter:innen - Lager",
                    "Leiter (m/w/d) - Lager", "Leiter/in (m/w/d) - Lager"):
        assert clean_title(written) == "Leiter - Lager", written
    assert clean_title("Kaufmann/Kauffrau im Einzelhandel") == "Kaufmann im Einzelhandel"
    assert clean_title("Tierschutzbeauftragter/Tierschutzbeauftragte") == "Tierschutzbeauftragter"
    assert clean_title("Diretor técnico/Diretora técnica") == "Diretor técnico"
    assert clean_title("Vendedor(a)") == "Vendedor" and clean_title("Chargé(e) de clientèle") == "Chargé de clientèle"
    assert clean_title("Camarero/a") == "Camarero" and clean_title("Waiter/Waitress") == "Waiter"
    # alternatives, not gendered forms, stay whole
    for kept in ("TCP/IP engineer", "Sales/Marketing Manager", "Developer/Development Lead", "staff nurse/nurse aid",
                 "Social Media/Digital Marketing/E Commerce Executive", "Docent natuur- / scheikunde", "n/a",
                 "Sales/e-commerce manager"):
        assert clean_title(kept) == kept
    plain, paired, short = tagger.tag(["Bäcker", "Bäcker/Bäckerin", "Bäcker/-in (m/w/d)"], "De", topk=5)
    assert [p.uri for p in paired] == [p.uri for p in short] == [p.uri for p in plain]
    assert paired[0].score == plain[0].score
