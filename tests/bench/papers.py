"""The library of real reports (tests/papers), read as `memoqa add` reads them,
against what was counted by hand in truth.json: notes found, markers citing the
right note, body words recovered in reading order, and speed per page: reading
(extract, parse, chunk) and the whole ingest (embedded with the packaged
embedder into a fresh index).

Words recovered: the words of each page's body area (the page without its top
and bottom tenth, where running heads, footers and page numbers stand; pages of
a table of contents left out), as a second PDF library (pdfium) reads them, in
order; the share of them that the passages and notes hold in the same order.

    PYTHONPATH=tests .venv/bin/python tests/bench/papers.py [FILE ...]
"""

from __future__ import annotations

import difflib
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from support import PAPERS, expected_markers, in_order, truth

from ingest.chunk import chunk_document
from ingest.corpus import extract, format_of
from ingest.parse import parse_document
from ingest.pipeline import run_ingest
from ingest.settings import ChunkingSettings, load_configured_embedder
from ingest.text import markers_in, plain_text

MARGIN = 0.1
_WORD_RE = re.compile(r"[a-z0-9]+")
_CONTENTS_RE = re.compile(r"^\s*(table of )?contents\s*$", re.IGNORECASE | re.MULTILINE)


def words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower().replace("-\n", ""))


def reference_words(path: Path) -> tuple[list[str], int]:
    """The body area's words of every page but a table of contents, in pdfium's
    order, and the number of pages left out as contents."""
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(path))
    out: list[str] = []
    skipped = 0
    for page in pdf:
        width, height = page.get_size()
        text = page.get_textpage().get_text_bounded(
            left=0, bottom=MARGIN * height, right=width, top=(1 - MARGIN) * height
        )
        if _CONTENTS_RE.search(text) and len(re.findall(r"\.{4,}|\s\d{1,3}\s*$", text, re.M)) > 5:
            skipped += 1
            continue
        out += words(text)
    return out, skipped


def recovered(body: list[str], notes: list[str], reference: list[str]) -> int:
    """The reference's words found in order: the body's first, then the notes'
    among the words the body left (a page interleaves its notes with the body;
    the passages keep them apart)."""
    matcher = difflib.SequenceMatcher(None, body, reference, autojunk=False)
    taken = set()
    for block in matcher.get_matching_blocks():
        taken.update(range(block.b, block.b + block.size))
    rest = [w for i, w in enumerate(reference) if i not in taken]
    return len(taken) + in_order(notes, rest)


def _read(passages: Any) -> list[str]:
    """The passages' text in order, each heading read where its section starts."""
    out, section = [], ()
    for p in passages:
        if p.section != section:
            out += [h for i, h in enumerate(p.section) if section[i : i + 1] != (h,)]
            section = p.section
        out.append(plain_text(p.text))
    return out


def ingest_seconds(path: Path, embedder: Any) -> float:
    """Seconds to ingest one paper into a fresh index (its reading cached nowhere)."""
    from service.settings import Settings

    with tempfile.TemporaryDirectory(prefix="memoqa-bench-") as tmp:
        folder = Path(tmp)
        manifest = folder / "manifest.json"
        entry = {"id": "paper", "file": str(path), "title": path.stem}
        manifest.write_text(json.dumps({"documents": [entry]}))
        settings = Settings.model_validate(
            {
                "corpus": {"manifest": manifest},
                "index": {
                    "path": folder / "index",
                    "lock_path": folder / "lock",
                    "extracted_path": folder / "extracted",
                },
            }
        )
        started = time.perf_counter()
        run_ingest(settings, embedder=embedder)
        return time.perf_counter() - started


def main(names: list[str]) -> None:
    from service.settings import Settings

    chunking = ChunkingSettings()
    embedder = load_configured_embedder(Settings())
    print(
        f"{'paper':17} {'pages':>5} {'notes':>9} {'markers linked':>15} "
        f"{'words in order':>15} {'read s/page':>11} {'ingest s/page':>13}"
    )
    for want in truth():
        if names and want["file"] not in names:
            continue
        path = PAPERS / want["file"]
        started = time.perf_counter()
        text = extract(path.read_bytes(), format_of(path), name=path.name).text
        parsed = parse_document(text, name=path.name)
        passages = chunk_document("bench", parsed, max_chars=chunking.max_chars, min_chars=0)
        seconds = time.perf_counter() - started
        body = text.split("\n## Endnotes\n")[0]
        expected = expected_markers(want)
        linked = in_order(markers_in(body), expected)
        notes = f"{len(parsed.endnotes)}/{want['notes']}"
        markers = f"{linked}/{len(expected)}" if expected else "-"
        if path.suffix == ".pdf":
            reference, skipped = reference_words(path)
            body_words = words(" ".join(_read(p for p in passages if p.kind != "endnote")))
            notes_text = " ".join(plain_text(p.text) for p in passages if p.kind == "endnote")
            note_words = words(notes_text)
            share = recovered(body_words, note_words, reference) / max(1, len(reference))
            found = f"{share:.1%}"
            pages = int(want["pages"])
            ingest = ingest_seconds(path, embedder)
            per_page = f"{seconds / pages:11.2f} {ingest / pages:13.2f}"
        else:
            found, pages, per_page = "-", 0, f"{'-':>11} {'-':>13}"
        print(
            f"{want['file']:17} {pages or '-':>5} {notes:>9} {markers:>15} {found:>15} {per_page}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
