"""PDF, Word and HTML papers read into the same document model as markdown: the
memo made into each format with real tools recovers its text in order, all 73
notes with their URLs, and the markers linked to the right notes."""

from __future__ import annotations

import difflib
import io
import re

import pytest
from formats import memo_as
from support import MEMO

from ingest.corpus import extract, format_of
from ingest.errors import CorpusError
from ingest.parse import parse_document
from ingest.text import plain_text

pytestmark = pytest.mark.slow


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _marks(parsed) -> list[tuple[tuple[str, ...], int]]:
    """Each marker's note number, with the three words before it."""
    out = []
    for unit in parsed.units:
        for m in re.finditer(r"<sup>\s*(\d+)\s*</sup>", unit.raw):
            out.append((tuple(_words(plain_text(unit.raw[: m.start()]))[-3:]), int(m.group(1))))
    return out


def _plain_quotes(text: str) -> str:
    """pandoc writes typographic quotes where the markdown has straight ones."""
    return text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')


@pytest.fixture(scope="module")
def reference():
    return parse_document(MEMO.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("formats")


@pytest.mark.parametrize("fmt", ["html", "docx", "pdf", "pdf in two columns"])
def test_the_memo_in_each_format_matches_its_markdown(fmt, reference, folder):
    if fmt == "pdf in two columns":
        path = memo_as("pdf", MEMO, folder, columns=2)
    else:
        path = memo_as(fmt, MEMO, folder)
    parsed = parse_document(extract(path.read_bytes(), format_of(path), name=path.name).text)
    expected = _words(" ".join(plain_text(u.raw) for u in reference.units))
    got = _words(" ".join(plain_text(u.raw) for u in parsed.units))
    matcher = difflib.SequenceMatcher(None, expected, got, autojunk=False)
    in_order = sum(b.size for b in matcher.get_matching_blocks()) / len(expected)
    assert in_order >= 0.95, in_order
    assert sorted(parsed.endnotes) == list(range(1, 74))
    for number, note in reference.endnotes.items():
        assert set(note.urls) <= set(parsed.endnotes[number].urls), number
    marks = _marks(parsed)
    linked = sum(m in marks for m in _marks(reference)) / len(_marks(reference))
    assert linked >= 0.95, linked
    sections = {_plain_quotes(u.section[-1]) for u in reference.units if u.section}
    found = {_plain_quotes(u.section[-1]) for u in parsed.units if u.section}
    assert len(sections & found) >= 0.9 * len(sections)


def test_a_paper_in_two_columns_reads_as_it_does_in_one(folder):
    """Column by column, a paragraph running on into the next column (or page)
    kept whole, the title block across both columns read first."""

    def paragraphs(path):
        text = extract(path.read_bytes(), "pdf", name=path.name).text
        return [plain_text(u.raw) for u in parse_document(text).units]

    one = paragraphs(memo_as("pdf", MEMO, folder))
    two = paragraphs(memo_as("pdf", MEMO, folder, columns=2))
    assert two[0] == one[0]
    same = sum(p in one for p in two)
    assert same >= 0.95 * len(one) and len(two) <= 1.05 * len(one), (same, len(one), len(two))


def test_running_headers_footers_and_page_numbers_are_removed(reference, folder):
    path = memo_as("pdf", MEMO, folder, page_furniture=True)
    text = extract(path.read_bytes(), "pdf", name=path.name).text
    assert "file://" not in text and not re.search(r"\b\d+/\d+\b\s*$", text, re.M)
    assert len(parse_document(text).endnotes) == 73


FOOTNOTES = """<html><head><meta charset="utf-8"><title>Drills</title><style>
@page { size: A5; margin: 1.5cm } body { font: 12pt serif }
.notes { position: fixed; bottom: 0; font-size: 8pt }
</style></head><body><h1>Drills in 2021</h1>
<p>Eight SCO members sent about 4,000 troops to the exercise.<sup>1</sup> The drill ended in
September with a joint statement.<sup>2</sup> It was the last of the series in 2021.</p>
<div class="notes"><p>1 Xinhua, “Peace Mission 2021,”
<a href="https://example.org/pm2021">https://example.org/pm2021</a>.</p>
<p>2 TASS, September 25, 2021.</p></div></body></html>
"""


def test_notes_at_the_foot_of_a_page_are_linked_to_their_markers(folder):
    from formats import print_pdf

    page = folder / "footnotes.html"
    page.write_text(FOOTNOTES, encoding="utf-8")
    pdf = print_pdf(page, folder / "footnotes.pdf")
    parsed = parse_document(extract(pdf.read_bytes(), "pdf", name=pdf.name).text)
    assert sorted(parsed.endnotes) == [1, 2]
    assert parsed.endnotes[1].urls == ["https://example.org/pm2021"]
    body = " ".join(u.raw for u in parsed.units)
    assert "exercise.<sup>1</sup> The drill" in body and "2021" not in body.split("<sup>2")[1][:3]


def test_a_pdf_without_a_text_layer_is_refused(folder):
    import subprocess

    from formats import require

    chromium = require("chromium")
    page = folder / "scan.html"
    page.write_text(
        '<html><body><div style="width:300px;height:300px;background:#000"></div></body></html>'
    )
    pdf = folder / "scan.pdf"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ],
        check=True,
        timeout=180,
        capture_output=True,
    )
    with pytest.raises(CorpusError, match="no text layer"):
        extract(pdf.read_bytes(), "pdf", name="scan.pdf")


def test_an_encrypted_pdf_is_refused(folder):
    from pypdf import PdfReader, PdfWriter

    source = memo_as("pdf", MEMO, folder)
    writer = PdfWriter()
    for page in PdfReader(source).pages[:1]:
        writer.add_page(page)
    writer.encrypt(user_password="secret", owner_password="owner")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(CorpusError, match="encrypted"):
        extract(buffer.getvalue(), "pdf", name="locked.pdf")
