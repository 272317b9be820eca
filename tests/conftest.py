"""Shared fixtures: a small real ESCO slice of the snapshot shipped with escotag, and a fresh cache home."""

from __future__ import annotations

import csv
import glob
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
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
# The suite runs the fast plan wherever a test names none (servers and CLI runs inherit this): the default plan
# builds e5 and mpnet indices, minutes even on the slice. Tests that name a plan, and the default plan's own test
# (test_encoders.py), run theirs.
os.environ["ESCOTAG_ENCODER"] = "fast"


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
    """Index caches go to one per-session folder, never the user's; each test reads its environment afresh."""
    from escotag.settings import use_settings

    home = tmp_path_factory.getbasetemp() / "escotag-home"
    monkeypatch.setenv("ESCOTAG_HOME", str(home))
    use_settings(None)
    yield
    use_settings(None)


@pytest.fixture(scope="session")
def tagger(esco_slice: Path, tmp_path_factory: pytest.TempPathFactory):
    os.environ["ESCOTAG_HOME"] = str(tmp_path_factory.getbasetemp() / "escotag-home")
    from escotag import Tagger

    return Tagger(esco_slice, progress=False)


def base_env() -> dict[str, str]:
    """This environment without any ESCOTAG_ variable (for escotag processes the tests start)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ESCOTAG_")}


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory, esco_slice: Path) -> Path:
    """`escotag train -m De -m EnV2` run as a user would, into its own models folder."""
    out = tmp_path_factory.mktemp("models")
    env = {"ESCOTAG_ESCO_DIR": str(esco_slice),
           "ESCOTAG_HOME": str(tmp_path_factory.getbasetemp() / "escotag-home")}
    done = subprocess.run([sys.executable, "-m", "escotag", "train", "-m", "De", "-m", "EnV2", "--out", str(out),
                           "--seed", "3"], capture_output=True, text=True, env={**base_env(), **env})
    assert done.returncode == 0, done.stderr
    assert "De: trained on de+en" in done.stderr and "EnV2: trained on en" in done.stderr
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server (Debian's package) in a fresh data folder on a free loopback port, stopped at the
    end of the session; yields the URL of an empty database."""
    pg_ctl = shutil.which("pg_ctl") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1:]), None)
    if pg_ctl is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    import psycopg

    bindir = Path(pg_ctl).resolve().parent
    folder = Path(tempfile.mkdtemp(prefix="escotag-pg-"))
    # it refuses to run as root; runuser lives in sbin, which a minimal PATH leaves out
    runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin") or "runuser"
    as_postgres = [runuser, "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()
    subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-o",
                    f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    try:
        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE escotag_test")
        yield f"postgresql://postgres@127.0.0.1:{port}/escotag_test"
    finally:
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """A real headless Chromium (Debian's), driven by Playwright."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def serve(app):
    """Run an ASGI app with uvicorn on a free loopback port; returns (server, thread, base URL)."""
    port = free_port()
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
