"""``escotag esco``: pack an official ESCO export into a snapshot, say what the tagger reads, diff two versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="ESCO data: pack a snapshot, show the source in use, diff versions.")

SourceArg = Annotated[str, typer.Argument(
    help="A CSV export folder or zip, a packed .parquet snapshot, or 'embedded' (the snapshot shipped with escotag).")]


@app.command()
def pack(
    source: Annotated[Path, typer.Argument(help="Official ESCO CSV export: a folder or the portal's zip.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Snapshot file to write (.parquet).")],
    esco_version: Annotated[str, typer.Option(
        "--esco-version", help="ESCO release(s) of the export, recorded in the file (default: read from the zip "
                               "name when it has one).")] = "",
    languages: Annotated[str | None, typer.Option(help="Comma-separated languages to keep (default all; "
                                                       "English always).")] = None,
) -> None:
    """Pack an official ESCO CSV export into a compact snapshot file (Parquet, zstd)."""
    from ..esco import read_csv_export, write_snapshot

    if out.suffix != ".parquet":
        raise typer.BadParameter("the snapshot file must end in .parquet", param_hint="--out")
    taxonomy = read_csv_export(source, languages.split(",") if languages else None, esco_version)
    meta = write_snapshot(taxonomy, out)
    typer.echo(f"escotag: packed {meta['occupations']} occupations, {meta['isco_groups']} ISCO groups in "
               f"{', '.join(meta['languages'])} (ESCO {meta['esco_version'] or 'version unknown'}) into {out} "
               f"({out.stat().st_size / 1e6:.1f} MB); content hash {meta['content_hash']}", err=True)


@app.command()
def info(
    source: Annotated[str | None, typer.Argument(help="Default: what the tagger reads (ESCOTAG_ESCO_DIR, else the "
                                                      "embedded snapshot).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Source, ESCO version, languages, counts and content hash of an ESCO source."""
    from ..esco import load_taxonomy, metadata

    taxonomy = load_taxonomy(source)
    meta = {"source": taxonomy.source, **metadata(taxonomy)}
    if as_json:
        typer.echo(json.dumps(meta, ensure_ascii=False))
        return
    typer.echo(f"source        {meta['source']}\nESCO version  {meta['esco_version'] or 'unknown'}\n"
               f"languages     {', '.join(meta['languages'])}\noccupations   {meta['occupations']}\n"
               f"ISCO groups   {meta['isco_groups']}\nlabels        "
               + ", ".join(f"{lang} {n}" for lang, n in meta["label_variants"].items())
               + f"\ncontent hash  {meta['content_hash']}\n{meta['attribution']}")


@app.command()
def diff(
    old: SourceArg,
    new: SourceArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of changes.")] = False,
    languages: Annotated[str | None, typer.Option(help="Comma-separated languages checked for relabelling "
                                                       "(default every language both have).")] = None,
) -> None:
    """Occupations added, removed, made obsolete, relabelled or moved to another ISCO group from OLD to NEW."""
    from ..esco import diff_taxonomies, load_taxonomy

    changes = diff_taxonomies(load_taxonomy(old), load_taxonomy(new), languages.split(",") if languages else None)
    if as_json:
        typer.echo(json.dumps([c.to_dict() for c in changes], ensure_ascii=False))
        return
    for c in changes:
        detail = f"{c.old} -> {c.new}" if c.old and c.new else c.old or c.new
        typer.echo(f"{c.kind:<10} {c.lang or '-':<3} {c.uri}  {c.label}  {detail}")
    counts = {kind: sum(c.kind == kind for c in changes) for kind in dict.fromkeys(c.kind for c in changes)}
    typer.echo(f"escotag: {len(changes)} change(s)" + (": " + ", ".join(f"{n} {k}" for k, n in counts.items())
                                                      if changes else ""), err=True)
