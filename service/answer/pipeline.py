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
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ingest.index.reader import Snapshot
from ingest.index.records import StoredPassage
from ingest.text import strip_superscripts
from service.answer.evidence import (
    _claim_text,
    gather_evidence,
)
from service.answer.gate import Checks, check_part
from service.answer.question import Part, QuestionPlan, analyse_question, names_in
from service.answer.types import (
    QUOTE_GAP,
    REFUSAL,
    AnswerResult,
    Citation,
    Claim,
    DoneEvent,
    Draft,
    EndnoteSource,
    Evidence,
    Generator,
    TextEvent,
)
from service.query import is_source_question
from service.retrieve import Retriever, SearchResult
from service.text import entities


def _source_sentence(note: EndnoteSource) -> str:
    text = re.sub(r",?\s*https?://\S+", "", note.text).strip().rstrip(",.")
    return f"The paper's source for this is endnote {note.number}: {text}."


@dataclass
class PartOutcome:
    part: Part
    claims: list[Claim]
    answered: bool
    reason: str | None = None
    confidence: float | None = None
    relevance: float | None = None


def _merge(first: list[Evidence], rest: list[Evidence], limit: int) -> list[Evidence]:
    seen = {e.passage.id for e in first}
    return (first + [e for e in rest if e.passage.id not in seen])[:limit]


def _bridge_names(claims: list[Claim], question: str) -> list[str]:
    """Names an earlier part's answer brings that the question did not have."""
    asked = {n.lower() for n in entities(question)}
    found: list[str] = []
    for claim in claims:
        for name in entities(claim.text):
            if name.lower() not in asked and name not in found and not name[0].isdigit():
                found.append(name)
    return found[:4]


def about(question: str, query: str) -> str:
    """A question with what its retrieval query adds (a follow-up's conversation)."""
    extra = query[len(question) :].strip(" ()") if query.startswith(question) else query
    return f"{question} (about: {extra})" if extra else question


def _said(claim: Claim, said: list[Claim]) -> bool:
    """Whether the claim was already said for an earlier part."""
    return any(c.passage_id == claim.passage_id and c.text == claim.text for c in said)


_NAME_RUN_RE = re.compile(r"\b(?:[A-Z][\w’'.-]+\s+)*[A-Z][\w’'-]+")
_PRONOUN_RE = re.compile(r"\b(he|she|him|it|they|them|his|her|its|their)\b", re.IGNORECASE)


def _referent(previous: PartOutcome, question: str) -> str | None:
    """What an earlier part's answer names that the question did not: the person
    or country a later "he" or "it" stands for."""
    # "Which UN chief ...? What did he say?": the pronoun stands for the answer.
    # After "Where is the RATS ...? When did it open?" it stands for the subject.
    asks_for_one = re.match(
        r"^\s*(?:\w+\s+)?(?:which|who|whom|whose)\b", previous.part.text, re.IGNORECASE
    )
    if not previous.answered or not asks_for_one:
        return None
    asked = question.lower()
    runs = [
        run
        for claim in previous.claims
        for run in _NAME_RUN_RE.findall(strip_superscripts(claim.text))
        if run.lower() not in asked
        and not any(w.lower() in asked for w in run.split())
        and not claim.text.startswith(run)
    ]
    return runs[0] if runs else None


def resolve_reference(part: Part, referent: str) -> Part:
    """The part with its first pronoun replaced by what it refers to."""

    def swap(m: re.Match[str]) -> str:
        possessive = m.group(1).lower() in ("his", "her", "its", "their")
        return f"{referent}’s" if possessive else referent

    text = _PRONOUN_RE.sub(swap, part.text, count=1)
    if text == part.text:
        return part
    return replace(part, text=text, names=names_in(f"{text} {part.clause}"))


def unanswered_sentence(part: Part, document_count: int) -> str:
    paper = "paper does" if document_count <= 1 else "papers do"
    if part.clause:  # a fragment: "why", "during whose presidency"
        return f"The {paper} not say {part.text.rstrip('?').lower()}."
    return f"The {paper} not answer this part: “{part.text}”"


