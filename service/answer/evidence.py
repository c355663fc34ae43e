"""Evidence: the passages an answer may rest on, their quotable sentences, and
what each sentence is read with."""

from __future__ import annotations

import re

from ingest.chunk import quotable_units
from ingest.index.reader import Snapshot
from ingest.index.records import DocumentRecord, StoredPassage
from ingest.text import plain_text
from service.answer.types import (
    Draft,
    Evidence,
)
from service.retrieve import Hit, Retriever
from service.text import looks_like_instructions


def gather_evidence(hits: list[Hit], retriever: Retriever, limit: int) -> list[Evidence]:
    """Best passages first; an endnote hit brings in the passages that cite it
    (the claim and its source travel together)."""
    snapshot = retriever.snapshot()
    evidence: dict[str, Evidence] = {}
    for hit in hits:
        if hit.passage.kind == "endnote":
            for citing in snapshot.get(list(hit.passage.cited_by)):
                current = evidence.get(citing.id)
                if current is None or current.score < hit.score:
                    evidence[citing.id] = Evidence(citing, hit.score, hit.passage.endnote_number)
        else:
            current = evidence.get(hit.passage.id)
            if current is None or current.score < hit.score:
                evidence[hit.passage.id] = Evidence(hit.passage, hit.score)
    ranked = sorted(evidence.values(), key=lambda e: e.score, reverse=True)[:limit]
    return with_lists_they_introduce(ranked, snapshot)


def introduces(text: str) -> bool:
    """Whether text ends by announcing what follows ("... agreed to do the following:")."""
    return plain_text(text).rstrip().endswith(":")


def with_lists_they_introduce(evidence: list[Evidence], snapshot: Snapshot) -> list[Evidence]:
    """Each passage that ends by announcing a list is followed by that list (the
    passage after it, when it is one), so that the items can be quoted with it."""
    held = {e.passage.id for e in evidence}
    out: list[Evidence] = []
    for item in evidence:
        out.append(item)
        if item.passage.kind == "list" or not introduces(item.passage.text):
            continue
        after = snapshot.following(item.passage)
        if after is not None and after.kind == "list" and after.id not in held:
            held.add(after.id)
            out.append(Evidence(after, item.score))
    return out


def introduced_list(
    unit_text: str, passage: StoredPassage, evidence: list[Evidence]
) -> Evidence | None:
    """The list a quoted sentence announces: the next passage, when the sentence
    ends its passage with a colon and that list is in the evidence."""
    units = [u for u, _ in units_of(passage) if u]
    if not units or units[-1].strip() != unit_text.strip() or not introduces(unit_text):
        return None
    return next(
        (
            e
            for e in evidence
            if e.passage.kind == "list"
            and e.passage.document_id == passage.document_id
            and e.passage.order == passage.order + 1
        ),
        None,
    )


def too_far(relevance: float, min_relevance: float) -> Draft:
    """The refusal when even the closest passage does not address the question."""
    return Draft(
        False,
        reason=(
            f"the closest passage (relevance {relevance:.2f}, below "
            f"{min_relevance:.2f}) does not address the question"
        ),
        relevance=relevance,
    )


def units_of(passage: StoredPassage) -> list[tuple[str, tuple[int, ...]]]:
    """A passage's quotable units; text that addresses a model is never quoted."""
    return [
        (u, n) if not looks_like_instructions(u) else ("", n)
        for u, n in quotable_units(passage.kind, passage.text)
    ]


def _claim_text(unit: str) -> str:
    return plain_text(unit).removeprefix("- ").strip()


def whole_list(passage: StoredPassage, *, heading: bool = True) -> str:
    """A list passage as an answer: its heading (unless the sentence before it
    stands in for one), then its items."""
    items = [_claim_text(line) for line, _ in units_of(passage) if line]
    title = passage.section_path[-1] if passage.section and heading else ""
    return (f"{title}:\n" if title else "") + "\n".join(f"- {i}" for i in items)


def previous_unit(passage: StoredPassage, quote: str | None) -> str:
    """The sentence before the first one quoted (what "it" in the quote may refer to)."""
    units = [u for u, _ in units_of(passage)]
    for i, unit in enumerate(units):
        if quote and unit.strip() and unit.strip() in quote:
            return units[i - 1] if i > 0 else ""
    return ""


def unit_context(passage: StoredPassage, quote: str | None, snapshot: Snapshot) -> str:
    """What a quoted sentence is read with: its section, the sentence before it,
    and the endnotes behind it."""
    notes: tuple[int, ...] = ()
    for unit, unit_notes in quotable_units(passage.kind, passage.text):
        if quote and unit.strip() and unit.strip() in quote:
            notes += unit_notes
    note_text = (
        " ".join(n.text for n in snapshot.endnotes(passage.document_id, notes)) if notes else ""
    )
    before = previous_unit(passage, quote)
    dated = relative_years(f"{before} {quote or ''}", snapshot.documents.get(passage.document_id))
    return f"{passage.section} {before} {note_text} {dated}".strip()


_RELATIVE_YEAR_RE = re.compile(
    r"\b(this|last|next|the current|the previous|the coming) year\b", re.IGNORECASE
)


_YEAR_OFFSET = {
    "this": 0,
    "the current": 0,
    "last": -1,
    "the previous": -1,
    "next": 1,
    "the coming": 1,
}


def relative_years(text: str, document: DocumentRecord | None) -> str:
    """ "This year" in a paper dated 2025-07 is 2025: the years such phrases name,
    so that a question asking about 2025 finds them."""
    if document is None or not document.date or not document.date[:4].isdigit():
        return ""
    year = int(document.date[:4])
    found = {year + _YEAR_OFFSET[m.group(1).lower()] for m in _RELATIVE_YEAR_RE.finditer(text)}
    return " ".join(str(y) for y in sorted(found))
