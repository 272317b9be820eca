"""Batch tagging of files through the real CLI: CSV, JSONL and Parquet, bad rows reported, order kept."""

import csv
import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

TITLES = ["Bäcker", "software developer", "", "محاسب", "Elektricien"]


@pytest.fixture
def run(esco_slice, monkeypatch):
    monkeypatch.setenv("ESCOTAG_ESCO_DIR", str(esco_slice))

    def _run(*args):
        return subprocess.run([sys.executable, "-m", "escotag", *args], capture_output=True, text=True)
    return _run


def test_csv_to_jsonl_reports_bad_row(tmp_path, run):
    src = tmp_path / "in.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["ref", "job", "text"])
        for i, t in enumerate(TITLES):
            w.writerow([f"r{i}", t, "some text"])
    out = run("tag", "-i", str(src), "-o", str(tmp_path / "out.jsonl"), "--title-col", "job",
              "--description-col", "text", "--id-col", "ref", "-k", "3", "--batch-size", "2")
    assert out.returncode == 0, out.stderr
    assert "row 3: empty or missing 'job'; skipped" in out.stderr
    assert "tagged 4 rows" in out.stderr and "skipped 1" in out.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["r0", "r1", "r3", "r4"]
    assert [r["model"] for r in rows] == ["De", "EnV2", "Ar", "Nl"]
    assert rows[0]["predictions"][0]["label_en"] == "baker" and len(rows[0]["predictions"]) == 3

    strict = run("tag", "-i", str(src), "-o", str(tmp_path / "o2.jsonl"), "--title-col", "job", "--strict")
    assert strict.returncode == 2 and "row 3" in strict.stderr


def test_batches_tagged_at_once_keep_their_order_and_pythons_lists(tmp_path, run, tagger):
    from escotag.batch.tagging import MAX_WORKERS, workers
    from escotag.settings import usable_cores

    # fast: one batch per core (up to MAX_WORKERS), each on one BLAS thread
    assert workers(tagger) == min(usable_cores(), MAX_WORKERS)
    titles = ["Bäcker", "software developer", "محاسب", "Elektricien", "Krankenpfleger", "civil engineer", "chef",
              "Apotheker", "Leraar basisonderwijs", "contabilista", "truck driver", "Softwareentwickler",
              "Verpleegkundige", "electrician", "padeiro", "Bauingenieur"]
    src = tmp_path / "in.csv"
    src.write_text("title\n" + "".join(f"{t}\n" for t in titles), encoding="utf-8")
    out = run("tag", "-i", str(src), "-o", str(tmp_path / "out.jsonl"), "-k", "3", "--batch-size", "3")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    # a title's scores do not depend on its batch (exact products, encoders that give a text the same bits in any
    # batch: test_block_cache.py, test_encoders.py), so Python tags them all at once
    python = tagger.tag_with_models(titles, topk=3)
    assert [r["title"] for r in rows] == titles
    assert [(r["model"], [(p["uri"], p["score"]) for p in r["predictions"]]) for r in rows] == \
        [(t.model, [(p.uri, p.score) for p in t.predictions]) for t in python]


def test_jsonl_bad_json_and_parquet_roundtrip(tmp_path, run):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "title": "chef"}\nnot json\n{"id": 2, "title": "pharmacist"}\n', encoding="utf-8")
    out = run("tag", "-i", str(src), "-o", str(tmp_path / "out.parquet"), "-m", "en", "-k", "2")
    assert out.returncode == 0, out.stderr
    assert "row 2: invalid JSON" in out.stderr
    table = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["id"] for r in table] == ["1", "2"]
    assert table[1]["uri_1"].startswith("http://data.europa.eu/esco/occupation/")
    assert set(table[0]) >= {"uri_2", "label_2", "isco_code_2", "score_2"}

    pq.write_table(pa.table({"title": ["Bäcker", "chef"]}), tmp_path / "in.parquet")
    out = run("tag", "-i", str(tmp_path / "in.parquet"), "-o", str(tmp_path / "out.csv"), "-k", "1")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader((tmp_path / "out.csv").open(encoding="utf-8")))
    assert [r["title"] for r in rows] == ["Bäcker", "chef"] and [r["id"] for r in rows] == ["1", "2"]


def test_unknown_format_and_missing_input(tmp_path, run):
    out = run("tag", "-i", str(tmp_path / "x.csv"), "-o", str(tmp_path / "y.csv"))
    assert out.returncode == 2 and "no such file" in out.stderr
    out = run("tag", "-i", str(tmp_path / "x.xls"), "-o", str(tmp_path / "y.csv"))
    assert out.returncode == 2 and "unknown file type" in out.stderr
