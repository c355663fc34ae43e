"""The curated question set: its shape, and that every label still points at the corpus."""

from collections import Counter

import pytest
from support import MANIFEST

from eval.dataset import KINDS, LIBRARY, QUESTIONS, EvalItem, corpus_text, load_items, validate
from eval.runner import paper_of


@pytest.fixture(scope="module")
def corpus():
    return corpus_text(MANIFEST)


def test_committed_question_set_is_valid_against_the_library_it_is_asked_of():
    """The memo's questions and at least 20 about each of at least four real
    reports, every label pointing at the library's text."""
    items = load_items(QUESTIONS)
    assert validate(items, corpus_text(LIBRARY)) == []
    papers = Counter(paper_of(i) for i in items)
    assert sum(n >= 20 for p, n in papers.items() if p != "weitz-2025-sco") >= 4, papers
    assert "any" not in papers
    kinds = Counter(i.kind for i in items)
    assert len(items) >= 100
    assert all(kinds[k] >= 10 for k in KINDS), kinds
    splits = Counter(i.split for i in items)
    assert 0 < splits["dev"] < splits["test"]
    for kind in KINDS:
        assert any(i.kind == kind and i.split == "dev" for i in items), kind


def item(**changes):
    base = {
        "id": "fact-900",
        "kind": "fact",
        "split": "dev",
        "question": "How many troops took part?",
        "reference": "About 4,000.",
        "key_facts": ["4,000"],
        "evidence": [
            {"doc": "weitz-2025-sco", "span": "contributed approximately 4,000 military personnel"}
        ],
    }
    base.update(changes)
    return EvalItem.model_validate(base)


def test_validator_finds_broken_labels(corpus):
    good = item()
    assert validate([good], corpus) == []
    moved = item(
        id="fact-901",
        question="Another?",
        evidence=[{"doc": "weitz-2025-sco", "span": "approximately 5,000 military personnel"}],
    )
    unknown = item(
        id="fact-902", question="Third?", evidence=[{"doc": "nope", "span": "anything at all"}]
    )
    bad_note = item(id="fact-903", question="Fourth?", endnotes=[99])
    problems = validate([good, moved, unknown, bad_note, item()], corpus)
    assert any("fact-901: span not in" in p for p in problems)
    assert any("fact-902: unknown document" in p for p in problems)
    assert any("fact-903: endnote 99" in p for p in problems)
    assert any("duplicate id" in p for p in problems)


def test_item_shape_rules():
    with pytest.raises(ValueError, match="no evidence"):
        item(kind="unanswerable")
    with pytest.raises(ValueError, match="earlier turns"):
        item(kind="followup")
    with pytest.raises(ValueError, match="endnote"):
        item(kind="source")