@dataclass
class _Answer:
    """The answer as it is built: its pieces of text in order, the claims said,
    and the citations, numbered in order of first use."""

    snapshot: Snapshot
    wants_source: bool  # the question asks for the sources: name the endnotes too
    texts: list[str] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    citations: dict[str, Citation] = field(default_factory=dict)
    sources: list[tuple[int, int]] = field(default_factory=list)  # (endnote, ref) to name
    passages: dict[str, StoredPassage] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)

    def offer(self, evidence: list[Evidence]) -> None:
        """The passages a part may cite; a passage keeps the score it first came with."""
        for e in evidence:
            self.passages[e.passage.id] = e.passage
            self.scores.setdefault(e.passage.id, e.score)

    def emit(self, text: str) -> TextEvent:
        previous = self.texts[-1] if self.texts else None
        self.texts.append(text)
        return TextEvent(_separator(previous, text) + text)

    def text(self) -> str:
        return "".join(
            _separator(self.texts[i - 1] if i else None, t) + t for i, t in enumerate(self.texts)
        )

    def cite(self, claim: Claim, item: Evidence) -> Citation:
        citation = self.citations.get(item.passage.id)
        if citation is None:
            notes = self.snapshot.endnotes(item.passage.document_id, item.passage.endnotes)
            citation = Citation(
                ref=len(self.citations) + 1,
                passage=item.passage,
                quote=claim.quote,
                score=item.score,
                endnotes=tuple(EndnoteSource(n.endnote_number or 0, n.text, n.urls) for n in notes),
            )
        elif claim.quote and citation.quote and claim.quote not in citation.quote:
            joined = f"{citation.quote} {claim.quote}"
            if joined not in item.passage.text:
                joined = f"{citation.quote}{QUOTE_GAP}{claim.quote}"
            citation = replace(citation, quote=joined)
        self.citations[item.passage.id] = citation
        return citation

    def say(self, new: list[Claim]) -> Iterator[TextEvent]:
        for claim in new:
            if any(c.passage_id == claim.passage_id and c.text == claim.text for c in self.claims):
                continue  # one sentence can answer two parts; it is said once
            passage = self.passages[claim.passage_id]
            citation = self.cite(claim, Evidence(passage, self.scores.get(claim.passage_id, 0.0)))
            self.claims.append(claim)
            yield self.emit(f"{claim.text} [{citation.ref}]")
            if self.wants_source:
                for note in citation.endnotes:
                    wanted = (note.number, citation.ref)
                    if note.number in claim.endnotes and wanted not in self.sources:
                        self.sources.append(wanted)

    def correct(self, corrections: list[Any]) -> Iterator[TextEvent]:
        """The question rests on something the papers contradict: say what they say instead."""
        for correction in corrections:
            found = self.snapshot.get([correction.passage_id])
            if not found:
                continue
            item = Evidence(found[0], 1.0)
            self.passages[item.passage.id] = item.passage
            claim = Claim(
                _claim_text(correction.quote), item.passage.id, correction.quote, correction.notes
            )
            citation = self.cite(claim, item)
            self.claims.append(claim)
            yield self.emit(f"{correction.sentence} {claim.text} [{citation.ref}]")

    def name_sources(self) -> Iterator[TextEvent]:
        for number, ref in self.sources:
            note = next(
                n
                for c in self.citations.values()
                if c.ref == ref
                for n in c.endnotes
                if n.number == number
            )
            yield self.emit(f"{_source_sentence(note)} [{ref}]")


def _separator(previous: str | None, text: str) -> str:
    """Pieces of an answer join with a space, or a line break around a list."""
    if previous is None:
        return ""
    return "\n" if "\n" in text or "\n" in previous else " "


@dataclass
class _Run:
    """What every part of one question is answered with."""

    question: str
    plan: QuestionPlan
    retriever: Retriever
    generator: Generator
    checks: Checks
    acronyms: dict[str, str]
    top_k: int
    cancel: threading.Event | None
    search: SearchResult  # the whole question's retrieval
    evidence: list[Evidence]


@dataclass
class _PartQuery:
    """One part of the question, as it is retrieved for and asked."""

    part: Part
    search: SearchResult
    evidence: list[Evidence]
    asked: str  # the part as the generator is asked it
    judged: str  # the part as the checks judge it (with what a follow-up is about)
    retrieve_ms: float


