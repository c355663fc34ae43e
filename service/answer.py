"""Answering: retrieve, pick evidence, let a generator write claims, cite them.

`answer_question` is the one function the API, the CLI and eval call. A
generator turns evidence into claims, each tied to the passage it rests on and
the sentence it quotes; this module numbers the citations in order of first
use, attaches each cited passage's endnote sources, and refuses honestly when
the evidence is not relevant enough.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Iterator
from typing import Protocol

import numpy as np

from ingest.chunk import quotable_units
from ingest.embed import Embedder
from ingest.index import StoredPassage
from ingest.text import (
    entities,
    looks_like_instructions,
    mentions,
    plain_text,
    split_sentences,
    strip_superscripts,
)
from service.query import is_source_question
from service.retrieve import Hit, Retriever, SearchResult

@dataclass(frozen=True)
class Evidence:
    """A passage offered to a generator, with why it was retrieved."""

    passage: StoredPassage
    score: float
    via_endnote: int | None = None  # reached through this endnote's text


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


REFUSAL = "The indexed papers do not answer this question."
_ANSWER_MARKER_RE = re.compile(r"\[(\d+)\]")
QUOTE_GAP = " … "  # between quoted sentences that are not adjacent in the passage


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
    ranked = sorted(evidence.values(), key=lambda e: e.score, reverse=True)
    return ranked[:limit]


_YEAR_RE = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
_MONTH_RE = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December)\b"
)
_QUANTITY_RE = re.compile(
    r"\b(\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|hundreds?|"
    r"thousands?|millions?|billions?|half|several|many|most|all|no)\b",
    re.IGNORECASE,
)


def answer_type(question: str) -> str | None:
    """What kind of answer the question asks for: a quantity or a date."""
    q = question.lower()
    if re.search(r"\bhow (many|much)\b|\bwhat (share|percentage|proportion|number)\b", q):
        return "quantity"
    if re.search(r"^\s*(and\s+)?when\b|\bwhat (year|date|month)\b|\bin which year\b", q):
        return "date"
    return None


def answer_type_present(kind: str | None, text: str) -> bool:
    if kind == "quantity":
        plain = strip_superscripts(text)
        plain = re.sub(_MONTH_RE.pattern + r"\s+\d{1,2}\b", " ", plain)  # "March 22"
        plain = _YEAR_RE.sub("", plain)
        return bool(_QUANTITY_RE.search(plain))
    if kind == "date":
        return bool(_YEAR_RE.search(text) or _MONTH_RE.search(text))
    return True


def units_of(passage: StoredPassage) -> list[tuple[str, tuple[int, ...]]]:
    """A passage's quotable units; text that addresses a model is never quoted."""
    return [
        (u, n) if not looks_like_instructions(u) else ("", n)
        for u, n in quotable_units(passage.kind, passage.text)
    ]


def _claim_text(unit: str) -> str:
    return plain_text(unit).removeprefix("- ").strip()


