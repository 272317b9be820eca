"""Spark benchmark (make bench-spark): real vacancy titles (the shared jobbert ones, repeated) Parquet -> Parquet
through `tag_dataframe` on local[1] and local[2], against `escotag tag` on the same file. Prints a JSON summary.

Start-up is reported apart: the CLI's on a one-row file, Spark's as a one-row job on a fresh session (JVM, Python
worker, Tagger load). Peak RSS is the largest Python worker's. Run it on an idle machine after `escotag build`.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SHARED = Path(os.environ.get("ESCOTAG_SHARED", "../shared"))
N_ROWS = int(os.environ.get("BENCH_SPARK_ROWS", "200000"))


def _worker_rss_mb() -> float:
    """The largest resident set among this machine's PySpark Python workers."""
    best = 0.0
    for proc in Path("/proc").iterdir():
        try:
            if b"pyspark" not in (proc / "cmdline").read_bytes() or not proc.name.isdigit():
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    best = max(best, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return best


class RssWatch(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.running = 0.0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, _worker_rss_mb())
            time.sleep(0.5)


def _spark(cores: int, src: Path, one: Path, out: Path) -> dict:
    from pyspark.sql import SparkSession

    from escotag.spark import tag_dataframe

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    started = time.perf_counter()
    spark = (SparkSession.builder.master(f"local[{cores}]").appName("escotag-bench")
             .config("spark.ui.enabled", "false").getOrCreate())
    watch = RssWatch()
    watch.start()
    try:
        tag_dataframe(spark.read.parquet(str(one))).write.mode("overwrite").parquet(str(out / "one"))
        startup = time.perf_counter() - started
        df = spark.read.parquet(str(src)).repartition(cores * 4)
        began = time.perf_counter()
        tag_dataframe(df).write.mode("overwrite").parquet(str(out / f"cores{cores}"))
        seconds = time.perf_counter() - began
    finally:
        watch.running = False
        spark.stop()
    return {"startup_seconds": round(startup, 1), "seconds": round(seconds, 1),
            "rows_per_s": round(N_ROWS / seconds, 1), "rows_per_s_per_core": round(N_ROWS / seconds / cores, 1),
            "peak_worker_rss_mb": round(watch.peak)}


def main() -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    work = Path(tempfile.mkdtemp(prefix="escotag-bench-spark-"))
    with (SHARED / "eval/postings/jobbert_val_titles_en.csv").open(encoding="utf-8") as f:
        titles = [r["title"] for r in csv.DictReader(f)]
    titles = (titles * (N_ROWS // len(titles) + 1))[:N_ROWS]
    src, one = work / "titles.parquet", work / "one.parquet"
    pq.write_table(pa.table({"id": [str(i) for i in range(N_ROWS)], "title": titles}), src)
    pq.write_table(pa.table({"id": ["0"], "title": ["chef"]}), one)

    def cli(path: Path) -> float:
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "escotag", "tag", "-i", str(path), "-o", str(work / "cli.parquet"),
                        "--overwrite"], check=True, stderr=subprocess.DEVNULL)
        return time.perf_counter() - began

    cli_startup, cli_total = cli(one), cli(src)
    out: dict = {"rows": N_ROWS, "cpus": os.cpu_count(),
                 "cli": {"startup_seconds": round(cli_startup, 1),
                         "rows_per_s": round(N_ROWS / (cli_total - cli_startup), 1)}}
    out["cli"]["rows_per_s_per_core"] = round(out["cli"]["rows_per_s"] / (os.cpu_count() or 1), 1)
    for cores in (1, 2):
        out[f"spark_local_{cores}"] = _spark(cores, src, one, work)
        out[f"spark_local_{cores}"]["per_core_vs_cli_per_core"] = round(
            out[f"spark_local_{cores}"]["rows_per_s_per_core"] / out["cli"]["rows_per_s_per_core"], 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