def _part_query(run: _Run, index: int, part: Part, outcomes: list[PartOutcome]) -> _PartQuery:
    """A single question uses the whole question's retrieval; each part of a
    multi-part question is retrieved on its own, with the names of the first
    part and of the previous part's answer, and a pronoun that stands for that
    answer replaced by it."""
    search, evidence, asked = run.search, run.evidence, run.question
    retrieve_ms = 0.0
    if run.plan.multi:
        lead = [n for n in run.plan.parts[0].names if n not in part.names] if index else []
        bridge = _bridge_names(outcomes[-1].claims, run.question) if index and outcomes else []
        extra = " ".join(dict.fromkeys(lead + bridge))
        tick = time.perf_counter()
        text = f"{part.search_text} {run.plan.context} {extra}".strip()
        search = run.retriever.search(text, run.top_k)
        found = gather_evidence(search.hits, run.retriever, run.top_k)
        evidence = _merge(found, run.evidence, run.top_k + 2)
        retrieve_ms = (time.perf_counter() - tick) * 1000
        referent = _referent(outcomes[-1], run.question) if part.refers_back and outcomes else None
        if referent:
            # "What did he tell the leaders?" after "Which UN chief attended?": he is the answer.
            part = resolve_reference(part, referent)
        asked = part.display
    # What the model is asked to judge: a follow-up carries what the
    # conversation is about ("And when did it open? (about: RATS Tashkent)").
    judged = asked if search.query.text == asked else about(asked, search.query.text)
    return _PartQuery(part, search, evidence, asked, judged, retrieve_ms)


@dataclass
class _PartAnswer:
    """One part answered: its claims generated, checked, and those that pass said."""

    run: _Run
    query: _PartQuery
    answer: _Answer
    claims: list[Claim] = field(default_factory=list)
    shown: list[Claim] = field(default_factory=list)
    reason: str | None = None
    confidence: float | None = None
    draft: Draft = field(default_factory=lambda: Draft(False, reason="no answer was produced"))

    def check_one(self, claim: Claim) -> list[TextEvent]:
        why, score = check_part(
            self.query.part,
            [claim],
            self.answer.passages,
            self.answer.snapshot,
            self.run.acronyms,
            self.run.checks,
            asked=self.query.judged,
        )
        self.reason = self.reason or why
        if why is not None:
            return []
        known = self.confidence
        self.confidence = score if known is None or score is None else min(known, score)
        self.shown.append(claim)
        return list(self.answer.say([claim]))

    def check_all(self) -> Iterator[TextEvent]:
        self.reason, self.confidence = check_part(
            self.query.part,
            self.claims,
            self.answer.passages,
            self.answer.snapshot,
            self.run.acronyms,
            self.run.checks,
            asked=self.query.judged,
            confidence=self.draft.confidence,
        )
        if self.reason is None:
            self.shown = self.claims
            yield from self.answer.say(self.claims)

    def generate(self) -> Iterator[TextEvent]:
        """A generator that writes as it goes (a language model) has each claim
        checked on its own and shown at once, or once it is done when the same
        model gives the verdicts; one that decides on the whole answer has its
        claims checked together."""
        generator, query = self.run.generator, self.query
        by_id = {e.passage.id: e for e in query.evidence}
        self.answer.offer(query.evidence)
        per_claim = getattr(generator, "incremental", False)
        shares_model = self.run.checks.model is not None and getattr(
            generator, "shares_model", False
        )
        live = per_claim and not shares_model
        for item in generator.stream(query.asked, query.evidence, query.search, self.run.cancel):
            if isinstance(item, Draft):
                self.draft = item
                break
            if item.passage_id not in by_id:  # never cite a passage the generator was not given
                continue
            self.claims.append(item)
            # Nothing new to show still hands control back, so a client that left is noticed.
            yield from (self.check_one(item) if live else []) or [TextEvent("")]
        if per_claim and not live:
            for claim in self.claims:
                yield from self.check_one(claim)
        elif not per_claim and self.draft.answered and self.claims:
            yield from self.check_all()

    def outcome(self, earlier: list[PartOutcome], *, first_part: bool) -> PartOutcome:
        part, draft, shown = self.query.part, self.draft, self.shown
        firsts = [o.claims[0] for o in earlier if o.answered and o.claims]
        if shown and not first_part and not part.clause and all(_said(c, firsts) for c in shown):
            # A question of its own answered only by what answered an earlier one
            # ("and when did each apply?" by the sentence that says when they joined).
            self.reason, shown = "the only sentences that fit it answer an earlier part", []
        if shown:
            return PartOutcome(part, shown, True, None, self.confidence, draft.relevance)
        answered = self.claims and draft.answered
        why = self.reason if answered else (draft.reason or "no supported claim")
        confidence = self.confidence or draft.confidence
        return PartOutcome(part, [], False, why, confidence, draft.relevance)


