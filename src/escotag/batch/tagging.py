"""Tagging a file: stream rows in batches, tag them while the next are read (several at once, see ``workers``),
write results in input order, and checkpoint after every batch so that a killed run can be resumed
(``resume=True``) into the same output."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from ..errors import ConfigError, DataError
from ..settings import usable_cores
from ..tagging.models import AUTO
from ..tagging.ranking import Tagged, Thresholds
from ..tagging.tagger import Tagger
from ..text.normalization import clean_text
from .checkpoint import Checkpoint, input_fingerprint
from .files import Writer, file_format, read_rows

# Rows per batch. An auto batch is scored per model, and a model that answers a few rows of a batch costs nearly as
# much as one that answers many (its label vectors are read whole), so batches are larger than the encoders' own
# (BatchedEncoder, index.views.QUERY_CHUNK); docs/speed.md has the measurements.
BATCH_ROWS = 1024
# At most this many batches at once: each in flight holds its score matrices (~100 MB for EnV2).
MAX_WORKERS = 8


def workers(tagger: Tagger) -> int:
    """How many batches are tagged at once. One per core (up to MAX_WORKERS), each on one BLAS thread, when every
    encoder computes with numpy's BLAS: a batch's single-threaded steps (n-gram lookup, per-concept maxima, top-k)
    then overlap another's products, for the same output (docs/speed.md). Encoders with thread pools of their own
    (ONNX Runtime) tag one batch at a time on every core: two of them would oversubscribe the cores."""
    if not all(getattr(p.encoder, "threads_follow_blas", False) for p in tagger.pipelines.values()):
        return 1
    return min(usable_cores(), MAX_WORKERS)


@dataclass
class Columns:
    title: str = "title"
    description: str = "description"
    id: str = "id"


@dataclass
class Summary:
    tagged: int = 0
    skipped: int = 0
    resumed_after: int = 0  # input rows a previous, interrupted run had done
    queued: int = 0  # rows this run queued for review


def _start(src: Path, dst: Path, settings: dict, resume: bool, overwrite: bool) -> Checkpoint:
    """The checkpoint this run starts from: a resumed run's, or a fresh one. Never overwrites silently."""
    fingerprint = input_fingerprint(src)
    checkpoint = Checkpoint.load(dst)
    if resume and checkpoint is not None:
        checkpoint.check_matches(fingerprint, settings, dst)
        return checkpoint
    if resume and dst.exists():
        raise ConfigError(f"{dst} is complete (no checkpoint beside it): nothing to resume")
    if not resume and not overwrite and (dst.exists() or checkpoint is not None):
        unfinished = " by an unfinished run (--resume continues it)" if checkpoint is not None else ""
        raise ConfigError(f"{dst} already exists{unfinished}; --overwrite replaces it")
    return Checkpoint(fingerprint, settings)


def tag_file(
    tagger: Tagger, src: Path, dst: Path, model: str = AUTO, topk: int = 5, columns: Columns | None = None,
    batch_size: int | None = None, strict: bool = False, on_skip: Callable[[int, str], None] | None = None,
    min_confidence: float | None = None, resume: bool = False, overwrite: bool = False,
    review_below: float | None = None,
) -> Summary:
    """Tag every row of src (CSV, JSONL, Parquet) into dst. A bad row is reported through on_skip and
    skipped, or with strict raises DataError naming it.

    An existing dst is an error unless overwrite; with resume, a run that was killed continues after its last
    checkpointed batch (same input and settings required) and the output ends as an uninterrupted run's would.
    review_below queues rows whose top confidence is below it for review (each row once, also across a resume).
    """
    columns = columns or Columns()
    batch_size = batch_size or BATCH_ROWS
    file_format(src), file_format(dst)
    if not src.exists():
        raise DataError(src, "no such file")
    thresholds = Thresholds(topk, min_confidence=min_confidence, review_below=review_below)
    tagger.check(model, thresholds)  # a bad or untrained model fails before anything is read or written
    review = None
    if review_below is not None:
        from ..review import ReviewStore

        review = ReviewStore.open()
    settings = {"model": model, "topk": topk, "columns": asdict(columns), "batch_size": batch_size,
                "strict": strict, "min_confidence": min_confidence, "encoder": tagger.plan.describe(),
                "rules": tagger.rules.digest, "review_below": review_below}
    checkpoint = _start(src, dst, settings, resume, overwrite)
    resumed_after = checkpoint.rows_read
    writer = Writer(dst, topk, checkpoint.position)
    checkpoint.save(dst)
    bar = tqdm(desc="tagging", unit="row", disable=None, initial=checkpoint.rows_read)
    queued = [0]
    pending: deque[tuple[list, Future[list[Tagged]], int, int]] = deque()

    def flush_one() -> None:
        good, future, size, skipped = pending.popleft()
        results = future.result()
        writer.write([
            {"id": str(row.get(columns.id, n)), "row": n, "title": title, **t.to_dict()}
            for (n, row, title), t in zip(good, results, strict=True)
        ])
        if review is not None:
            queued[0] += _queue(review, good, results, review_below, columns, checkpoint.run)
        checkpoint.position = writer.position()
        checkpoint.rows_read += size
        checkpoint.tagged += len(good)
        checkpoint.skipped += skipped
        checkpoint.save(dst)
        bar.update(size)

    complete = False
    in_flight = workers(tagger)
    try:
        with ThreadPoolExecutor(max_workers=in_flight) as pool, \
                threadpool_limits(1 if in_flight > 1 else None, user_api="blas"):
            consumed = 0
            for batch in read_rows(src, batch_size):
                consumed += len(batch)
                if consumed <= resumed_after:
                    continue  # done before the run was interrupted (checkpoints fall on batch boundaries)
                good, skipped = [], 0
                for n, row, problem in batch:
                    title = "" if row is None else clean_text(str(row.get(columns.title) or ""))
                    if row is not None and not problem and not title:
                        problem = f"empty or missing {columns.title!r}"
                    if problem:
                        skipped += 1
                        if strict:
                            raise DataError(src, f"row {n}: {problem} (--strict)")
                        if on_skip:
                            on_skip(n, problem)
                        continue
                    good.append((n, row, title))
                items = [{"title": t, "description": str(r.get(columns.description) or "")} for _, r, t in good]
                pending.append((good, pool.submit(tagger.tag_each, items, model, thresholds), len(batch),
                                skipped))
                while len(pending) > in_flight:
                    flush_one()
            while pending:
                flush_one()
        complete = True
    finally:
        writer.close(complete)
        bar.close()
    Checkpoint.remove(dst)
    return Summary(checkpoint.tagged, checkpoint.skipped, resumed_after, queued[0])


def _queue(review, good: list, results: list, below: float, columns: Columns, run: str) -> int:
    """Queue a batch's unsure rows, keyed by run and row so that a resumed run does not queue a row twice."""
    from ..review import review_entries

    items = [{"id": row.get(columns.id, n), "title": title, "description": str(row.get(columns.description) or "")}
             for n, row, title in good]
    keys = [f"{run}:{n}" for n, _, _ in good]
    return sum(i is not None for i in review.add(review_entries(items, results, below, "file", keys)))
