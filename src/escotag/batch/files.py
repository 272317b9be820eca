"""Streaming readers and writers for batch tagging: CSV, JSONL and Parquet, in constant memory."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError, DataError

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{path}: unknown file type {path.suffix!r}; use one of {', '.join(FORMATS)}")
    return fmt


def read_rows(path: Path, batch_size: int = 256) -> Iterator[list[tuple[int, dict | None, str]]]:
    """Batches of (row number, row or None, problem) in file order; row numbers count data rows from 1."""
    fmt = file_format(path)
    if not path.exists():
        raise DataError(path, "no such file")
    batch: list[tuple[int, dict | None, str]] = []
    for item in _rows(path, fmt):
        batch.append(item)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _rows(path: Path, fmt: str) -> Iterator[tuple[int, dict | None, str]]:
    if fmt == "csv":
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            try:
                for n, row in enumerate(reader, 1):
                    if None in row:
                        yield n, None, "more fields than the header"
                    else:
                        yield n, row, ""
            except csv.Error as exc:
                raise DataError(path, f"malformed CSV ({exc})", reader.line_num) from exc
            except UnicodeDecodeError as exc:
                raise DataError(path, "not UTF-8 text") from exc
    elif fmt == "jsonl":
        with path.open("rb") as f:
            for n, raw in enumerate(f, 1):
                try:
                    row = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    yield n, None, f"invalid JSON ({exc})"
                    continue
                yield (n, row, "") if isinstance(row, dict) else (n, None, "not a JSON object")
    else:
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise DataError(path, f"not a readable Parquet file ({exc})") from exc
        n = 0
        for record_batch in parquet.iter_batches(batch_size=1024):
            for row in record_batch.to_pylist():
                n += 1
                yield n, row, ""


class Writer:
    """Writes result records in the output's format, batch by batch; wide columns for CSV and Parquet.

    ``position()`` after a batch is durable (fsynced) and is where a resumed run continues (``position`` given to
    a new Writer): a byte offset of a CSV or JSONL output, which is written in place, or the number of batches of a
    Parquet output, which are written as parts beside it and joined into the file by ``close(complete=True)``.
    """

    def __init__(self, path: Path, topk: int, position: int = 0) -> None:
        self.path, self.topk, self.fmt = path, topk, file_format(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = None
        self._csv = None
        self._header = position > 0  # a resumed CSV already has its header
        self._parts = path.with_name(path.name + ".parts")
        self._part = position
        if self.fmt == "parquet":
            if position == 0:
                shutil.rmtree(self._parts, ignore_errors=True)
            self._parts.mkdir(exist_ok=True)
            for part in self._parts.glob("part-*.parquet"):  # written after the checkpoint, or half-written
                if int(part.stem.split("-")[1]) >= position:
                    part.unlink()
        else:
            if position:
                os.truncate(path, position)  # drop what was written after the last checkpoint
            self._file = path.open("a" if position else "w", encoding="utf-8", newline="")
        self._json = json.JSONEncoder(ensure_ascii=False)  # one encoder: json.dumps builds one per call

    def _flat(self, record: dict) -> dict:
        flat = {k: v for k, v in record.items() if k != "predictions"}
        preds = record["predictions"]
        for r in range(self.topk):
            p = preds[r] if r < len(preds) else {}
            for key in ("uri", "label", "isco_code", "score", "confidence", "source"):
                flat[f"{key}_{r + 1}"] = p.get(key)
        return flat

    def write(self, records: list[dict]) -> None:
        if self.fmt == "jsonl":
            assert self._file is not None
            self._file.writelines(self._json.encode(r) + "\n" for r in records)
        elif self.fmt == "csv":
            assert self._file is not None
            rows = [self._flat(r) for r in records]
            if self._csv is None and rows:
                self._csv = csv.DictWriter(self._file, fieldnames=list(rows[0]))
                if not self._header:
                    self._csv.writeheader()
            if self._csv is not None:
                self._csv.writerows(rows)
        elif records:
            import pyarrow as pa
            import pyarrow.parquet as pq

            rows = [self._flat(r) for r in records]
            numeric = ("score_", "confidence_")
            kinds = {"row": pa.int64(), "cross_lingual": pa.bool_()}
            schema = pa.schema([(k, kinds.get(k) or (pa.float64() if k.startswith(numeric) else pa.string()))
                                for k in rows[0]])
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), self._parts / f"part-{self._part:08d}.parquet")
            self._part += 1

    def position(self) -> int:
        """Flush what was written to disk and say where a resumed run would continue."""
        if self._file is None:
            return self._part
        self._file.flush()
        os.fsync(self._file.fileno())
        return os.fstat(self._file.fileno()).st_size

    def close(self, complete: bool = True) -> None:
        """Close the output; a complete Parquet output is joined from its parts (an incomplete one keeps them)."""
        if self._file is not None:
            self._file.close()
        if self.fmt != "parquet" or not complete:
            return
        import pyarrow.parquet as pq

        parts = sorted(self._parts.glob("part-*.parquet"))
        if parts:
            tmp = self.path.with_name(self.path.name + ".tmp")
            with pq.ParquetWriter(tmp, pq.read_schema(parts[0])) as writer:
                for part in parts:
                    writer.write_table(pq.read_table(part))
            os.replace(tmp, self.path)
        shutil.rmtree(self._parts, ignore_errors=True)
