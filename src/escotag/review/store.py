"""The review queue in a database (SQLAlchemy Core): SQLite under ESCOTAG_HOME by default, PostgreSQL when
``ESCOTAG_DATABASE_URL`` says so. Every write is one transaction; a decision is taken at most once."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
    update,
)

from ..errors import ConfigError, EscotagError
from ..settings import get_settings

OPEN, DECIDED = "open", "decided"
EXPORT_COLUMNS = ("id", "title", "description", "gold_uri")

metadata = MetaData()
items = Table(
    "review_items", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("origin", String(16), nullable=False),  # api, cli or file
    Column("origin_key", String(600), unique=True),  # a file run's row: queued once even when the run is resumed
    Column("external_id", String(256)),  # the posting's own id
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("language", String(8)),
    Column("model", String(16), nullable=False),
    Column("candidates", JSON, nullable=False),  # the tagger's top-k, with confidences
    Column("top_confidence", Float, nullable=False),
    Column("status", String(8), nullable=False),
    Column("decided_uri", String(300)),  # null once decided: no ESCO occupation fits
    Column("reviewer", String(200)),
    Column("decided_at", DateTime(timezone=True)),
    Index("ix_review_items_status_id", "status", "id"),
)


class NotFoundError(EscotagError):
    """No review item with that id."""


class ConflictError(EscotagError):
    """The item was decided already (by another coder, or twice)."""


def _engine(url: str) -> Engine:
    if url.startswith(("postgres://", "postgresql://")):  # the driver escotag[postgres] installs
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (ImportError, ValueError) as exc:
        hint = " (pip install 'escotag[postgres]')" if "postgresql" in url else ""
        raise ConfigError(f"cannot use the review database {url!r}: {exc}{hint}") from exc
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragmas(connection, _record) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer (service + CLI)
            cursor.execute("PRAGMA synchronous=FULL")  # a committed decision survives a power cut
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()
    return engine


def _row(row) -> dict:
    d = dict(row._mapping)
    for key in ("created_at", "decided_at"):
        if d.get(key) is not None:
            d[key] = d[key].replace(tzinfo=d[key].tzinfo or UTC).isoformat(timespec="seconds")
    return d


class ReviewStore:
    """The queue of postings waiting for a person, and their decisions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)

    @classmethod
    def open(cls, url: str | None = None) -> ReviewStore:
        return cls(_engine(url or get_settings().review_database))

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def _insert(self):
        """The dialect's INSERT, which can skip a row whose origin_key is queued already."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(items)

    def add(self, entries: Sequence[dict]) -> list[int | None]:
        """Queue entries (review_entries) in one transaction; their ids, None where origin_key was queued."""
        if not entries:
            return []
        now = datetime.now(UTC)
        ids: list[int | None] = []
        with self.engine.begin() as conn:
            for e in entries:
                values = {k: e[k] for k in ("origin", "origin_key", "external_id", "title", "description",
                                            "language", "model", "candidates", "top_confidence")}
                stmt = self._insert().values(**values, created_at=now, status=OPEN)
                ids.append(conn.execute(stmt.on_conflict_do_nothing().returning(items.c.id)).scalar())
        return ids

    def list(self, status: str | None = OPEN, limit: int = 50, after: int = 0) -> list[dict]:
        """Items by id (those after ``after``), of one status or all."""
        query = select(items).where(items.c.id > after).order_by(items.c.id).limit(limit)
        if status is not None:
            query = query.where(items.c.status == status)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(items.c.status, func.count()).group_by(items.c.status)).all()
        return {OPEN: 0, DECIDED: 0, **{status: int(n) for status, n in rows}}

    def get(self, item_id: int) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(select(items).where(items.c.id == item_id)).first()
        if row is None:
            raise NotFoundError(f"no review item {item_id}")
        return _row(row)

    def decide(self, item_id: int, uri: str | None, reviewer: str | None = None) -> dict:
        """Record a decision (uri None: no ESCO occupation fits). Only an open item can be decided: the update
        is conditional, so of two coders deciding at once exactly one wins and the other gets ConflictError."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(items).where(items.c.id == item_id, items.c.status == OPEN)
                .values(status=DECIDED, decided_uri=uri, reviewer=reviewer, decided_at=datetime.now(UTC))
            ).rowcount
        if done != 1:
            current = self.get(item_id)  # NotFoundError when there is no such item
            who = f" by {current['reviewer']}" if current["reviewer"] else ""
            raise ConflictError(f"review item {item_id} was decided already{who} at {current['decided_at']}")
        return self.get(item_id)

    def decided(self, batch: int = 1000) -> Iterator[dict]:
        after = 0
        while rows := self.list(DECIDED, batch, after):
            yield from rows
            after = rows[-1]["id"]

    def export(self, path: str | Path) -> int:
        """Decided items as a labelled postings CSV (id,title,description,gold_uri; gold_uri empty where no
        occupation fits), the input of ``escotag train --labelled``. Written atomically; returns the row count."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        n = 0
        with tmp.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(EXPORT_COLUMNS)
            for item in self.decided():
                writer.writerow([item["id"], item["title"], item["description"], item["decided_uri"] or ""])
                n += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return n
