"""``escotag spark-tag``: tag a Parquet, CSV or JSONL dataset on a Spark cluster (or locally) into a new dataset.

The file also runs as a script, which is what ``spark-submit`` takes (absolute imports for that reason).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from escotag.errors import ConfigError

FORMATS = {"parquet": "parquet", "csv": "csv", "json": "json", "jsonl": "json", "ndjson": "json"}


def _format(path: str, given: str | None) -> str:
    name = (given or path.rstrip("/").rsplit(".", 1)[-1]).lower()
    if name not in FORMATS:
        raise ConfigError(f"{path}: cannot tell the format from its name; give --format parquet, csv or jsonl")
    return FORMATS[name]


def spark_tag(
    input: Annotated[str, typer.Argument(help="Dataset to tag: a path or any URL the cluster reads (s3a://, …).")],
    output: Annotated[str, typer.Argument(help="Where to write the tagged dataset (a folder of part files).")],
    master: Annotated[str | None, typer.Option(help="Spark master URL (default: spark-submit's, else local[*]).")]
    = None,
    partitions: Annotated[int | None, typer.Option(min=1, help="Repartition the input into N partitions.")] = None,
    title_col: Annotated[str, typer.Option(help="Input column holding the title.")] = "title",
    description_col: Annotated[str | None, typer.Option(help="Input column holding the description.")] = None,
    id_col: Annotated[str | None, typer.Option(help="Input column holding the row id (kept like every column).")]
    = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model name, or 'auto' to route by language.")] = "auto",
    topk: Annotated[int, typer.Option("--topk", "-k", min=1, max=100, help="Occupations per posting.")] = 5,
    min_confidence: Annotated[float | None, typer.Option(min=0.0, max=1.0)] = None,
    input_format: Annotated[str | None, typer.Option("--format", help="parquet, csv or jsonl (default: suffix).")]
    = None,
    output_format: Annotated[str | None, typer.Option(help="parquet, csv or jsonl (default: output's suffix).")]
    = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
    encoder: Annotated[str | None, typer.Option("--encoder", "-e", envvar="ESCOTAG_ENCODER")] = None,
    rules: Annotated[Path | None, typer.Option(
        help="Rules CSV, read here and shipped to the executors (default: theirs, ESCOTAG_RULES).")] = None,
) -> None:
    """Tag a dataset with Spark: every input column kept, plus `occupations` (array of uri, label, label_en,
    isco_code, score, confidence, model); CSV output gets uri_1, label_1, … columns instead."""
    try:
        from pyspark.sql import SparkSession
        from pyspark.sql import functions as F
    except ImportError as exc:
        raise ConfigError("spark-tag needs pyspark: pip install 'escotag[spark]'") from exc
    from escotag.spark import OUTPUT_COLUMN, tag_dataframe

    read_as, write_as = _format(input, input_format), _format(output, output_format)
    # Python workers need an interpreter with escotag installed: this one, unless the cluster says otherwise
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("escotag spark-tag")
    if master:
        builder = builder.master(master)
    spark = builder.getOrCreate()
    try:
        reader = spark.read.option("header", True) if read_as == "csv" else spark.read
        df = reader.format(read_as).load(input)
        if partitions:
            df = df.repartition(partitions)
        tagged = tag_dataframe(df, title_col, description_col, id_col, model, topk, min_confidence, encoder, rules)
        if write_as == "csv":
            flat = [F.col(OUTPUT_COLUMN)[r][key].alias(f"{key}_{r + 1}") for r in range(topk)
                    for key in ("uri", "label", "isco_code", "score", "confidence")]
            tagged = tagged.select(*[F.col(c) for c in df.columns], F.col(OUTPUT_COLUMN)[0]["model"].alias("model"),
                                   *flat)
        writer = tagged.write.mode("overwrite" if overwrite else "errorifexists")
        try:
            (writer.option("header", True) if write_as == "csv" else writer).format(write_as).save(output)
        except Exception as exc:  # pyspark's AnalysisException; its module moved between versions
            if "already exists" in str(exc):
                raise ConfigError(f"{output} already exists; --overwrite replaces it") from None
            raise
    finally:
        spark.stop()
    typer.echo(f"escotag: tagged {input} into {output}", err=True)


if __name__ == "__main__":  # spark-submit "$(python -c 'import escotag.cli.spark as m; print(m.__file__)')" …
    typer.run(spark_tag)
