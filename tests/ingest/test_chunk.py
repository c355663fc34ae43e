"""Passages from the real memo: coherent citation units with stable ids."""

import re
from collections import Counter

import pytest

from ingest.chunk import chunk_document, cited_sentences
from ingest.parse import parse_document
from ingest.text import sentence_spans, strip_superscripts

DOC = "weitz-2025-sco"


@pytest.fixture(scope="module")
def passages(memo_text):
    return chunk_document(DOC, parse_document(memo_text), max_chars=1100, min_chars=160)


def test_kinds_and_counts(passages):
    kinds = Counter(p.kind for p in passages)
    assert kinds["endnote"] == 73
    assert kinds["list"] == 7
    assert kinds["figure"] == 3
    assert kinds["abbreviations"] == 1
    assert 50 <= kinds["paragraph"] <= 75


def test_no_passage_spans_two_sections_or_cuts_a_sentence(passages, memo_text):
    headings = [m.start() for m in re.finditer(r"^#+ ", memo_text, re.M)]
    for p in passages:
        inside = [h for h in headings if p.char_start < h < p.char_end]
        # A figure caption may sit inside a repaired paragraph, never a heading.
        assert not inside, (p.id, p.section_label)
        if p.kind == "paragraph" and p.section[0] != "About Hudson Institute":
            assert re.search(r"[.!?:”\"’)]$", strip_superscripts(p.text)), p.text[-60:]
            assert p.text[0].isupper() or p.text[0] in "“\"'(", p.text[:40]


def test_long_paragraphs_split_at_sentence_boundaries(passages):
    body = [p for p in passages if p.kind == "paragraph"]
    assert max(len(p.text) for p in body) <= 1100
    split = [p for p in body if p.text.startswith("A final paper draws on these three texts")]
    assert split, "the long project paragraph is split between two sentences"


def test_lists_stay_whole(passages):
    lists = [p for p in passages if p.kind == "list"]
    moscow = next(p for p in lists if p.section[-1] == "Moscow's Objectives Regarding the SCO")
    assert moscow.text.count("\n- ") == 4 and moscow.section[0] == "Russian Goals"


def test_passage_offsets_and_endnotes(passages, memo_text):
    for p in passages:
        assert 0 <= p.char_start < p.char_end <= len(memo_text)
        for a, b in p.spans:
            assert memo_text[a:b].strip() == memo_text[a:b]
    peace = next(p for p in passages if "4,000 military personnel" in p.text)
    assert peace.endnotes == (2,)
    assert peace.section == ("History and Structure",)
    turkey = next(p for p in passages if "Erdoğan" in p.text)
    assert turkey.endnotes == (27, 28, 29)
    note29 = next(p for p in passages if p.endnote_number == 29)
    assert note29.cited_by == (turkey.id,)
    assert "Turkish President Recep Tayyip Erdoğan" in note29.claim
    assert memo_text[note29.char_start : note29.char_end].startswith("Kathrine Frich")


def test_ids_are_stable_and_unique(passages, memo_text):
    again = chunk_document(DOC, parse_document(memo_text), max_chars=1100, min_chars=160)
    assert [p.id for p in passages] == [p.id for p in again]
    assert len({p.id for p in passages}) == len(passages)
    assert all(p.id.startswith(DOC + "-") for p in passages)


def test_cited_sentences_carry_markers_back_over_unmarked_sentences():
    text = "One fact. Another fact.² A third.³ Untouched tail."
    assert cited_sentences(text) == [
        ("One fact.", (2,)),
        ("Another fact.²", (2,)),
        ("A third.³", (3,)),
        ("Untouched tail.", ()),
    ]
    assert len(sentence_spans(text)) == 4
