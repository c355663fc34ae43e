"""Parsed document -> passages: the units an answer cites.

A passage never spans two sections and never cuts a sentence; a bullet list
stays whole. Paragraphs longer than `max_chars` are split at sentence
boundaries into balanced parts; paragraphs shorter than `min_chars` join a
neighbour in the same section. Each endnote is a passage too, linked to the
passages that cite it.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field

from ingest.parse import Endnote, ParsedDocument, Stretch, Unit
from ingest.text import (
    URL_RE,
    clean_inline,
    markers_in,
    plain_text,
    sentence_spans,
    superscript_markers,
)

CHUNKER_VERSION = "1"
ENDNOTES_SECTION = "Endnotes"
SECTION_SEPARATOR = " > "


@dataclass(frozen=True)
class Passage:
    id: str
    document_id: str
    kind: str  # paragraph | list | figure | front_matter | abbreviations | endnote
    section: tuple[str, ...]
    text: str  # display text: markdown removed, endnote markers as superscripts
    endnotes: tuple[int, ...]  # endnote numbers this passage cites
    spans: tuple[tuple[int, int], ...]  # character ranges of the source file
    order: int
    repaired: bool = False
    endnote_number: int | None = None  # for kind == "endnote"
    urls: tuple[str, ...] = ()  # for kind == "endnote"
    cited_by: tuple[str, ...] = field(default=())  # for kind == "endnote"
    claim: str = ""  # for kind == "endnote": the sentence(s) of the body that cite it

    @property
    def char_start(self) -> int:
        return min(a for a, _ in self.spans)

    @property
    def char_end(self) -> int:
        return max(b for _, b in self.spans)

    @property
    def section_label(self) -> str:
        return SECTION_SEPARATOR.join(self.section)


@dataclass
class _Draft:
    kind: str
    section: tuple[str, ...]
    pieces: list[Stretch]
    repaired: bool

    def display(self) -> str:
        if self.kind == "list":
            return "\n".join(f"- {clean_inline(p.text)}" for p in self.pieces)
        if self.kind in ("figure", "front_matter", "abbreviations"):
            return "\n".join(clean_inline(p.text) for p in self.pieces)
        return "\n\n".join(clean_inline(p.text) for p in self.pieces)


def _split_paragraph(piece: Stretch, max_chars: int) -> list[Stretch]:
    if len(piece.text) <= max_chars:
        return [piece]
    spans = sentence_spans(piece.text)
    if len(spans) < 2:
        return [piece]
    parts = math.ceil(len(piece.text) / max_chars)
    target = len(piece.text) / parts
    groups: list[list[tuple[int, int]]] = [[]]
    for span in spans:
        group = groups[-1]
        if group and span[1] - group[0][0] > target and len(groups) < parts:
            groups.append([span])
        else:
            group.append(span)
    return [piece.sub(g[0][0], g[-1][1]) for g in groups]


def _drafts(units: list[Unit], max_chars: int, min_chars: int) -> list[_Draft]:
    """Units as passage drafts: long paragraphs split, short ones merged."""
    return _merge_small(_split_long(units, max_chars), max_chars, min_chars)


def _split_long(units: list[Unit], max_chars: int) -> list[_Draft]:
    """One draft per unit, and one per part of a paragraph over `max_chars`."""
    drafts: list[_Draft] = []
    for unit in units:
        if unit.kind == "paragraph":
            for part in _split_paragraph(unit.pieces[0], max_chars):
                drafts.append(_Draft("paragraph", unit.section, [part], unit.repaired))
        else:
            drafts.append(_Draft(unit.kind, unit.section, list(unit.pieces), unit.repaired))
    return drafts


def _merge_small(drafts: list[_Draft], max_chars: int, min_chars: int) -> list[_Draft]:
    """Paragraphs under `min_chars` join the one before them when both fit in `max_chars`."""
    merged: list[_Draft] = []
    for draft in drafts:
        if (
            merged
            and (_is_small(draft, min_chars) or _is_small(merged[-1], min_chars))
            and _fit_together(merged[-1], draft, max_chars)
        ):
            merged[-1].pieces.extend(draft.pieces)
            merged[-1].repaired = merged[-1].repaired or draft.repaired
        else:
            merged.append(draft)
    return merged


def _is_small(draft: _Draft, min_chars: int) -> bool:
    return draft.kind == "paragraph" and len(draft.display()) < min_chars


def _fit_together(a: _Draft, b: _Draft, max_chars: int) -> bool:
    return (
        a.kind == b.kind == "paragraph"
        and a.section == b.section
        and len(a.display()) + len(b.display()) <= max_chars
    )


def cited_sentences(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """Each sentence of a display text with the endnotes that support it.

    A marker covers its own sentence and the unmarked sentences just before it
    (the convention of notes placed at the end of a run of sentences)."""
    sentences = [text[a:b] for a, b in sentence_spans(text)]
    notes = [tuple(superscript_markers(s)) for s in sentences]
    carried: tuple[int, ...] = ()
    for i in range(len(sentences) - 1, -1, -1):
        if notes[i]:
            carried = notes[i]
        else:
            notes[i] = carried
    return list(zip(sentences, notes, strict=True))


def quotable_units(kind: str, text: str) -> list[tuple[str, tuple[int, ...]]]:
    """The units a passage is quoted and scored by: sentences of prose, lines
    of lists, each with the endnotes that support it."""
    if kind in ("list", "abbreviations", "figure", "front_matter"):
        return [(line, ()) for line in text.split("\n") if line.strip()]
    return cited_sentences(text)


def passage_id(document_id: str, kind: str, section: tuple[str, ...], text: str) -> str:
    """Stable id: the same text in the same place of the same document gets the
    same id on every ingest."""
    key = "\x1f".join((document_id, kind, SECTION_SEPARATOR.join(section), text))
    return f"{document_id}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


_PASSAGE_ID = re.compile(r"^(?P<document>.+)-[0-9a-f]{12}(?:-\d+)?$")


def document_of(passage: str) -> str | None:
    """The document a passage id belongs to (None for an id not made by `passage_id`)."""
    found = _PASSAGE_ID.match(passage)
    return found.group("document") if found else None


class _Ids:
    """Passage ids made unique within a document: repeats of the same text get a suffix."""

    def __init__(self, document_id: str) -> None:
        self.document_id = document_id
        self.seen: dict[str, int] = {}

    def assign(self, kind: str, section: tuple[str, ...], text: str) -> str:
        pid = passage_id(self.document_id, kind, section, text)
        self.seen[pid] = self.seen.get(pid, 0) + 1
        return pid if self.seen[pid] == 1 else f"{pid}-{self.seen[pid]}"


@dataclass
class _Citations:
    """For each endnote, the passages that cite it and the sentences it supports."""

    citing: dict[int, list[str]] = field(default_factory=dict)
    claims: dict[int, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, passages: list[Passage]) -> _Citations:
        found = cls()
        for p in passages:
            for n in p.endnotes:
                found.citing.setdefault(n, []).append(p.id)
            for sentence, notes in cited_sentences(p.text):
                for n in notes:
                    found.claims.setdefault(n, []).append(sentence)
        return found


def chunk_document(
    document_id: str, parsed: ParsedDocument, *, max_chars: int, min_chars: int
) -> list[Passage]:
    """All passages of one document, body first, then its endnotes."""
    ids = _Ids(document_id)
    body = _body_passages(ids, _drafts(parsed.units, max_chars, min_chars))
    return body + _endnote_passages(ids, parsed.endnotes, _Citations.of(body), len(body))


def _body_passages(ids: _Ids, drafts: list[_Draft]) -> list[Passage]:
    """One passage per draft, in document order."""
    passages: list[Passage] = []
    for draft in drafts:
        text = draft.display()
        cited = tuple(dict.fromkeys(n for p in draft.pieces for n in markers_in(p.text)))
        passages.append(
            Passage(
                id=ids.assign(draft.kind, draft.section, text),
                document_id=ids.document_id,
                kind=draft.kind,
                section=draft.section,
                text=text,
                endnotes=cited,
                spans=tuple(s for p in draft.pieces for s in p.segments),
                order=len(passages),
                repaired=draft.repaired,
            )
        )
    return passages


def _endnote_passages(
    ids: _Ids, endnotes: dict[int, Endnote], citations: _Citations, first_order: int
) -> list[Passage]:
    """One passage per endnote, by number, linked to the body passages that cite it."""
    section = (ENDNOTES_SECTION,)
    passages: list[Passage] = []
    for number in sorted(endnotes):
        note = endnotes[number]
        passages.append(
            Passage(
                id=ids.assign("endnote", section, f"{number}\x1f{note.text}"),
                document_id=ids.document_id,
                kind="endnote",
                section=section,
                text=note.text,
                endnotes=(),
                spans=tuple(note.segments),
                order=first_order + len(passages),
                endnote_number=number,
                urls=tuple(note.urls),
                cited_by=tuple(citations.citing.get(number, ())),
                claim=" ".join(citations.claims.get(number, ())),
            )
        )
    return passages


def search_text(
    *,
    kind: str,
    section: str,
    text: str,
    document_title: str,
    endnote_number: int | None = None,
    claim: str = "",
) -> str:
    """The text a passage is found by (embedded and matched lexically): its
    section path, then its words without endnote markers. An endnote is found
    by its source description and the body sentences that cite it, so a question
    about a claim can reach its source."""
    if kind == "endnote":
        note = URL_RE.sub("", text).strip(" ,.")
        return f"Endnote {endnote_number}: {note}. Source for: {plain_text(claim)}"
    return f"{section or document_title}\n{plain_text(text)}"
