"""Load test (make loadtest): a real `escotag serve` on loopback, driven by wrk. Prints a JSON summary.

Single-title requests from 16 connections for 30 s, from 4 and from 1; single postings (title + description) from
4 connections; then 64-posting batches. The server runs the encoder plan in ESCOTAG_ENCODER (`make loadtest
ENCODER=accurate`).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SHARED = Path(os.environ.get("ESCOTAG_SHARED", "../shared"))
DURATION = os.environ.get("LOADTEST_SECONDS", "30")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _lua(bodies: list[str], path: Path) -> Path:
    script = path / f"bodies{len(bodies)}.lua"
    quoted = ",\n".join(json.dumps(b, ensure_ascii=False) for b in bodies)
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"local bodies = {{\n{quoted}\n}}\nlocal i = 0\n"
        "request = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend\n",
        encoding="utf-8",
    )
    return script


def _wrk(url: str, script: Path, connections: int, seconds: str) -> dict:
    out = subprocess.run(
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "--latency",
         "-s", str(script), url],  # wrk's default 2 s timeout would drop (and hide) slow answers
        capture_output=True, text=True, check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms("50"), "p99_ms": ms("99"),
        "errors": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1).strip() if socket_errors else "none",
    }


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("loadtest needs wrk (Debian: apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="escotag-load-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "escotag", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 3600
        while True:  # until the plan asked for answers (fast stands in while it is built)
            try:
                with urllib.request.urlopen(f"{base}/ready", timeout=2) as r:
                    state = json.load(r)
                    if state["plan"] == state["default"] and not state["building"]:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                sys.exit("server did not become ready")
            time.sleep(0.5)
        with (SHARED / "eval/postings/jobbert_val_titles_en.csv").open(encoding="utf-8") as f:
            titles = [r["title"] for r in csv.DictReader(f)][:500]
        with (SHARED / "eval/postings/aida_genhard_en.csv").open(encoding="utf-8") as f:
            postings = [{"title": r["title"], "description": r["description"]} for r in csv.DictReader(f)]
        single = _lua([json.dumps({"items": [{"title": t}], "model": "auto", "topk": 5}) for t in titles], work)
        one_posting = _lua([json.dumps({"items": [p], "model": "EnV2", "topk": 5}) for p in postings[:200]], work)
        batch = _lua([json.dumps({"items": postings[i : i + 64], "model": "EnV2", "topk": 5})
                      for i in range(0, 448, 64)], work)
        url = f"{base}/occupations-detection"
        _wrk(url, single, 4, "3")  # warm-up
        out: dict = {"plan": state["plan"], "rss_mb_before": _rss_mb(server.pid)}
        out["titles_c16"] = _wrk(url, single, 16, DURATION)
        out["titles_c4"] = _wrk(url, single, 4, "20")
        out["titles_c1"] = _wrk(url, single, 1, "10")
        out["postings_c4"] = _wrk(url, one_posting, 4, "20")
        b = _wrk(url, batch, 2, "20")
        out["batch64_postings"] = {**b, "items_per_s": b["requests_per_s"] * 64}
        out["rss_mb_after"] = _rss_mb(server.pid)
        print(json.dumps(out, indent=1))
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
