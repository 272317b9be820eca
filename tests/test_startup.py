"""`escotag serve` as a newcomer runs it: `fast` answers while the plan asked for is built in the background, the
switch loses no request, and a restart with the plan built starts with it."""

import json
import random
import subprocess
import sys
import threading
import time

import httpx
import pytest

from conftest import KNOWN, base_env, free_port
from escotag.esco import load_taxonomy, write_snapshot

PLAN = "use+e5"  # a plan other than fast, whose indices and heads build in about a minute on the tiny slice
TITLES = ["Bäcker", "chef", "Krankenpfleger", "Elektriker", "accountant", "software developer"]


@pytest.fixture(scope="module")
def tiny_slice(esco_slice, tmp_path_factory):
    """60 occupations of the test slice in English and German: models En, EnV2 and De."""
    tx = load_taxonomy(esco_slice)
    known = [o.uri for o in tx.occupations if o.label() in KNOWN]
    others = sorted({o.uri for o in tx.occupations} - set(known))
    path = tmp_path_factory.mktemp("tiny") / "esco-tiny.parquet"
    write_snapshot(tx.subset(set(known) | set(random.Random(1).sample(others, 60 - len(known))), ["de"]), path)
    return path


def _serve(env: dict, log_path, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "escotag", "serve", "--port", str(port), "--encoder", PLAN,
                             *extra], env=env, stdout=log_path.open("a"), stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def _first_ready(proc: subprocess.Popen, base: str, deadline_s: float) -> dict:
    deadline = time.time() + deadline_s
    while True:
        try:
            r = httpx.get(f"{base}/ready")
            if r.status_code == 200:
                return r.json()
            assert set(r.json()) >= {"ready", "plan", "default", "building"}
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.time() < deadline, "server did not start"
        time.sleep(0.2)


def test_fast_answers_while_the_plan_builds_then_it_takes_over(tiny_slice, tmp_path):
    env = {**base_env(), "ESCOTAG_ESCO_DIR": str(tiny_slice), "ESCOTAG_HOME": str(tmp_path / "home")}
    log = tmp_path / "serve.log"
    proc, base = _serve(env, log)
    answers: list[tuple[int, int, str | None, list]] = []  # (client, status, plan, items)
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(timeout=60) as http:
            while not stop.is_set():
                r = http.post(f"{base}/v1/tag", json={"items": [{"title": t} for t in TITLES[n % 3:]], "topk": 5})
                body = r.json()
                answers.append((n, r.status_code, body.get("plan"), body.get("items")))

    try:
        first = _first_ready(proc, base, 300)
        assert (first["plan"], first["default"], first["building"]) == ("fast", PLAN, True)
        clients = [threading.Thread(target=client, args=(n,)) for n in range(3)]
        for t in clients:
            t.start()
        deadline = time.time() + 600
        while (state := httpx.get(f"{base}/ready").json())["building"]:
            assert proc.poll() is None and time.time() < deadline, "the plan was not built in time"
            time.sleep(0.5)
        assert state["plan"] == PLAN and state["error"] is None
        time.sleep(2)  # answers after the switch
        stop.set()
        for t in clients:
            t.join(60)
        models = {m["name"]: m for m in httpx.get(f"{base}/v1/models").json()}
    finally:
        stop.set()
        proc.terminate()
        proc.wait(60)

    assert answers and all(status == 200 for _, status, _, _ in answers), {s for _, s, _, _ in answers}
    for n in range(3):  # each client saw fast, then the plan, never back
        plans = [plan for c, _, plan, _ in answers if c == n]
        assert set(plans) <= {"fast", PLAN} and plans == sorted(plans, key=lambda p: p == PLAN)
    assert {plan for _, _, plan, _ in answers} == {"fast", PLAN}
    assert models["De"]["plan"] == PLAN and models["De"]["trained"]

    # after the switch, the answers of `escotag tag` with the same plan (its heads trained by the service)
    src = tmp_path / "titles.csv"
    src.write_text("id,title\n" + "".join(f"{i},{t}\n" for i, t in enumerate(TITLES)), encoding="utf-8")
    subprocess.run([sys.executable, "-m", "escotag", "tag", "-i", str(src), "-o", str(tmp_path / "out.jsonl"),
                    "--encoder", PLAN], env=env, check=True, capture_output=True)
    cli = [json.loads(line)["predictions"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    after = [(c, items) for c, _, plan, items in answers if plan == PLAN]
    assert after
    for c, items in after:
        assert [item["occupations"] for item in items] == cli[c % 3:]

    # a restart with the plan built answers with it from the start
    proc, base = _serve(env, log)
    try:
        again = _first_ready(proc, base, 120)
        assert (again["plan"], again["building"]) == (PLAN, False)
    finally:
        proc.terminate()
        proc.wait(60)
    text = log.read_text()
    assert "about" in text and "min left" in text and "switching to it" in text


def test_the_time_left_follows_each_encoders_pace():
    from escotag.service.startup import Progress

    progress = Progress([("e5", 100), ("e5", 300), ("use", 50)], heads=2)
    assert progress.seconds_left() is None  # nothing timed yet
    progress.block_done("e5", 100, 10.0)  # e5: 10 texts/s, the build's pace for use too
    assert progress.seconds_left() == 300 / 10 + 50 / 10 + 2 * Progress.HEAD_SECONDS
    progress.block_done("use", 50, 0.5)  # use: 100 texts/s
    progress.head_done(20.0)
    assert progress.seconds_left() == 300 / 10 + 1 * 20.0
