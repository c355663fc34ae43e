"""`memoqa ingest`: bring the index in line with the corpus manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ingest.errors import MemoqaError
from service.cli.app import app, err, fail, out, progress_bars, settings_with


@app.command()
def ingest(
    manifest: Annotated[
        Path | None, typer.Option(help="Corpus manifest (default: corpus/manifest.json).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if nothing changed.")] = False,
) -> None:
    """Parse, chunk and embed the corpus into the index. Safe to re-run: an
    unchanged corpus is left as it is."""
    from ingest.pipeline import run_ingest

    settings = settings_with(corpus={"manifest": manifest})
    with progress_bars(transient=True) as notify:
        try:
            report = run_ingest(settings, force=force, progress=notify)
        except MemoqaError as exc:
            raise fail(f"{exc}\nthe index was left as it was.") from exc
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {warning}")
    for doc in report.documents:
        out.print(f"  {doc.status:9} {doc.id} ({doc.passages} passages)")
    if report.changed:
        out.print(
            f"indexed {report.passages} passages into {report.collection} "
            f"({report.embedded} embedded, {report.reused} reused) in {report.seconds:.1f} s"
        )
    else:
        out.print(f"index {report.collection} is up to date ({report.seconds:.1f} s)")
