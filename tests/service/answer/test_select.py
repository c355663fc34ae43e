"""The selecting generator's own rules: what counts as asking for several
things, and relative years read with the paper's date."""

import pytest

from ingest.index.records import DocumentRecord
from service.answer.evidence import relative_years
from service.answer.select import asks_for_several


@pytest.mark.parametrize(
    ("question", "several"),
    [
        ("What objectives does Moscow pursue through the SCO?", True),
        ("Which recent events did China host?", True),
        ("By what means does China exercise influence in the SCO?", True),
        ("Who are the SCO's observers?", True),
        ("What does the memo say about Belarus?", False),
        ("Which country hosted the 2024 summit?", False),
        ("What is the status of Belarus?", False),
    ],
)
def test_asking_for_several_things(question, several):
    assert asks_for_several(question) is several


def _paper(date):
    return DocumentRecord(
        id="p",
        title="T",
        author=None,
        publisher=None,
        series=None,
        date=date,
        url=None,
        source=None,
        file="p.md",
        sha256="",
        passage_count=0,
        ingested_at="",
    )


def test_relative_years_are_read_with_the_papers_date():
    assert (
        relative_years("In the first three months of this year, China hosted", _paper("2025-07"))
        == "2025"
    )
    assert relative_years("Last year and this year", _paper("2025")) == "2024 2025"
    assert relative_years("this year", _paper(None)) == ""
    assert relative_years("this year", None) == ""
    assert relative_years("in 2023", _paper("2025-07")) == ""