class ExtractiveGenerator:
    """No language model: the passages' own sentences that best answer the question.

    A sentence scores the mean of its cosine similarity to the question and the
    weighted share of question terms it contains, blended with its passage's
    relevance. When the best sentence scores under `min_relevance` the answer is
    a refusal.
    """

    name = "extractive"

    def stream(
        self,
        question: str,
        evidence: list[Evidence],
        search: SearchResult,
        cancel: threading.Event | None = None,
    ) -> Iterator[Claim | Draft]:
        draft = self.generate(question, evidence, search)
        yield from draft.claims
        yield draft

    def __init__(
        self,
        embedder: Embedder,
        retriever: Retriever,
        *,
        min_relevance: float,
        max_sentences: int = 3,
        evidence_passages: int = 4,
    ) -> None:
        self.embedder = embedder
        self.retriever = retriever
        self.min_relevance = min_relevance
        self.max_sentences = max_sentences
        self.evidence_passages = evidence_passages

    def generate(self, question: str, evidence: list[Evidence], search: SearchResult) -> Draft:
        if not evidence:
            return Draft(False, reason="nothing in the index is related to the question")
        units: list[tuple[int, int, str, tuple[int, ...]]] = []  # evidence idx, position, text, notes
        for e_index, item in enumerate(evidence[: self.evidence_passages]):
            if item.passage.kind == "list":
                # The whole list competes too, under its heading: "what are X's goals?"
                heading = item.passage.section_path[-1] if item.passage.section else ""
                units.append((e_index, -1, f"{heading}\n{item.passage.text}", ()))
            for position, (unit, notes) in enumerate(units_of(item.passage)):
                if unit:
                    units.append((e_index, position, unit, notes))
        if not units:
            return Draft(False, reason="the retrieved passages hold no text")
        snapshot = self.retriever.snapshot()
        stored = snapshot.sentences()
        cosine = np.zeros(len(units), dtype=np.float32)
        to_embed: list[int] = []
        for i, (e_index, position, _, _) in enumerate(units):
            matrix = stored.vectors.get(evidence[e_index].passage.id)
            if position >= 0 and matrix is not None and position < len(matrix):
                cosine[i] = float(matrix[position] @ search.query_vector)
            else:
                to_embed.append(i)  # a whole list, or an index without stored sentences
        if to_embed:
            fresh = np.asarray(self.embedder.embed_texts([_claim_text(units[i][2]) for i in to_embed]))
            cosine[to_embed] = fresh @ search.query_vector
        lexical = self.retriever.lexical()
        tokenize = self.retriever.tokenizer
        acronyms = self.retriever.acronyms()
        names = entities(question)
        wanted = answer_type(question)
        note_text: dict[tuple[str, int], str] = {}
        for item in evidence[: self.evidence_passages]:
            for note in snapshot.endnotes(item.passage.document_id, item.passage.endnotes):
                note_text[(item.passage.document_id, note.endnote_number or 0)] = note.text
        scores = []
        for (e_index, _, unit, notes), cos in zip(units, cosine, strict=True):
            item = evidence[e_index]
            sources = " ".join(note_text.get((item.passage.document_id, n), "") for n in notes)
            cover = lexical.coverage(search.query, set(tokenize(f"{unit} {sources}")))
            sentence = 0.5 * max(float(cos), 0.0) + 0.5 * cover
            bonus = 0.05 if item.via_endnote is not None and item.via_endnote in notes else 0.0
            # A sentence that leaves out a name or number the question asks about
            # ("the population of Kyrgyzstan") is about something else.
            context = f"{item.passage.section} {unit} {sources}"
            missing = sum(not mentions(n, context, acronyms) for n in names) / max(len(names), 1)
            # A "how many" question is not answered by a sentence without a quantity,
            # nor a "when" question by one without a date.
            typed = 1.0 if answer_type_present(wanted, unit) else 0.75
            scores.append((0.7 * sentence + 0.3 * item.score + bonus) * (1 - 0.6 * missing) * typed)
        best = int(np.argmax(scores))
        relevance = round(float(scores[best]), 4)
        if relevance < self.min_relevance:
            return Draft(
                False,
                reason=(
                    f"the closest passage (relevance {relevance:.2f}, below "
                    f"{self.min_relevance:.2f}) does not address the question"
                ),
                relevance=relevance,
            )
        best_item = evidence[units[best][0]]
        if units[best][1] == -1:
            # A list answers as a whole: the analyst asked for its items.
            items = [_claim_text(line) for line, _ in units_of(best_item.passage) if line]
            heading = best_item.passage.section_path[-1] if best_item.passage.section else ""
            text = (f"{heading}:\n" if heading else "") + "\n".join(f"- {i}" for i in items)
            return Draft(True, [Claim(text, best_item.passage.id, best_item.passage.text)], relevance=relevance)

        floor = max(self.min_relevance, scores[best] - 0.08)
        chosen = sorted(
            (i for i in range(len(units)) if scores[i] >= floor),
            key=lambda i: scores[i],
            reverse=True,
        )
        picked: list[int] = []
        per_passage: dict[int, int] = {}
        for i in chosen:
            e_index = units[i][0]
            if per_passage.get(e_index, 0) >= 2 or len(picked) >= self.max_sentences:
                continue
            if units[i][2].startswith("- ") and units[i][0] != units[best][0]:
                continue
            picked.append(i)
            per_passage[e_index] = per_passage.get(e_index, 0) + 1
        picked.sort(key=lambda i: (units[i][0], units[i][1]))
        claims = [
            Claim(
                _claim_text(units[i][2]),
                evidence[units[i][0]].passage.id,
                units[i][2].strip(),
                units[i][3],
            )
            for i in picked
        ]
        return Draft(True, claims, relevance=relevance)


def split_answer(answer: str) -> list[tuple[str, list[int]]]:
    """Answer sentences with the citation markers each carries. A list answer
    (lines starting with "- ") is one statement."""
    if "\n- " in answer:
        return [(_ANSWER_MARKER_RE.sub("", answer).strip(), [int(n) for n in _ANSWER_MARKER_RE.findall(answer)])]
    out: list[tuple[str, list[int]]] = []
    for sentence in split_sentences(answer.replace("\n", " ")):
        # Markers that open a "sentence" were placed after the previous full stop.
        lead = re.match(r"^(?:\s*\[\d+\])+", sentence)
        if lead and out:
            out[-1] = (out[-1][0], out[-1][1] + [int(n) for n in _ANSWER_MARKER_RE.findall(lead.group(0))])
            sentence = sentence[lead.end() :]
        text = _ANSWER_MARKER_RE.sub("", sentence).strip()
        if text and re.search(r"\w", text):
            out.append((re.sub(r"\s+([.,;:!?])", r"\1", text), [int(n) for n in _ANSWER_MARKER_RE.findall(sentence)]))
    return out


