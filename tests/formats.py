"""The memo made into the other formats with real tools: pandoc writes HTML and a
Word file with real footnotes, headless Chromium prints the HTML to PDF. A tool
that is missing skips the test here and fails it in CI (MEMOQA_REQUIRE_TOOLS)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ingest.parse import parse_document

TITLE = "Sino-Russian Interactions Regarding the Shanghai Cooperation Organization"


def require(tool: str) -> str:
    found = shutil.which(tool) or (shutil.which("chromium-browser") if tool == "chromium" else None)
    if found is None:
        if os.environ.get("MEMOQA_REQUIRE_TOOLS") or os.environ.get("MEMOQA_REQUIRE_BROWSER"):
            pytest.fail(f"{tool} is required here but not installed (apt-get install {tool})")
        pytest.skip(f"{tool} is not installed (apt-get install {tool}); CI installs it")
    return found


def pandoc_markdown(memo: Path) -> str:
    """The memo with its endnotes as pandoc footnotes (`[^N]`), so that the HTML
    and Word files carry real notes rather than a numbered list."""
    source = memo.read_text(encoding="utf-8")
    parsed = parse_document(source)
    start = source.index("## Endnotes")
    following = source.find("\n## ", start + 5)
    body = source[:start] + (source[following:] if following > 0 else "")
    body = re.sub(r"<sup>\s*(\d+)\s*</sup>", r"[^\1]", body)
    notes = [
        f"[^{n}]: " + " ".join(" ".join(source[a:b] for a, b in note.segments).split())
        for n, note in sorted(parsed.endnotes.items())
    ]
    return body + "\n\n" + "\n\n".join(notes) + "\n"


# The memo's page set in two columns, its title block across both.
TWO_COLUMNS = (
    "<style>body { max-width: none; column-count: 2; column-gap: 2.5em; font-size: 11pt }"
    " header#title-block-header { column-span: all }</style>"
)


def memo_as(
    fmt: str, memo: Path, folder: Path, *, page_furniture: bool = False, columns: int = 1
) -> Path:
    """The memo as .html, .docx or .pdf in `folder`; with `page_furniture` the PDF
    carries Chromium's running header (date, title) and footer (address, page n/N),
    with `columns=2` it is set in two columns."""
    pandoc = require("pandoc")
    source = folder / "memo-pandoc.md"
    source.write_text(pandoc_markdown(memo), encoding="utf-8")
    html = folder / "memo.html"
    if not html.exists():
        subprocess.run(
            [pandoc, "-f", "markdown", "-t", "html5", "-s", "--metadata", f"title={TITLE}"]
            + [str(source), "-o", str(html)],
            check=True,
            timeout=120,
        )
    if fmt == "html":
        return html
    if fmt == "docx":
        target = folder / "memo.docx"
        subprocess.run(
            [pandoc, "-f", "markdown", "--metadata", f"title={TITLE}", str(source)]
            + ["-o", str(target)],
            check=True,
            timeout=120,
        )
        return target
    if columns == 2:
        two = folder / "memo-two-columns.html"
        two.write_text(
            html.read_text(encoding="utf-8").replace("</head>", TWO_COLUMNS + "</head>"),
            encoding="utf-8",
        )
        return print_pdf(two, folder / "memo-two-columns.pdf")
    target = folder / ("memo-furniture.pdf" if page_furniture else "memo.pdf")
    return print_pdf(html, target, page_furniture=page_furniture)


def print_pdf(html: Path, target: Path, *, page_furniture: bool = False) -> Path:
    """`html` printed to `target` by headless Chromium."""
    chromium = require("chromium")
    flags = [] if page_furniture else ["--no-pdf-header-footer"]
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", *flags]
        + [f"--print-to-pdf={target}", html.as_uri()],
        check=True,
        timeout=180,
        capture_output=True,
    )
    return target
