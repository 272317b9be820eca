"""Shared fixtures: a small real ESCO slice of the snapshot shipped with escotag, and a fresh cache home."""

from __future__ import annotations

import csv
import os
import random
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from escotag.esco import load_taxonomy, write_snapshot

LANGS = ["en", "de", "ar", "nl", "pt"]
# Occupations the real-tagging tests look for (English preferred labels), plus a random sample.
KNOWN = {"software developer", "baker", "nurse responsible for general care", "civil engineer", "chef",
         "moving truck driver", "accountant", "electrician", "primary school teacher", "pharmacist"}
SAMPLE = 300
SHARED = Path(os.environ.get("ESCOTAG_SHARED", Path(__file__).parents[1] / "../shared")).resolve()


def write_labelled(path: Path, rows: list[list[str]], acceptable: bool = False) -> Path:
    """A labelled postings CSV (id,title,description,gold_uri[,acceptable_uris]) with these rows."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "title", "description", "gold_uri", *(["acceptable_uris"] if acceptable else [])])
        writer.writerows(rows)
    return path


def shared_or_skip(relative: str) -> Path:
    """A path under ../shared (ESCOTAG_SHARED), or skip the test saying what is missing."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} not found: this test needs the shared data (set ESCOTAG_SHARED)")
    return path


@pytest.fixture(scope="session")
def esco_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A packed ESCO snapshot of about 300 real occupations in five languages, cut from the embedded one."""
    full = load_taxonomy("embedded")
    known = [o.uri for o in full.occupations if o.label() in KNOWN]
    assert len(set(known)) == len(KNOWN), "test occupations missing from ESCO"
    others = sorted({o.uri for o in full.occupations} - set(known))
    keep = set(known) | set(random.Random(0).sample(others, SAMPLE - len(known)))
    path = tmp_path_factory.mktemp("esco") / "esco-slice.parquet"
    write_snapshot(full.subset(keep, LANGS), path)
    return path


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Index caches go to one per-session folder, never the user's."""
    home = tmp_path_factory.getbasetemp() / "escotag-home"
    monkeypatch.setenv("ESCOTAG_HOME", str(home))


@pytest.fixture(scope="session")
def tagger(esco_slice: Path, tmp_path_factory: pytest.TempPathFactory):
    os.environ["ESCOTAG_HOME"] = str(tmp_path_factory.getbasetemp() / "escotag-home")
    from escotag import Tagger

    return Tagger(esco_slice, progress=False)


def serve(app):
    """Run an ASGI app with uvicorn on a free loopback port; returns (server, thread, base URL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 120
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--skip-cluster", action="store_true",
                     help="Skip the test that starts a standalone Spark cluster on loopback (CI runs it).")
