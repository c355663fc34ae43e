"""`memoqa inspect`, `memoqa add` and `memoqa remove`: papers read, into and out of
the corpus and the index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ingest.errors import MemoqaError
from service.cli.app import app, err, fail, out, progress_bars, settings_with


def _inspect(files: list[Path], *, as_json: bool) -> None:
    """Each file read as `add` reads it, its parse printed; a file that `add` would
    refuse is named, and the exit status is 1."""
    from ingest.summary import describe, inspect_file

    settings = settings_with()
    found, refused = [], 0
    for path in files:
        try:
            inspection = inspect_file(path, settings.chunking)
        except MemoqaError as exc:
            err.print(f"[red]refused:[/] {exc}")
            refused += 1
            continue
        found.append(inspection)
        if not as_json:
            for line in describe(inspection):
                out.print(line, markup=False)
    if as_json:
        out.print_json(json.dumps([i.to_dict() for i in found], ensure_ascii=False))
    if refused:
        raise fail(f"{refused} of {len(files)} files could not be read", 1)


@app.command()
def inspect(
    files: Annotated[list[Path], typer.Argument(help="PDF, .docx, HTML, markdown or text files.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, one per file.")] = False,
) -> None:
    """Show what memoqa reads from papers, without adding them: title and metadata,
    sections, passages, notes found, markers without a note, notes without a
    marker, and warnings."""
    _inspect(files, as_json=as_json)


@app.command()
def add(
    files: Annotated[list[Path], typer.Argument(help="PDF, .docx, HTML, markdown or text files.")],
    title: Annotated[str | None, typer.Option(help="Title (default: the file's own).")] = None,
    author: Annotated[str | None, typer.Option(help="Author (default: the file's own).")] = None,
    publisher: Annotated[str | None, typer.Option(help="Publisher.")] = None,
    date: Annotated[str | None, typer.Option(help="Publication date, YYYY[-MM[-DD]].")] = None,
    url: Annotated[str | None, typer.Option(help="Where the paper is published.")] = None,
    doc_id: Annotated[
        str | None, typer.Option("--id", help="Document id (default: from the title).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be read (as `inspect`); add nothing.")
    ] = False,
) -> None:
    """Add papers: each is read in its format, copied into the corpus with its
    manifest entry, and indexed (only what changed). All or none."""
    from ingest.library import NewPaper, add_papers
    from ingest.summary import numbers

    if dry_run:
        _inspect(files, as_json=False)
        out.print("dry run: nothing was added.")
        return
    if len(files) > 1 and (doc_id or title):
        raise fail("--id and --title name one paper: add the files one at a time", 2)
    papers = [NewPaper(f, doc_id, title, author, publisher, date, url) for f in files]
    with progress_bars(transient=True) as notify:
        try:
            change = add_papers(settings_with(), papers, progress=notify)
        except MemoqaError as exc:
            raise fail(f"{exc}\nnothing was added; the index was left as it was.") from exc
    for meta in change.added:
        out.print(f"  added     {meta.id} ({meta.format}): {meta.title}")
        reports = change.report.documents if change.report else []
        summary = next((d.summary for d in reports if d.id == meta.id), None)
        if summary is not None:
            out.print(
                f"            {summary.passages} passages, {summary.notes} notes; "
                f"markers without a note: {numbers(summary.markers_without_note)}",
                markup=False,
            )
    if change.report is not None:
        report = change.report
        out.print(
            f"indexed {report.passages} passages into {report.collection} "
            f"({report.embedded} embedded, {report.reused} reused) in {report.seconds:.1f} s"
        )
        for warning in report.warnings:
            err.print(f"[yellow]warning:[/] {warning}")


@app.command()
def remove(
    doc_id: Annotated[str, typer.Argument(help="The id of the paper to take out.")],
) -> None:
    """Take a paper out of the corpus and the index."""
    from ingest.library import remove_paper

    with progress_bars(transient=True) as notify:
        try:
            change = remove_paper(settings_with(), doc_id, progress=notify)
        except MemoqaError as exc:
            raise fail(f"{exc}\nnothing was removed; the index was left as it was.") from exc
    report = change.report
    out.print(f"  removed   {doc_id}")
    if report is not None:
        out.print(f"index {report.collection}: {report.passages} passages")
