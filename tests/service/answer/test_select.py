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


def _stored(pid, kind, text, order):
    from ingest.index.records import StoredPassage

    return StoredPassage(pid, "d", "t", kind, "S", text, (), (), 0, 1, order, None, (), (), "")


class _Snapshot:
    def __init__(self, passages):
        self.by_order = {p.order: p for p in passages}

    def following(self, passage):
        return self.by_order.get(passage.order + 1)


def test_a_sentence_that_announces_a_list_brings_the_list():
    from service.answer.evidence import introduced_list, whole_list, with_lists_they_introduce
    from service.answer.types import Evidence

    intro = _stored("a", "paragraph", "It began in 2010. The parties agreed to the following:⁵", 3)
    items = _stored("b", "list", "- Divest the platform.\n- Not retaliate against venues.", 4)
    other = _stored("c", "paragraph", "Nothing follows here.", 9)
    gathered = with_lists_they_introduce(
        [Evidence(intro, 0.8), Evidence(other, 0.5)], _Snapshot([intro, items, other])
    )
    assert [e.passage.id for e in gathered] == ["a", "b", "c"]
    assert (
        introduced_list("The parties agreed to the following:⁵", intro, gathered).passage.id == "b"
    )
    assert introduced_list("It began in 2010.", intro, gathered) is None
    assert (
        whole_list(items, heading=False)
        == "- Divest the platform.\n- Not retaliate against venues."
    )
