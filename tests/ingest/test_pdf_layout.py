"""How a PDF page's layout is read: columns found from where the text runs, and
words broken at line ends mended by the document's own words."""

from __future__ import annotations

from ingest.formats.pdf import _join, _Line, _reading_boxes, _Words, _words

WIDTH, HEIGHT, SIZE = 612.0, 792.0, 10.0


def _chars(x0: float, x1: float, top: float) -> list[dict]:
    """A run of characters 5 points wide, a space every seventh."""
    out = []
    x = x0
    while x + 5 <= x1:
        out.append({"x0": x, "x1": x + 5, "top": top, "bottom": top + SIZE, "text": "a"})
        x += 5 if len(out) % 7 else 8
    return out


def _page(*rows: tuple[float, float, float]) -> list[dict]:
    return [c for x0, x1, top in rows for c in _chars(x0, x1, top)]


def test_a_page_in_two_columns_is_read_column_by_column_under_its_title():
    title = [(72, 540, 72)]
    columns = [(72, 290, top) for top in range(110, 700, 14)]
    columns += [(322, 540, top) for top in range(110, 700, 14)]
    boxes = _reading_boxes(_page(*title, *columns), WIDTH, HEIGHT, SIZE)
    assert len(boxes) == 3
    full, left, right = boxes
    assert full.area is None and full.bottom <= 110
    assert left.x1 == right.x0 and 290 < left.x1 < 322
    assert left.area is not None and left.area[0] == 72 and left.area[1] <= 290
    assert right.area is not None and right.area[1] >= 535


def test_a_page_in_one_column_is_one_part():
    rows = [(72, 540, top) for top in range(72, 700, 14)]
    assert len(_reading_boxes(_page(*rows), WIDTH, HEIGHT, SIZE)) == 1


def test_a_table_with_a_narrow_label_column_is_not_read_as_two_columns():
    rows = [(72, 130, top) for top in range(72, 700, 14)]
    rows += [(200, 540, top) for top in range(72, 700, 14)]
    assert len(_reading_boxes(_page(*rows), WIDTH, HEIGHT, SIZE)) == 1


def _lines(*texts: str) -> list[_Line]:
    return [_Line(t, SIZE, False, 0, 0, 0, 0, 1, HEIGHT) for t in texts]


def test_a_word_broken_at_a_line_end_is_mended_by_the_documents_own_words():
    words = _words(_lines("the organization met", "a political-military bloc"))
    assert _join(_lines("the organiza-", "tion met"), words) == "the organization met"
    assert _join(_lines("a political-", "military bloc"), words) == "a political-military bloc"


def test_without_evidence_a_hyphen_stays_where_the_document_only_breaks_compounds():
    compounds = _Words(frozenset(), hyphenates=False)
    hyphenating = _Words(frozenset(), hyphenates=True)
    assert _join(_lines("a rule-", "shaper"), compounds) == "a rule-shaper"
    assert _join(_lines("a rule-", "shaper"), hyphenating) == "a ruleshaper"
    # Before a capital, a hyphenated word or a number, the hyphen always stays.
    assert _join(_lines("Sino-", "Russian ties"), hyphenating) == "Sino-Russian ties"
    assert _join(_lines("information-", "technology-enhanced"), hyphenating) == (
        "information-technology-enhanced"
    )
    assert _join(_lines("Interaction-", "2024 talks"), hyphenating) == "Interaction-2024 talks"
    assert _join(_lines("Uzbekistan—", "contributed"), hyphenating) == "Uzbekistan—contributed"


def test_the_document_tells_whether_its_line_ends_hyphenate_words():
    lines = _lines("the organiza-", "tion and the", "organization")
    assert _words(lines).hyphenates
    lines = _lines("a political-", "military bloc", "political-military")
    assert not _words(lines).hyphenates


def _line(text: str, page: int, top: float, size: float = 9.0) -> _Line:
    return _Line(text, size, False, top, top + size, 72.0, 540.0, page, HEIGHT)


def test_notes_whose_numbering_restarts_are_kept_apart_and_each_marker_cites_its_own():
    """A letter with one note, a report whose notes start again at 1, an appendix
    starting again: three sequences, numbered on, and a marker cites the note
    of its own sequence, also where its note sits on a later page."""
    from ingest.formats.pdf import _numbered, _page_notes

    body = [
        _line("The letter.<sup>1</sup>", 1, 100, 11.0),
        _line("The findings<sup>1</sup> and more<sup>2</sup>.", 2, 100, 11.0),
        _line("At the page's foot:<sup>3</sup>", 3, 700, 11.0),
        _line("The appendix.<sup>1</sup>", 5, 100, 11.0),
    ]
    feet = [
        _line("1 The letter's note.", 1, 700),
        _line("<sup>1</sup> The report's first note.", 2, 700),
        _line("2 The report's second note, which runs on", 2, 712),
        _line("to its page's end.", 2, 724),
        _line("3 The third, on the page after its marker.", 4, 700),
        _line("1 The appendix's note.", 5, 700),
        _line("Source: a figure's source line, no note.", 6, 700),
    ]
    citing_one = {line.page for line in body if "<sup>1</sup>" in line.text}
    notes, others = _page_notes(feet, citing_one)
    assert [(n.sequence, n.label) for n in notes] == [(1, 1), (2, 1), (2, 2), (2, 3), (3, 1)]
    assert [line.text for line in others] == ["Source: a figure's source line, no note."]
    numbered = _numbered(notes, body, _Words(frozenset(), hyphenates=True))
    assert numbered == {
        1: "The letter's note.",
        2: "The report's first note.",
        3: "The report's second note, which runs on to its page's end.",
        4: "The third, on the page after its marker.",
        5: "The appendix's note.",
    }
    assert [line.text for line in body] == [
        "The letter.<sup>1</sup>",
        "The findings<sup>2</sup> and more<sup>3</sup>.",
        "At the page's foot:<sup>4</sup>",
        "The appendix.<sup>5</sup>",
    ]


def test_a_note_runs_on_in_lower_case_on_the_next_page_and_a_1_without_a_marker_starts_nothing():
    from ingest.formats.pdf import _numbered, _page_notes

    body = [_line("Text.<sup>1</sup>", 1, 100, 11.0)]
    feet = [
        _line("1 The only note.", 1, 700),
        _line("a table's row set small at the next page's foot", 2, 700),
        _line("1 a number that starts no new sequence: no marker 1 cites it", 4, 700),
    ]
    notes, others = _page_notes(feet, {1})
    assert [(n.sequence, n.label) for n in notes] == [(1, 1)]
    assert [line.page for line in others] == [4]
    assert _numbered(notes, body, _Words(frozenset(), hyphenates=True)) == {
        1: "The only note. a table's row set small at the next page's foot"
    }
    assert body[0].text == "Text.<sup>1</sup>"
