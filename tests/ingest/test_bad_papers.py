"""Files that are not what they claim get a clear error naming them."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from ingest.corpus import extract, format_of
from ingest.errors import CorpusError


def test_a_corrupt_pdf_is_refused():
    with pytest.raises(CorpusError, match="bad.pdf: not a readable PDF"):
        extract(b"%PDF-1.4\n1 0 obj garbage\n%%EOF", "pdf", name="bad.pdf")


def test_a_docx_that_is_not_a_zip_is_refused():
    with pytest.raises(CorpusError, match="notes.docx: not a .docx file"):
        extract(b"plain words, no package", "docx", name="notes.docx")


def test_a_zip_bomb_is_refused_unread():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", b"\0" * (20 * 1024 * 1024))
    with pytest.raises(CorpusError, match="bomb.docx: refused"):
        extract(buffer.getvalue(), "docx", name="bomb.docx")


def test_a_zip_without_a_word_document_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(CorpusError, match="not a Word document"):
        extract(buffer.getvalue(), "docx", name="other.docx")


def test_xml_entities_are_never_expanded():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(
            "word/document.xml",
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><d>&a;</d>',
        )
    with pytest.raises(CorpusError, match="declares XML entities"):
        extract(buffer.getvalue(), "docx", name="laughs.docx")


def test_a_page_with_no_article_body_is_refused():
    page = b"<html><body><nav><p>Home</p><p>About</p></nav><footer>(c)</footer></body></html>"
    with pytest.raises(CorpusError, match="menu.html: no article body"):
        extract(page, "html", name="menu.html")


def test_an_unknown_format_is_named():
    with pytest.raises(CorpusError, match=r"slides.pptx: unknown format '.pptx'"):
        format_of(Path("slides.pptx"))


def test_html_notes_and_markers_as_think_tanks_publish_them():
    page = b"""<html><head><title>T</title><meta name="citation_author" content="A. Writer">
    </head><body><nav>Menu</nav><article><h1>On Drills</h1>
    <p>Eight members sent troops.<sup><a href="#_edn1" name="_ednref1">[1]</a></sup> Then
    more came.<a href="#fn2" id="fnref2"><sup>2</sup></a></p></article>
    <div id="_edn1"><p><a href="#_ednref1">[1]</a> Xinhua, <a href="https://x.cn/a">report</a>.</p></div>
    <section class="footnotes"><ol><li id="fn2">
    <p>TASS, 2021.<a href="#fnref2">\xe2\x86\xa9</a></p></li></ol>
    </section></body></html>"""
    got = extract(page, "html", name="page.html")
    assert "troops.<sup>1</sup>" in got.text and "came.<sup>2</sup>" in got.text
    assert "- 1 Xinhua, [report](https://x.cn/a)." in got.text
    assert "- 2 TASS, 2021." in got.text
    assert "Menu" not in got.text
    assert got.meta["author"] == "A. Writer"
