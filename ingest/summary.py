"""What was read from a paper, to check before trusting it: its sections,
passages and notes, the markers that cite no note and the notes no marker
cites, and the reader's warnings. `memoqa inspect`, `memoqa add --dry-run`, the
upload endpoint and the document list all report it."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ingest.chunk import chunk_document
from ingest.corpus import extract, format_of, read_file
from ingest.parse import ParsedDocument, parse_document
from ingest.settings import ChunkingSettings
from ingest.text import consecutive_runs, markers_in

# Lists of note numbers are shown up to this many, then counted.
SHOWN_NUMBERS = 20


@dataclass
class ParseSummary:
    """The parse of one paper in figures."""

    sections: list[str]  # the top-level headings, in order
    passages: int
    notes: int
    markers: int  # the distinct note numbers the body cites
    markers_without_note: list[int]
    notes_without_marker: list[int]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(parsed: ParsedDocument, passages: int) -> ParseSummary:
    cited = {n for unit in parsed.units for n in markers_in(unit.raw)}
    sections = list(dict.fromkeys(u.section[0] for u in parsed.units if u.section))
    return ParseSummary(
        sections=sections,
        passages=passages,
        notes=len(parsed.endnotes),
        markers=len(cited),
        markers_without_note=sorted(cited - set(parsed.endnotes)),
        notes_without_marker=sorted(set(parsed.endnotes) - cited),
        warnings=list(parsed.warnings),
    )


@dataclass
class Inspection:
    """A file read as `memoqa add` would read it, without adding it."""

    file: str
    format: str
    title: str | None
    meta: dict[str, str]
    pages: int | None
    summary: ParseSummary
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary.to_dict()}


def inspect_file(path: Path, chunking: ChunkingSettings | None = None) -> Inspection:
    """Read, parse and cut one file into passages; raises CorpusError (naming the
    file) where `memoqa add` would refuse it."""
    chunking = chunking or ChunkingSettings()
    started = time.perf_counter()
    fmt = format_of(path)
    data = read_file(path)
    pages = None
    if fmt == "pdf":
        from ingest.formats.pdf import read_pdf

        pdf = read_pdf(data, name=path.name)
        text, meta, pages = pdf.text, pdf.meta, pdf.pages
    else:
        extracted = extract(data, fmt, name=path.name)
        text, meta = extracted.text, extracted.meta
    parsed = parse_document(text, name=path.name)
    passages = chunk_document(
        "inspect", parsed, max_chars=chunking.max_chars, min_chars=chunking.min_chars
    )
    return Inspection(
        file=str(path),
        format=fmt,
        title=meta.get("title") or parsed.title,
        meta=meta,
        pages=pages,
        summary=summarise(parsed, len(passages)),
        seconds=time.perf_counter() - started,
    )


def numbers(values: list[int]) -> str:
    """Note numbers for a person: ranges joined, a long list cut short."""
    if not values:
        return "none"
    parts = [str(r[0]) if len(r) == 1 else f"{r[0]}–{r[-1]}" for r in consecutive_runs(values)]
    shown = ", ".join(parts[:SHOWN_NUMBERS])
    more = f" and {len(parts) - SHOWN_NUMBERS} more" if len(parts) > SHOWN_NUMBERS else ""
    return f"{shown}{more} ({len(values)})"


def describe(inspection: Inspection) -> list[str]:
    """The inspection as lines of text."""
    s = inspection.summary
    meta = ", ".join(f"{k}: {v}" for k, v in inspection.meta.items() if k != "title")
    lines = [
        f"{inspection.file} ({inspection.format}"
        + (f", {inspection.pages} pages" if inspection.pages else "")
        + f", read in {inspection.seconds:.1f} s)",
        f"  title      {inspection.title or '(none found)'}",
    ]
    if meta:
        lines.append(f"  metadata   {meta}")
    lines += [
        f"  sections   {len(s.sections)}"
        + (f": {'; '.join(s.sections[:8])}" if s.sections else "")
        + (" …" if len(s.sections) > 8 else ""),
        f"  passages   {s.passages}",
        f"  notes      {s.notes} found, {s.markers} cited by markers in the text",
        f"  markers without a note   {numbers(s.markers_without_note)}",
        f"  notes without a marker   {numbers(s.notes_without_marker)}",
    ]
    lines += [f"  warning    {w}" for w in s.warnings]
    return lines
