"""Batch runs that survive a crash: a real `escotag tag` process killed with SIGKILL and resumed ends with the
file an uninterrupted run writes; an existing output is never overwritten silently."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

TITLES = ["Bäcker", "software developer", "Registered Nurse", "محاسب", "Elektricien", "chef", "pharmacist",
          "Verpleegkundige", "accountant", "", "Koch (m/w/d)", "electrician apprentice", "enfermeira"]
ROWS = 2000
BATCH = "20"


@pytest.fixture
def cli(esco_slice, monkeypatch):
    monkeypatch.setenv("ESCOTAG_ESCO_DIR", str(esco_slice))

    def _args(*args):
        return [sys.executable, "-m", "escotag", "tag", *args]

    def _run(*args):
        return subprocess.run(_args(*args), capture_output=True, text=True)
    _run.args = _args
    return _run


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "in.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "title"])
        w.writerows((f"r{i}", TITLES[i % len(TITLES)]) for i in range(ROWS))
    return path


def _kill_mid_way(args, checkpoint, rows=400):
    """Start a real `escotag tag` and SIGKILL it once its checkpoint says it has read at least this many rows."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads(checkpoint.read_text())["rows_read"] >= rows:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _content(path):
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    return path.read_bytes()


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_killed_run_resumes_into_the_uninterrupted_output(tmp_path, cli, src, fmt):
    reference, out = tmp_path / f"reference.{fmt}", tmp_path / f"out.{fmt}"
    done = cli("-i", str(src), "-o", str(reference), "--batch-size", BATCH)
    assert done.returncode == 0, done.stderr

    checkpoint = tmp_path / f"out.{fmt}.escotag-checkpoint.json"
    _kill_mid_way(cli.args("-i", str(src), "-o", str(out), "--batch-size", BATCH), checkpoint)
    state = json.loads(checkpoint.read_text())
    assert 400 <= state["rows_read"] < ROWS and state["rows_read"] % int(BATCH) == 0

    again = cli("-i", str(src), "-o", str(out), "--batch-size", BATCH)  # no --resume: refused, nothing touched
    assert again.returncode == 2 and "unfinished run (--resume continues it)" in again.stderr
    other = cli("-i", str(src), "-o", str(out), "--batch-size", BATCH, "-k", "3", "--resume")
    assert other.returncode == 2 and "other settings (topk 5 then, 3 now)" in other.stderr

    resumed = cli("-i", str(src), "-o", str(out), "--batch-size", BATCH, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed after input row {state['rows_read']}" in resumed.stderr
    skipped = ROWS // len(TITLES) + (1 if ROWS % len(TITLES) > TITLES.index("") else 0)
    assert f"tagged {ROWS - skipped} rows" in resumed.stderr and f"skipped {skipped}" in resumed.stderr
    assert _content(out) == _content(reference)
    assert not checkpoint.exists() and not (tmp_path / f"out.{fmt}.parts").exists()


def test_an_existing_output_is_never_overwritten_silently(tmp_path, cli, src):
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n", encoding="utf-8")
    refused = cli("-i", str(src), "-o", str(out))
    assert refused.returncode == 2 and "already exists; --overwrite replaces it" in refused.stderr
    assert out.read_text(encoding="utf-8") == "precious\n"
    nothing = cli("-i", str(src), "-o", str(out), "--resume")
    assert nothing.returncode == 2 and "complete (no checkpoint beside it): nothing to resume" in nothing.stderr
    both = cli("-i", str(src), "-o", str(out), "--resume", "--overwrite")
    assert both.returncode != 0 and "give one" in both.stderr
    replaced = cli("-i", str(src), "-o", str(out), "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == ROWS - ROWS // len(TITLES) - 1 and json.loads(lines[0])["id"] == "r0"


def test_a_resumed_run_queues_every_unsure_row_once(tmp_path, cli, src, models_dir, monkeypatch):
    from escotag.review import ReviewStore

    database = f"sqlite:///{tmp_path / 'review.sqlite3'}"
    monkeypatch.setenv("ESCOTAG_MODELS", str(models_dir))
    monkeypatch.setenv("ESCOTAG_DATABASE_URL", database)
    out, checkpoint = tmp_path / "out.jsonl", tmp_path / "out.jsonl.escotag-checkpoint.json"
    args = ("-i", str(src), "-o", str(out), "--batch-size", BATCH, "-m", "EnV2", "--review-below", "1")
    _kill_mid_way(cli.args(*args), checkpoint)
    before = ReviewStore.open(database).counts()["open"]
    # rows after the last checkpoint may be queued too: the resumed run must not queue them again
    assert before >= json.loads(checkpoint.read_text())["tagged"] > 300
    resumed = cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    tagged = sum(1 for _ in out.read_text(encoding="utf-8").splitlines())
    items = ReviewStore.open(database).list(None, limit=10_000)
    assert len(items) == tagged and len({i["external_id"] for i in items}) == tagged
    assert f"{tagged - before} queued for review" in resumed.stderr
