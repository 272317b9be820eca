"""Shared fixtures: a small real ESCO slice built from ../shared/esco, and a fresh cache home."""

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

SHARED_ESCO = Path(os.environ.get("ESCOTAG_TEST_ESCO_DIR", Path(__file__).parents[1] / "../shared/esco")).resolve()
LANGS = ("en", "de", "ar", "nl", "pt")
# Occupations the real-tagging tests look for (English preferred labels), plus a random sample.
KNOWN = {"software developer", "baker", "nurse responsible for general care", "civil engineer", "chef",
         "moving truck driver", "accountant", "electrician", "primary school teacher", "pharmacist"}
SAMPLE = 300


def _read(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _write(path: Path, fields: list[str], rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="session")
def esco_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ESCO export folder of about 300 real occupations in five languages."""
    if not (SHARED_ESCO / "occupations_en.csv").exists():
        pytest.skip(f"ESCO data not found at {SHARED_ESCO} (set ESCOTAG_TEST_ESCO_DIR)")
    out = tmp_path_factory.mktemp("esco")
    fields, en = _read(SHARED_ESCO / "occupations_en.csv")
    known = [r["conceptUri"] for r in en if r["preferredLabel"] in KNOWN]
    assert len(set(known)) == len(KNOWN), "test occupations missing from ESCO"
    others = sorted({r["conceptUri"] for r in en} - set(known))
    keep = set(known) | set(random.Random(0).sample(others, SAMPLE - len(known)))
    for lang in LANGS:
        fields, rows = _read(SHARED_ESCO / f"occupations_{lang}.csv")
        _write(out / f"occupations_{lang}.csv", fields, [r for r in rows if r["conceptUri"] in keep])
    for name in ("ISCOGroups_en.csv", "ISCOGroups_de.csv", "broaderRelationsOccPillar_en.csv"):
        fields, rows = _read(SHARED_ESCO / name)
        _write(out / name, fields, rows)
    return out


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
