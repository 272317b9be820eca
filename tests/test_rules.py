"""Users' rules on the 300-occupation slice: title rules win, exclude rules remove, label rules are indexed; the same
answers in Python, the CLI and the HTTP API; a bad line names its file and line; the service reloads them."""

import csv
import json
import subprocess
import sys
import threading

import httpx
import pytest

from conftest import serve
from escotag import Tagger
from escotag.errors import DataError
from escotag.service import Settings, create_app
from escotag.tagging.rules import Rules

KEY = "rules-key"


def uri_of(tagger, label):
    return next(o.uri for o in tagger.taxonomy.occupations if o.label() == label)


def write_rules(path, rows, header=True):
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(["kind", "pattern", "language", "occupation_uri"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def ruled(tagger, esco_slice, tmp_path_factory):
    """A rules file with one rule of each kind, and a tagger that reads it."""
    path = write_rules(tmp_path_factory.mktemp("rules") / "rules.csv", [
        ["title", "Kundenheld", "de", uri_of(tagger, "baker")],
        ["exclude", "developer", "", uri_of(tagger, "software developer")],
        ["label", "crumb wizard", "en", uri_of(tagger, "baker")],
        ["exclude", "night shift", "de", uri_of(tagger, "chef")],
    ])
    return path, Tagger(esco_slice, progress=False, rules=path)


def top(tagger, item, model="auto", k=10):
    return tagger.tag([item], model, k)[0]


def test_title_rule_comes_first(tagger, ruled):
    _, with_rules = ruled
    baker = uri_of(tagger, "baker")
    item = {"title": "Kundenheld (m/w/d)", "language": "de"}
    assert top(tagger, item)[0].uri != baker  # the model alone does not know this company title
    first = top(with_rules, item)
    assert (first[0].uri, first[0].source) == (baker, "rule")
    assert all(p.source == "model" for p in first[1:]) and baker not in [p.uri for p in first[1:]]
    assert len(first) == 10
    # the rule is German only, and matches the whole normalised title only
    assert top(with_rules, {"title": "Kundenheld", "language": "nl"})[0].source == "model"
    assert top(with_rules, {"title": "Kundenheld Filiale", "language": "de"})[0].source == "model"


def test_exclude_rule_removes_an_occupation(tagger, ruled):
    _, with_rules = ruled
    developer = uri_of(tagger, "software developer")
    assert top(tagger, "software developer")[0].uri == developer
    for title in ("software developer", "Senior Java Developer (m/w/d)"):
        assert developer not in [p.uri for p in top(with_rules, title, k=50)]
    assert developer in [p.uri for p in top(with_rules, "software engineer", k=20)]  # no 'developer' word


def test_exclude_rule_keeps_to_its_language(tagger, ruled):
    _, with_rules = ruled
    chef = uri_of(tagger, "chef")
    english = top(with_rules, {"title": "chef night shift", "language": "en"}, "EnV2")
    assert chef in [p.uri for p in english]
    german = top(with_rules, {"title": "chef night shift", "language": "de"}, "De", k=50)
    assert chef not in [p.uri for p in german]


def test_label_rule_is_found_through_the_index(tagger, ruled):
    _, with_rules = ruled
    baker = uri_of(tagger, "baker")
    before = top(tagger, "Senior Crumb Wizard", "EnV2")
    assert before[0].uri != baker
    after = top(with_rules, "Senior Crumb Wizard", "EnV2")
    assert (after[0].uri, after[0].source) == (baker, "model")  # the model found it, through the new label
    # indexed like an ESCO label: other titles keep their answers
    for title in ("software engineer", "pharmacist", "civil engineer"):
        assert [p.uri for p in top(with_rules, title, "EnV2")] == [p.uri for p in top(tagger, title, "EnV2")]


@pytest.mark.parametrize(("rows", "message"), [
    ([["title", "cook", "en", "http://data.europa.eu/esco/occupation/nope"]], "line 3: 'http://data.europa.eu/esco"),
    ([["rename", "cook", "en", "{baker}"]], "line 3: unknown kind 'rename'"),
    ([["title", "cook", "english", "{baker}"]], "line 3: language 'english' is not an ISO 639-1 code"),
    ([["label", "Bäckermeister", "fr", "{baker}"]], "line 3: a label rule in 'fr'"),
    ([["title", "   ", "", "{baker}"]], "line 3: empty pattern"),
    ([["title", "*", "", "{baker}"]], "line 3: '\\*' \\(every title\\) is for exclude rules"),
    ([["title", "cook", "en"]], "line 3: 3 fields"),
    ([["title", "Cook", "", "{baker}"], ["title", "cook (m/w/d)", "", "{chef}"]],
     "line 4: title rule 'cook \\(m/w/d\\)' also given on line 3"),
])
def test_a_bad_line_names_file_and_line(tagger, esco_slice, tmp_path, monkeypatch, rows, message):
    uris = {"baker": uri_of(tagger, "baker"), "chef": uri_of(tagger, "chef")}
    path = tmp_path / "rules.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        f.write("kind,pattern,language,occupation_uri\n# a comment line\n")
        csv.writer(f).writerows([[c.format(**uris) for c in row] for row in rows])
    with pytest.raises(DataError, match=f"{path}, {message}"):
        Rules.read(path, tagger.taxonomy)
    monkeypatch.setenv("ESCOTAG_ESCO_DIR", str(esco_slice))
    done = subprocess.run([sys.executable, "-m", "escotag", "tag", "cook", "--rules", str(path)],
                          capture_output=True, text=True)
    assert done.returncode != 0 and f"{path}, line" in done.stderr and "Traceback" not in done.stderr


def test_same_answers_in_python_cli_and_http(tagger, ruled, esco_slice, tmp_path, monkeypatch):
    path, with_rules = ruled
    items = [{"id": "a", "title": "Kundenheld", "language": "de"}, {"id": "b", "title": "Java developer"},
             {"id": "c", "title": "Crumb Wizard"}, {"id": "d", "title": "Bäcker"}, {"id": "e", "title": "nurse"}]
    python = [[(p.uri, p.source) for p in preds] for preds in with_rules.tag(items, "auto", 5)]
    assert python[0][0][1] == "rule"

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    monkeypatch.setenv("ESCOTAG_ESCO_DIR", str(esco_slice))
    done = subprocess.run([sys.executable, "-m", "escotag", "tag", "-i", str(src), "-o", str(tmp_path / "o.jsonl"),
                           "--rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text(encoding="utf-8").splitlines()]
    # the file has no language column: a given language only reaches the tagger through Python and HTTP
    cli_items = [dict(i, language=None) for i in items]
    assert [[(p["uri"], p["source"]) for p in r["predictions"]] for r in rows] == \
        [[(p.uri, p.source) for p in preds] for preds in with_rules.tag(cli_items, "auto", 5)]

    server, thread, base = serve(create_app(with_rules, Settings()))
    try:
        answer = httpx.post(f"{base}/v1/tag", json={"items": items, "topk": 5}, timeout=60).json()
        assert [[(o["uri"], o["source"]) for o in i["occupations"]] for i in answer["items"]] == python
    finally:
        server.should_exit = True
        thread.join(10)


def test_service_reloads_rules_without_dropping_requests(tagger, esco_slice, tmp_path):
    baker, chef = uri_of(tagger, "baker"), uri_of(tagger, "chef")
    path = write_rules(tmp_path / "rules.csv", [["title", "Kundenheld", "de", baker]])
    server, thread, base = serve(create_app(Tagger(esco_slice, progress=False, rules=path), Settings(api_key=KEY)))
    headers = {"X-API-Key": KEY}
    item = {"items": [{"title": "Brotkünstler", "language": "de"}], "topk": 3}
    try:
        assert httpx.post(f"{base}/v1/admin/reload", timeout=30).status_code == 401
        assert httpx.post(f"{base}/v1/tag", json=item, headers=headers).json()["items"][0]["occupations"][0][
            "source"] == "model"
        statuses, stop = [], threading.Event()

        def load() -> None:
            with httpx.Client(timeout=60) as client:
                while not stop.is_set():
                    statuses.append(client.post(f"{base}/v1/tag", json=item, headers=headers).status_code)

        workers = [threading.Thread(target=load) for _ in range(3)]
        for w in workers:
            w.start()
        write_rules(path, [["title", "Kundenheld", "de", baker], ["title", "Brotkünstler", "de", chef],
                           ["label", "Teigmeister", "de", baker]])
        reloaded = httpx.post(f"{base}/v1/admin/reload", headers=headers, timeout=120)
        stop.set()
        for w in workers:
            w.join(60)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json() == {"rules": 3, "kinds": {"title": 2, "label": 1}, "file": str(path)}
        assert statuses and set(statuses) == {200}
        first = httpx.post(f"{base}/v1/tag", json=item, headers=headers).json()["items"][0]["occupations"][0]
        assert (first["uri"], first["source"]) == (chef, "rule")

        path.write_text(path.read_text() + "exclude,cook,de,not-a-uri\n")
        bad = httpx.post(f"{base}/v1/admin/reload", headers=headers, timeout=60)
        assert bad.status_code == 422 and "line 5" in bad.json()["error"]["message"]
        first = httpx.post(f"{base}/v1/tag", json=item, headers=headers).json()["items"][0]["occupations"][0]
        assert first["source"] == "rule"  # the rules in place stay
    finally:
        server.should_exit = True
        thread.join(10)
