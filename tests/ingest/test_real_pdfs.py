"""PDFs as analysts get them. A PDF's link annotations are read one by one,
resolving only what a link needs: a tagged PDF whose annotations point back
into its page tree and structure tree is read, and a damaged annotation costs
only itself. The library of real reports (tests/papers) is read with the
footnotes at its pages' feet."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from formats import memo_as
from support import MEMO, PAPERS, expected_markers, in_order, truth

from ingest.corpus import extract
from ingest.formats.pdf import page_links
from ingest.text import markers_in


@pytest.fixture(scope="module")
def linked_pdf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The memo's first page with three annotations added: a link that points back
    to its page (/P) and into a structure tree (/StructParent), a link whose
    rectangle is damaged, and a note that is no link."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import (
        ArrayObject,
        DictionaryObject,
        FloatObject,
        NameObject,
        NumberObject,
        TextStringObject,
    )

    source = memo_as("pdf", MEMO, tmp_path_factory.mktemp("links"))
    writer = PdfWriter()
    writer.add_page(PdfReader(source).pages[0])
    page = writer.pages[0]

    def rect(*values: float) -> ArrayObject:
        return ArrayObject(FloatObject(v) for v in values)

    def link(uri: str, box: ArrayObject | TextStringObject) -> DictionaryObject:
        action = DictionaryObject(
            {NameObject("/S"): NameObject("/URI"), NameObject("/URI"): TextStringObject(uri)}
        )
        return DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Annot"),
                NameObject("/Subtype"): NameObject("/Link"),
                NameObject("/Rect"): box,
                NameObject("/A"): action,
                NameObject("/P"): page.indirect_reference,
                NameObject("/StructParent"): NumberObject(7),
            }
        )

    note = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/Text"),
            NameObject("/Rect"): rect(10, 10, 20, 20),
            NameObject("/Contents"): TextStringObject("a reviewer's note"),
        }
    )
    annots = [
        link("https://example.org/source", rect(72, 700, 300, 712)),
        link("https://example.org/damaged", TextStringObject("not a rectangle")),
        note,
    ]
    page[NameObject("/Annots")] = ArrayObject(writer._add_object(a) for a in annots)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_a_link_into_the_page_tree_is_read_and_a_damaged_one_skipped(linked_pdf, caplog):
    import pdfplumber

    with pdfplumber.open(io.BytesIO(linked_pdf)) as pdf:
        page = pdf.pages[0]
        links = page_links(page)
    assert [link["uri"] for link in links] == ["https://example.org/source"]
    only = links[0]
    height = float(page.height)
    assert (only["x0"], only["x1"]) == (72, 300)
    assert (only["top"], only["bottom"]) == (height - 712, height - 700)
    assert "1 link annotation(s) unreadable" in caplog.text


def test_a_paper_with_such_links_is_read_whole(linked_pdf):
    extracted = extract(linked_pdf, "pdf", name="linked.pdf")
    assert "Shanghai Cooperation Organization" in extracted.text


def _library() -> list[Path]:
    return [PAPERS / t["file"] for t in truth() if t["file"].endswith(".pdf")]


def test_every_page_of_every_real_paper_gives_its_links():
    import pdfplumber

    found = {}
    for path in _library():
        with pdfplumber.open(path) as pdf:
            found[path.name] = [link for page in pdf.pages for link in page_links(page)]
    assert found and all(isinstance(links, list) for links in found.values())
    # Word-made reports link their sources: most of them carry links.
    assert sum(bool(links) for links in found.values()) >= len(found) // 2
    every = [link for links in found.values() for link in links]
    assert any(link["uri"].startswith("https://") for link in every)
    assert all(link["uri"].strip() == link["uri"] for link in every)
    assert all(link["top"] < link["bottom"] and link["x0"] < link["x1"] for link in every)


def _norm(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("want", truth(), ids=lambda t: t["file"])
def test_each_real_paper_is_read_with_its_notes_linked(want: dict[str, Any]) -> None:
    """Every paper of the library, as counted by hand in truth.json: it is read
    (none refused for its annotations), at least 98% of its notes are found,
    their first and last text whole, at least 98% of its markers cite the right
    note (in its own sequence where numbering restarts), and no note's text is
    left in the body."""
    from ingest.corpus import extract, format_of
    from ingest.parse import parse_document

    path = PAPERS / want["file"]
    text = extract(path.read_bytes(), format_of(path), name=path.name).text
    parsed = parse_document(text, name=path.name)
    notes = parsed.endnotes
    assert len(notes) >= 0.98 * want["notes"] and len(notes) <= want["notes"], path.name
    body = text.split("\n## Endnotes\n")[0]
    expected = expected_markers(want)
    linked = in_order(markers_in(body), expected) / len(expected) if expected else 1.0
    assert linked >= 0.98, path.name
    if want["notes"]:
        for found, true in (
            (notes[min(notes)].text, want["first_note_text"]),
            (notes[max(notes)].text, want["last_note_text"]),
        ):
            n = min(40, len(_norm(true)))
            assert _norm(found)[:n] == _norm(true)[:n], path.name
        body_text = _norm(" ".join(unit.raw for unit in parsed.units))
        for note in notes.values():
            whole = _norm(re.sub(r"<https?://[^>]+>", "", note.text))
            if len(whole) >= 60:
                assert whole not in body_text, (path.name, note.number)
