"""Tagging Spark DataFrames (``pip install 'escotag[spark]'``): Arrow batches through ``mapInPandas``, one Tagger
per executor Python worker, loaded on its first batch and kept for the worker's life (Spark reuses workers).

Executors read ESCO, indices and trained heads like any escotag process: ``ESCOTAG_HOME`` (and ``ESCOTAG_MODELS``,
``ESCOTAG_ESCO_DIR``, ``ESCOTAG_RULES``) from their environment — a path every node can read
(``spark.executorEnv.ESCOTAG_HOME``), or a local one each node fills on first use. Rules given to tag_dataframe are
read on the driver and shipped with the job.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError
from .tagging.models import AUTO, resolve
from .tagging.ranking import Thresholds
from .tagging.rules import Rule, Rules
from .text.normalization import clean_text

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

    from .tagging.tagger import Tagger

OUTPUT_COLUMN = "occupations"
# a Prediction's fields (``Prediction.to_dict``), then the model that answered
PREDICTION_FIELDS = (("uri", "string"), ("label", "string"), ("label_en", "string"), ("isco_code", "string"),
                     ("isco_label", "string"), ("score", "double"), ("confidence", "double"), ("source", "string"),
                     ("model", "string"))
_TAGGERS: dict[tuple, Tagger] = {}  # per Python worker process


def _worker_tagger(encoder: str | None, rules: tuple[str, list[Rule]] | None) -> Tagger:
    """This worker's Tagger for an encoder plan and shipped rules (digest, rules), made on first use."""
    from .tagging.tagger import Tagger

    key = (encoder, rules[0] if rules else None)
    if key not in _TAGGERS:
        _TAGGERS[key] = Tagger(encoder=encoder, progress=False, rules=Rules(rules[1]) if rules else None)
    return _TAGGERS[key]


def occupations_type():
    """The Spark type of the column tag_dataframe adds: array<struct<uri, label, label_en, isco_code, isco_label,
    score, confidence, source, model>>."""
    from pyspark.sql.types import ArrayType, DoubleType, StringType, StructField, StructType

    types = {"string": StringType(), "double": DoubleType()}
    return ArrayType(StructType([StructField(name, types[kind]) for name, kind in PREDICTION_FIELDS]))


def tag_frame(frame: pd.DataFrame, tagger: Tagger, title_col: str, description_col: str | None, model: str,
              thresholds: Thresholds) -> pd.DataFrame:
    """One pandas batch with the occupations column added (an empty title gets an empty list)."""
    titles = [clean_text(t) for t in frame[title_col].fillna("").astype(str)]
    descriptions = (frame[description_col].fillna("").astype(str).tolist() if description_col
                    else [""] * len(titles))
    rows = [i for i, t in enumerate(titles) if t]
    results = tagger.tag_each([{"title": titles[i], "description": descriptions[i]} for i in rows], model,
                              thresholds) if rows else []
    column: list[list[dict]] = [[] for _ in titles]
    for i, tagged in zip(rows, results, strict=True):
        column[i] = [p.to_dict() | {"model": tagged.model} for p in tagged.predictions]
    out = frame.copy()
    out[OUTPUT_COLUMN] = column
    return out


def tag_dataframe(df: DataFrame, title_col: str = "title", description_col: str | None = None,
                  id_col: str | None = None, model: str = AUTO, topk: int = 5, min_confidence: float | None = None,
                  encoder: str | None = None, rules: str | Path | None = None) -> DataFrame:
    """df with an ``occupations`` column: the top-k ESCO occupations of each row's title (and description).

    Every input column is kept (id_col, when given, must exist: it is the key users join results back on). The
    answers are those of ``escotag tag`` on the same rows. ``rules``: a rules CSV the driver reads (checked
    against its ESCO) and ships to the executors; None: each executor's ESCOTAG_RULES, as for any escotag process.
    """
    from pyspark.sql.types import StructField, StructType

    for name, col in (("title_col", title_col), ("description_col", description_col), ("id_col", id_col)):
        if col is not None and col not in df.columns:
            raise ConfigError(f"{name} {col!r} is not a column of the DataFrame ({', '.join(df.columns)})")
    if OUTPUT_COLUMN in df.columns:
        raise ConfigError(f"the DataFrame already has an {OUTPUT_COLUMN!r} column")
    thresholds = Thresholds(topk, min_confidence=min_confidence)  # bad thresholds fail here, not on the executors
    resolve(model)  # a bad model name fails here, not on the executors
    shipped = None
    if rules is not None:
        from .esco import load_taxonomy

        read = Rules.read(rules, load_taxonomy())
        shipped = (read.digest, read.rules)
    schema = StructType([*df.schema.fields, StructField(OUTPUT_COLUMN, occupations_type())])

    def tag_batches(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        tagger = _worker_tagger(encoder, shipped)
        for frame in frames:
            yield tag_frame(frame, tagger, title_col, description_col, model, thresholds)

    return df.mapInPandas(tag_batches, schema)