def _source_sentence(note: EndnoteSource) -> str:
    text = re.sub(r",?\s*https?://\S+", "", note.text).strip().rstrip(",.")
    return f"The memo's source for this is endnote {note.number}: {text}."


@dataclass(frozen=True)
class TextEvent:
    """A piece of the answer, already verified and cited, in order."""

    text: str


@dataclass(frozen=True)
class DoneEvent:
    result: AnswerResult


def answer_events(
    question: str,
    *,
    retriever: Retriever,
    generator: Generator,
    top_k: int,
    query: str | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[TextEvent | DoneEvent]:
    """Retrieve, generate, verify and cite, yielding the answer as it is made:
    each supported claim with its renumbered marker, then the whole result.
    `query` is what to retrieve with when it differs from the question as asked
    (a follow-up made standalone). Closing the iterator stops the generation."""
    started = time.perf_counter()
    search = retriever.search(query or question, top_k)
    evidence = gather_evidence(search.hits, retriever, top_k)
    retrieved = time.perf_counter()
    snapshot = retriever.snapshot()
    by_id = {e.passage.id: e for e in evidence}
    citations: dict[str, Citation] = {}
    parts: list[str] = []
    claims: list[Claim] = []
    wants_source = is_source_question(question)
    sources: list[tuple[int, int]] = []  # (endnote, ref) to name after the claims
    draft = Draft(False, reason="no answer was produced")

    def emit(part: str) -> TextEvent:
        separator = "" if not parts else ("\n" if "\n" in part or "\n" in parts[-1] else " ")
        parts.append(part)
        return TextEvent(separator + part)

    for item in generator.stream(question, evidence, search, cancel):
        if isinstance(item, Draft):
            draft = item
            break
        claim = item
        if claim.passage_id not in by_id:
            continue  # never cite a passage the generator was not given
        claims.append(claim)
        evidence_item = by_id[claim.passage_id]
        citation = citations.get(evidence_item.passage.id)
        if citation is None:
            notes = snapshot.endnotes(evidence_item.passage.document_id, evidence_item.passage.endnotes)
            citation = Citation(
                ref=len(citations) + 1,
                passage=evidence_item.passage,
                quote=claim.quote,
                score=evidence_item.score,
                endnotes=tuple(EndnoteSource(n.endnote_number or 0, n.text, n.urls) for n in notes),
            )
            citations[evidence_item.passage.id] = citation
        elif claim.quote and citation.quote and claim.quote not in citation.quote:
            joined = f"{citation.quote} {claim.quote}"
            if joined not in evidence_item.passage.text:
                joined = f"{citation.quote}{QUOTE_GAP}{claim.quote}"
            citations[evidence_item.passage.id] = Citation(
                citation.ref, citation.passage, joined, citation.score, citation.endnotes
            )
        yield emit(f"{claim.text} [{citation.ref}]")
        if wants_source:
            for note in citation.endnotes:
                if note.number in claim.endnotes and (note.number, citation.ref) not in sources:
                    sources.append((note.number, citation.ref))
    for number, ref in sources:
        note = next(n for c in citations.values() if c.ref == ref for n in c.endnotes if n.number == number)
        yield emit(f"{_source_sentence(note)} [{ref}]")
    answered = draft.answered and bool(parts)
    finished = time.perf_counter()
    yield DoneEvent(
        AnswerResult(
            answer="".join(
                ("" if i == 0 else ("\n" if "\n" in p or "\n" in parts[i - 1] else " ")) + p
                for i, p in enumerate(parts)
            )
            if answered
            else REFUSAL,
            answered=answered,
            citations=list(citations.values()) if answered else [],
            generator=draft.generator or generator.name,
            reason=None if answered else (draft.reason or "no supported claim"),
            stats=draft.stats,
            raw_answer=draft.raw or strip_superscripts(" ".join(c.text for c in claims)),
            relevance=draft.relevance,
            timings_ms={
                "retrieve": round((retrieved - started) * 1000, 1),
                "answer": round((finished - retrieved) * 1000, 1),
                "total": round((finished - started) * 1000, 1),
            },
        )
    )


def answer_question(
    question: str,
    *,
    retriever: Retriever,
    generator: Generator,
    top_k: int,
    query: str | None = None,
) -> AnswerResult:
    """The whole answer at once. Called by the API, CLI and eval."""
    for event in answer_events(
        question, retriever=retriever, generator=generator, top_k=top_k, query=query
    ):
        if isinstance(event, DoneEvent):
            return event.result
    raise RuntimeError("the answer stream ended without a result")
