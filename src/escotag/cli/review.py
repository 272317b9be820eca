"""``escotag review``: the review queue from the command line: what waits, and decisions as labelled postings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="The review queue (README: Review and rules): list it, export decisions.")

DatabaseOpt = Annotated[str | None, typer.Option(
    "--database", envvar="ESCOTAG_DATABASE_URL", show_envvar=True,
    help="Database URL (default: SQLite file review.sqlite3 in ESCOTAG_HOME; postgresql://… for PostgreSQL).")]


@app.command("export")
def export(
    out: Annotated[Path, typer.Argument(help="CSV to write: id,title,description,gold_uri (escotag train "
                                             "--labelled reads it).")],
    database: DatabaseOpt = None,
) -> None:
    """Write every decided item as a labelled posting (gold_uri empty where no ESCO occupation fits)."""
    from ..review import ReviewStore

    n = ReviewStore.open(database).export(out)
    typer.echo(f"escotag: exported {n} decided item(s) to {out}", err=True)


@app.command("list")
def list_items(
    status: Annotated[str, typer.Option(help="open, decided or all.")] = "open",
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    database: DatabaseOpt = None,
) -> None:
    """Show the queue's counts and its first items."""
    from ..review import ReviewStore

    if status not in ("open", "decided", "all"):
        raise typer.BadParameter("open, decided or all", param_hint="--status")
    store = ReviewStore.open(database)
    rows = store.list(None if status == "all" else status, limit)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    counts = store.counts()
    typer.echo(f"{counts['open']} open, {counts['decided']} decided ({store.url})")
    for row in rows:
        top = row["candidates"][0]["label"] if row["candidates"] else "-"
        decided = f" -> {row['decided_uri'] or 'none fits'} ({row['reviewer'] or '?'})" if row["decided_at"] else ""
        typer.echo(f"{row['id']:>6}  p={row['top_confidence']:.2f}  {row['title'][:50]:<50}  {top}{decided}")