def _result(
    answer: _Answer,
    *,
    outcomes: list[PartOutcome],
    drafts: list[Draft],
    corrections: list[Any],
    generator: Generator,
    checks: Checks,
    timings_ms: dict[str, float],
) -> AnswerResult:
    answered = bool(answer.texts)
    missing = [o for o in outcomes if not o.answered]
    lead_draft = next((d for d in drafts if d.answered), drafts[0] if drafts else Draft(False))
    # Answered: the least sure verdict among the parts shown; refused: how close it came.
    verdicts = [
        o.confidence for o in outcomes if o.confidence is not None and o.answered == answered
    ]
    confidence = (min(verdicts) if answered else max(verdicts)) if verdicts else None
    said = strip_superscripts(" ".join(c.text for c in answer.claims))
    return AnswerResult(
        answer=answer.text() if answered else REFUSAL,
        answered=answered,
        citations=list(answer.citations.values()) if answered else [],
        generator=lead_draft.generator or generator.name,
        reason=None if answered else (missing[0].reason if missing else "no supported claim"),
        stats=lead_draft.stats,
        raw_answer=" ".join(d.raw for d in drafts if d.raw) or said,
        relevance=lead_draft.relevance,
        unanswered=[o.part.display for o in missing] if answered else [],
        corrections=[f"{c.assumption.rstrip('.')}: {c.reason}" for c in corrections],
        confidence=confidence,
        checks=checks.name,
        timings_ms=timings_ms,
    )


def answer_events(
    question: str,
    *,
    retriever: Retriever,
    generator: Generator,
    top_k: int,
    query: str | None = None,
    cancel: threading.Event | None = None,
    checks: Checks | None = None,
) -> Iterator[TextEvent | DoneEvent]:
    """Retrieve, generate, verify and cite, yielding the answer as it is made:
    each part's checked claims with their renumbered markers, then the whole
    result. A question with several parts is answered part by part, each
    retrieved on its own; a part the passages do not answer is said to be
    unanswered. `query` is what to retrieve with when it differs from the
    question as asked (a follow-up made standalone). Closing the iterator
    stops the generation."""
    checks = checks or Checks()
    started = time.perf_counter()
    plan = analyse_question(question)
    search = retriever.search(query or question, top_k)
    evidence = gather_evidence(search.hits, retriever, top_k)
    retrieve_ms = (time.perf_counter() - started) * 1000
    answer = _Answer(retriever.snapshot(), is_source_question(question))
    acronyms = retriever.acronyms()
    run = _Run(
        question, plan, retriever, generator, checks, acronyms, top_k, cancel, search, evidence
    )
    outcomes: list[PartOutcome] = []
    drafts: list[Draft] = []
    corrections = (
        checks.premises.corrections(plan, retriever) if checks.premises and plan.assumptions else []
    )
    yield from answer.correct(corrections)
    for index, part in enumerate(plan.parts if not corrections else []):
        part_query = _part_query(run, index, part, outcomes)
        retrieve_ms += part_query.retrieve_ms
        part_answer = _PartAnswer(run, part_query, answer)
        yield from part_answer.generate()
        drafts.append(part_answer.draft)
        outcomes.append(part_answer.outcome(outcomes, first_part=index == 0))
    yield from answer.name_sources()
    yield from _finish(answer, run, outcomes, drafts, corrections, started, retrieve_ms)


def _finish(
    answer: _Answer,
    run: _Run,
    outcomes: list[PartOutcome],
    drafts: list[Draft],
    corrections: list[Any],
    started: float,
    retrieve_ms: float,
) -> Iterator[TextEvent | DoneEvent]:
    """The parts left unanswered said (when others were answered), then the result."""
    missing = [o for o in outcomes if not o.answered]
    if answer.texts and missing:
        documents = len({c.passage.document_id for c in answer.citations.values()})
        for outcome in missing:
            yield answer.emit(unanswered_sentence(outcome.part, documents))
    total_ms = (time.perf_counter() - started) * 1000
    timings_ms = {
        "retrieve": round(retrieve_ms, 1),
        "answer": round(total_ms - retrieve_ms, 1),
        "total": round(total_ms, 1),
    }
    result = _result(
        answer,
        outcomes=outcomes,
        drafts=drafts,
        corrections=corrections,
        generator=run.generator,
        checks=run.checks,
        timings_ms=timings_ms,
    )
    yield DoneEvent(result)


def answer_question(
    question: str,
    *,
    retriever: Retriever,
    generator: Generator,
    top_k: int,
    query: str | None = None,
    checks: Checks | None = None,
) -> AnswerResult:
    """The whole answer at once. Called by the API, CLI and eval."""
    for event in answer_events(
        question, retriever=retriever, generator=generator, top_k=top_k, query=query, checks=checks
    ):
        if isinstance(event, DoneEvent):
            return event.result
    raise RuntimeError("the answer stream ended without a result")
