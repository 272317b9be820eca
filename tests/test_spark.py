"""Spark: tag_dataframe and `escotag spark-tag` on a real local[2] Spark, answers identical to `escotag tag`."""

import json
import os
import subprocess
import sys

import pytest

from conftest import SHARED, free_port

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[dev]' brings it)")

TITLES = ["Bäcker", "software developer", "Registered Nurse", "محاسب", "Elektricien", "chef", "pharmacist",
          "Verpleegkundige", "accountant", "", "Koch (m/w/d)", "electrician apprentice", "enfermeira"]


@pytest.fixture(scope="module")
def spark(esco_slice, tmp_path_factory):
    from pyspark.sql import SparkSession

    # read by the Python workers Spark starts (they inherit the driver's environment)
    saved = {k: os.environ.get(k) for k in ("ESCOTAG_ESCO_DIR", "ESCOTAG_HOME", "PYSPARK_PYTHON")}
    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers need the interpreter escotag is installed in
    os.environ["ESCOTAG_ESCO_DIR"] = str(esco_slice)
    os.environ["ESCOTAG_HOME"] = str(tmp_path_factory.getbasetemp() / "escotag-home")
    session = (SparkSession.builder.master("local[2]").appName("escotag-tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate())
    yield session
    session.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_tag_dataframe_answers_as_the_cli(spark, tmp_path, esco_slice):
    from escotag.spark import tag_dataframe

    rows = [{"id": f"r{i}", "title": TITLES[i % len(TITLES)]} for i in range(300)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    env = {**os.environ, "ESCOTAG_ESCO_DIR": str(esco_slice)}
    done = subprocess.run([sys.executable, "-m", "escotag", "tag", "-i", str(src), "-o", str(tmp_path / "out.jsonl")],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    cli = {r["id"]: r for r in map(json.loads, (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines())}

    df = spark.createDataFrame(rows).repartition(3)
    tagged = {r["id"]: r for r in tag_dataframe(df, id_col="id").collect()}
    assert len(tagged) == len(rows) and set(tagged["r0"].asDict()) == {"id", "title", "occupations"}
    for rid, row in tagged.items():
        if not row["title"]:
            assert row["occupations"] == [] and rid not in cli
            continue
        # the same Prediction fields and values as the CLI (scores do not depend on the batch), and the model
        occupations = [o.asDict() for o in row["occupations"]]
        assert {o.pop("model") for o in occupations} == {cli[rid]["model"]}
        assert occupations == cli[rid]["predictions"]


def test_bad_arguments_fail_before_any_job(spark):
    from escotag import ConfigError
    from escotag.spark import tag_dataframe

    df = spark.createDataFrame([{"title": "chef"}])
    with pytest.raises(ConfigError, match="'job' is not a column"):
        tag_dataframe(df, title_col="job")
    with pytest.raises(ConfigError, match="unknown model"):
        tag_dataframe(df, model="Klingon")


def _cli_answers(rows, tmp_path, env):
    src = tmp_path / "cli-in.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "escotag", "tag", "-i", str(src), "-o", str(tmp_path / "cli.jsonl")],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return {r["id"]: r for r in map(json.loads, (tmp_path / "cli.jsonl").read_text(encoding="utf-8").splitlines())}


def _spark_tag(src, dst, master, env):
    return subprocess.run([sys.executable, "-m", "escotag", "spark-tag", str(src), str(dst), "--master", master,
                           "--id-col", "id", "--partitions", "3"], capture_output=True, text=True, env=env)


def _same_as_cli(dst, cli, n_rows):
    import pyarrow.parquet as pq

    tagged = pq.read_table(dst).to_pylist()
    assert len(tagged) == n_rows
    for row in tagged:
        expected = cli.get(row["id"], {"predictions": []})["predictions"]
        assert [{k: v for k, v in o.items() if k != "model"} for o in row["occupations"]] == expected


def _titles() -> list[str]:
    """The first 2,000 shared real vacancy titles, or, without ../shared, 400 rows of TITLES."""
    import csv

    path = SHARED / "eval/postings/jobbert_val_titles_en.csv"
    if not path.exists():
        return [TITLES[i % len(TITLES)] for i in range(400)]
    with path.open(encoding="utf-8") as f:
        return [row["title"] for _, row in zip(range(2000), csv.DictReader(f), strict=False)]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, esco_slice, spark):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("spark-cli")
    rows = [{"id": f"r{i}", "title": t} for i, t in enumerate(_titles())]
    pq.write_table(pa.Table.from_pylist(rows), folder / "in.parquet")
    env = {**os.environ, "ESCOTAG_ESCO_DIR": str(esco_slice)}
    return folder, rows, env, _cli_answers(rows, folder, env)


def test_spark_tag_cli_on_local_spark(dataset):
    folder, rows, env, cli = dataset
    done = _spark_tag(folder / "in.parquet", folder / "out.parquet", "local[2]", env)
    assert done.returncode == 0, done.stderr[-3000:]
    _same_as_cli(folder / "out.parquet", cli, len(rows))
    again = _spark_tag(folder / "in.parquet", folder / "out.parquet", "local[2]", env)
    assert again.returncode == 2 and "already exists; --overwrite replaces it" in again.stderr


def test_spark_tag_on_a_standalone_cluster(dataset, request, tmp_path):
    """A master and a worker on loopback, started and stopped here; the job runs on the worker's executor."""
    if request.config.getoption("--skip-cluster"):
        pytest.skip("--skip-cluster given: the standalone Spark cluster test did not run")
    import time
    from pathlib import Path

    folder, rows, env, cli = dataset
    spark_class = str(Path(pyspark.__file__).parent / "bin" / "spark-class")
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("master", "worker")}
    master = subprocess.Popen([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", "0"], env=env, stdout=logs["master"],
                              stderr=subprocess.STDOUT)
    worker = subprocess.Popen([spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                               "--cores", "2", "--memory", "2g", "--webui-port", "0"],
                              env={**env, "PYSPARK_PYTHON": sys.executable}, stdout=logs["worker"],
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "Successfully registered with master" not in (tmp_path / "worker.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-2000:]
            assert worker.poll() is None and master.poll() is None
            time.sleep(0.5)
        done = _spark_tag(folder / "in.parquet", tmp_path / "out.parquet", url, env)
        assert done.returncode == 0, done.stderr[-3000:]
        _same_as_cli(tmp_path / "out.parquet", cli, len(rows))
        assert "Asked to launch executor" in (tmp_path / "worker.log").read_text()
    finally:
        for proc in (worker, master):
            proc.terminate()
            proc.wait(timeout=60)
        for log in logs.values():
            log.close()


def test_tag_dataframe_applies_rules_as_python_does(spark, esco_slice, tmp_path):
    from escotag import Tagger
    from escotag.spark import tag_dataframe

    tagger = Tagger(esco_slice, progress=False)
    uri = {o.label(): o.uri for o in tagger.taxonomy.occupations}
    rules = tmp_path / "rules.csv"
    rules.write_text("kind,pattern,language,occupation_uri\n"
                     f"title,Kundenheld,,{uri['baker']}\nexclude,developer,,{uri['software developer']}\n"
                     f"label,crumb wizard,en,{uri['baker']}\n", encoding="utf-8")
    titles = ["Kundenheld", "software developer", "Senior Crumb Wizard", "chef"]
    expected = Tagger(esco_slice, progress=False, rules=rules).tag(titles, "EnV2", 5)
    rows = tag_dataframe(spark.createDataFrame([{"title": t} for t in titles]), model="EnV2", rules=rules).collect()
    answers = {r["title"]: [(o["uri"], o["source"]) for o in r["occupations"]] for r in rows}
    assert [answers[t] for t in titles] == [[(p.uri, p.source) for p in preds] for preds in expected]
    assert answers["Kundenheld"][0] == (uri["baker"], "rule") and answers["Senior Crumb Wizard"][0][0] == uri["baker"]
