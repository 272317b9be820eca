"""Build the image and check that a container answers the old service's curl example with the default plan
within 60 s of its start (make docker-test). Standard library only; DOCKER picks podman (default) or docker."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request

DOCKER = os.environ.get("DOCKER", "podman")
IMAGE = os.environ.get("IMAGE", "escotag:test")
BASE = os.environ.get("BASE", "python:3.11-slim")
PORT = int(os.environ.get("PORT", "5099"))
# podman with runc here sets these limits explicitly or fails to start a container
RUN_FLAGS = shlex.split(os.environ.get("RUN_FLAGS", ""))
LIMIT_S = 60
EXAMPLE = {"items": [{"title": "مصمم - Kitchen Designer (AutoCAD)", "description": ""}], "model": "Ar", "topk": 5}


def docker(*args: str, capture: bool = False) -> str:
    done = subprocess.run([DOCKER, *args], check=True, text=True, stdout=subprocess.PIPE if capture else None)
    return (done.stdout or "").strip()


def call(path: str, body: dict | None = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None


def main() -> int:
    start = time.monotonic()
    if os.environ.get("NO_BUILD") != "1":  # NO_BUILD=1: check the image already built
        build = ["build", "--format", "docker"] if DOCKER.endswith("podman") else ["build"]
        docker(*build, *RUN_FLAGS, "--build-arg", f"BASE={BASE}", "-t", IMAGE, ".")
        print(f"image {IMAGE}: built in {(time.monotonic() - start) / 60:.1f} min", flush=True)
    size = int(docker("image", "inspect", IMAGE, "--format", "{{.Size}}", capture=True))
    print(f"image {IMAGE}: {size / 1e9:.2f} GB", flush=True)

    started = time.monotonic()
    container = docker("run", "-d", "--rm", *RUN_FLAGS, "-p", f"127.0.0.1:{PORT}:5000", IMAGE, capture=True)
    try:
        while time.monotonic() - started < LIMIT_S:
            status, uris = call("/occupations-detection", EXAMPLE)
            if status == 200:
                break
            time.sleep(0.5)
        else:
            print(f"FAIL: no answer to the curl example within {LIMIT_S} s", file=sys.stderr)
            return 1
        answered = time.monotonic() - started
        _, ready = call("/ready")
        _, tagged = call("/v1/tag", {"items": [{"title": "Bäckerin"}], "model": "auto", "topk": 3})
        print(f"first answer {answered:.1f} s after the container's start: {uris}")
        print(f"/ready: {ready}")
        print(f"/v1/tag: {tagged}")
        problems = []
        if not (isinstance(uris, list) and len(uris) == 5 and all(u.startswith("http://data.europa.eu/esco/")
                                                                   for u in uris)):
            problems.append(f"the curl example answered {uris!r}, not 5 ESCO URIs")
        if not (isinstance(ready, dict) and ready.get("plan") == ready.get("default") and not ready.get("building")):
            problems.append(f"/ready says {ready!r}: the default plan is not the one answering")
        if not (isinstance(tagged, dict) and tagged["items"][0]["model"] == "De"
                and "bak" in tagged["items"][0]["occupations"][0]["label_en"]):
            problems.append(f"/v1/tag answered {tagged!r}, not a baker from the German model")
        for problem in problems:
            print(f"FAIL: {problem}", file=sys.stderr)
        if not problems:
            print(f"ok: the container answered with the default plan {answered:.1f} s after its start")
        return 1 if problems else 0
    finally:
        subprocess.run([DOCKER, "stop", "-t", "5", container], stdout=subprocess.DEVNULL, check=False)


if __name__ == "__main__":
    sys.exit(main())
