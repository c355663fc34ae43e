"""The answer's types: evidence, claims, drafts, citations, results, stream
events, and the generator interface."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ingest.index.records import StoredPassage
from service.retrieve import SearchResult


@dataclass(frozen=True)
class Evidence:
    """A passage offered to a generator, with why it was retrieved."""

    passage: StoredPassage
    score: float
    via_endnote: int | None = None  # reached through this endnote's text


@dataclass(frozen=True)
class Unit:
    """A quotable unit (sentence or list line) of an evidence passage, scored."""

    evidence: int  # index into the evidence list
    position: int  # index among the passage's units; -1 for a whole list
    text: str
    notes: tuple[int, ...]  # endnotes behind it
    score: float


@dataclass(frozen=True)
class Claim:
    text: str  # one sentence (or a list) of the answer, without markers
    passage_id: str
    quote: str | None  # the passage's own words that support it
    endnotes: tuple[int, ...] = ()  # the endnotes behind those words


@dataclass
class Draft:
    answered: bool
    claims: list[Claim] = field(default_factory=list)
    reason: str | None = None
    raw: str = ""
    relevance: float | None = None  # the signal the answer/refusal decision was made on
    generator: str | None = None  # who wrote it, when not the generator asked (a fallback)
    stats: dict[str, float] | None = None  # generation figures: tokens, time to first token
    confidence: float | None = None  # the model's verdict that the claims answer, when it gave one


class Generator(Protocol):
    name: str

    def generate(self, question: str, evidence: list[Evidence], search: SearchResult) -> Draft: ...

    def stream(
        self,
        question: str,
        evidence: list[Evidence],
        search: SearchResult,
        cancel: threading.Event | None = None,
    ) -> Iterator[Claim | Draft]:
        """Supported claims as they are ready, then the draft (always last).
        Setting `cancel` stops the generation."""
        ...


@dataclass(frozen=True)
class EndnoteSource:
    number: int
    text: str
    urls: tuple[str, ...]


@dataclass(frozen=True)
class Citation:
    ref: int
    passage: StoredPassage
    quote: str | None
    score: float
    endnotes: tuple[EndnoteSource, ...]


@dataclass
class AnswerResult:
    answer: str
    answered: bool
    citations: list[Citation]
    generator: str
    reason: str | None
    raw_answer: str
    timings_ms: dict[str, float]
    relevance: float | None = None
    stats: dict[str, float] | None = None
    unanswered: list[str] = field(default_factory=list)  # parts of the question left unanswered
    corrections: list[str] = field(default_factory=list)  # assumptions the papers contradict
    confidence: float | None = None  # the model's least sure verdict that a part is answered
    checks: str = "rules"


REFUSAL = "The indexed papers do not answer this question."


QUOTE_GAP = " … "  # between quoted sentences that are not adjacent in the passage


@dataclass(frozen=True)
class TextEvent:
    """A piece of the answer, already verified and cited, in order (empty: nothing
    new yet, the answer is still being made)."""

    text: str


@dataclass(frozen=True)
class DoneEvent:
    result: AnswerResult
