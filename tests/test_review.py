"""The review loop end to end, on SQLite and on a real PostgreSQL server: tag with review_below, decide over HTTP
(a concurrent double decision gets 409), restart, export, retrain with --labelled, and the retrained model answers
the corrected titles with the decided occupations."""

import csv
import subprocess
import sys
import threading

import httpx
import pytest

from conftest import base_env, serve
from escotag import Tagger
from escotag.review import ConflictError, ReviewStore
from escotag.service import Settings, create_app

# English titles the trained EnV2 of the slice is unsure of
TITLES = ["bread and cake maker", "care assistant nights", "site engineer roads", "kitchen lead", "bookkeeper",
          "pharmacy manager"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'review.sqlite3'}"
    url = request.getfixturevalue("postgres_url")
    store = ReviewStore.open(url)
    with store.engine.begin() as conn:  # one server for the session: every test starts from an empty queue
        conn.exec_driver_sql("DELETE FROM review_items")
    return url


def start(esco_slice, models, database):
    tagger = Tagger(esco_slice, progress=False, models=models, rules=None)
    return serve(create_app(tagger, Settings(database_url=database)))


def test_review_loop_end_to_end(esco_slice, models_dir, database, tmp_path, tmp_path_factory):
    server, thread, base = start(esco_slice, models_dir, database)
    try:
        tagged = httpx.post(f"{base}/v1/tag", timeout=60, json={
            "items": [{"id": f"p{i}", "title": t} for i, t in enumerate(TITLES)], "model": "EnV2", "topk": 5,
            "review_below": 1.0}).json()["items"]
        queued = [i for i in tagged if i["review_id"] is not None]
        assert len(queued) == len(TITLES) and all(i["occupations"][0]["confidence"] < 1.0 for i in tagged)
        sure = httpx.post(f"{base}/v1/tag", json={"items": [{"title": "pharmacist"}], "model": "EnV2",
                                                   "review_below": 0.05}).json()["items"][0]
        assert sure["review_id"] is None and sure["occupations"][0]["confidence"] >= 0.05

        page = httpx.get(f"{base}/v1/review", params={"status": "open", "limit": 50}).json()
        assert page["counts"] == {"open": len(TITLES), "decided": 0}
        first = page["items"][0]
        assert (first["id"], first["external_id"], first["title"], first["model"], first["language"]) == \
            (queued[0]["review_id"], queued[0]["id"], TITLES[int(queued[0]["id"][1:])], "EnV2", "en")
        assert [c["uri"] for c in first["candidates"]] == [o["uri"] for o in queued[0]["occupations"]]
        assert all(0 < c["confidence"] < 1 for c in first["candidates"])

        # coders correct three items with a candidate other than the model's first, and find none fits one
        corrected = {}
        for item in page["items"][:3]:
            choice = item["candidates"][2]["uri"]
            r = httpx.post(f"{base}/v1/review/{item['id']}", json={"uri": choice, "reviewer": "ana"})
            assert r.status_code == 200 and r.json()["decided_uri"] == choice and r.json()["reviewer"] == "ana"
            corrected[item["title"]] = choice
        nothing = page["items"][3]
        assert httpx.post(f"{base}/v1/review/{nothing['id']}", json={"uri": None}).json()["status"] == "decided"

        # two coders decide the same item at once: one wins, the other gets 409 and changes nothing
        contested = page["items"][4]["id"]
        statuses: list[int] = []
        barrier = threading.Barrier(2)

        def decide(reviewer: str) -> None:
            barrier.wait()
            statuses.append(httpx.post(f"{base}/v1/review/{contested}", timeout=30, json={
                "uri": page["items"][4]["candidates"][0]["uri"], "reviewer": reviewer}).status_code)

        coders = [threading.Thread(target=decide, args=(name,)) for name in ("bo", "cy")]
        for c in coders:
            c.start()
        for c in coders:
            c.join(30)
        assert sorted(statuses) == [200, 409]
        assert httpx.get(f"{base}/v1/review/{contested}").json()["reviewer"] in ("bo", "cy")
        assert httpx.post(f"{base}/v1/review/999999", json={"uri": None}).status_code == 404
        bad = httpx.post(f"{base}/v1/review/{contested}", json={"uri": "http://example.org/x"})
        assert bad.status_code == 422
    finally:
        server.should_exit = True
        thread.join(10)

    # decisions survive a restart of the service
    server, thread, base = start(esco_slice, models_dir, database)
    try:
        decided = httpx.get(f"{base}/v1/review", params={"status": "decided"}).json()["items"]
        assert {d["title"]: d["decided_uri"] for d in decided if d["reviewer"] == "ana"} == corrected
        assert all(d["decided_at"] for d in decided)
    finally:
        server.should_exit = True
        thread.join(10)

    # export, retrain with --labelled, and the corrected titles get their decided occupations
    env = {**base_env(), "ESCOTAG_ESCO_DIR": str(esco_slice), "ESCOTAG_DATABASE_URL": database,
           "ESCOTAG_HOME": str(tmp_path_factory.getbasetemp() / "escotag-home")}
    export = tmp_path / "decided.csv"
    done = subprocess.run([sys.executable, "-m", "escotag", "review", "export", str(export)], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with export.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["id", "title", "description", "gold_uri"]
    assert {r["title"]: r["gold_uri"] for r in rows if r["gold_uri"]} == {
        **corrected, **{d["title"]: d["decided_uri"] for d in decided if d["reviewer"] in ("bo", "cy")}}
    assert "" in {r["gold_uri"] for r in rows}  # the item no occupation fits
    retrained = tmp_path / "models"
    done = subprocess.run([sys.executable, "-m", "escotag", "train", "-m", "EnV2", "--labelled", str(export),
                           "--out", str(retrained), "--seed", "3"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    before = Tagger(esco_slice, progress=False, models=models_dir)
    after = Tagger(esco_slice, progress=False, models=retrained)
    for title, uri in corrected.items():
        assert before.tag([title], "EnV2", 1)[0][0].uri != uri
        assert after.tag([title], "EnV2", 1)[0][0].uri == uri


def test_store_keys_and_conflicts(database):
    store = ReviewStore.open(database)
    entry = {"origin": "file", "origin_key": "run1:7", "external_id": "7", "title": "chef", "description": "",
             "language": "en", "model": "EnV2", "candidates": [], "top_confidence": 0.0}
    first = store.add([entry, {**entry, "origin_key": "run1:8"}])
    assert all(isinstance(i, int) for i in first)
    assert store.add([entry]) == [None]  # a resumed run queues a row once
    store.decide(first[0], None, "ana")
    with pytest.raises(ConflictError, match="decided already by ana"):
        store.decide(first[0], None, "bo")
    assert store.counts() == {"open": 1, "decided": 1}
