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
from dataclasses import dataclass, replace

from ingest.index.records import StoredPassage
from ingest.text import strip_superscripts
from service.answer.evidence import (
    _claim_text,
    gather_evidence,
)
from service.answer.gate import Checks, check_part
from service.answer.question import Part, analyse_question, names_in
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
from service.retrieve import Retriever
from service.text import entities


def _source_sentence(note: EndnoteSource) -> str:
    text = re.sub(r",?\s*https?://\S+", "", note.text).strip().rstrip(",.")
    return f"The memo's source for this is endnote {note.number}: {text}."


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


def _said(claim: Claim, said: list[Claim], *, exclude: list[Claim]) -> bool:
    """Whether the claim was already said for an earlier part."""
    return any(c.passage_id == claim.passage_id and c.text == claim.text for c in said if c not in exclude)


_NAME_RUN_RE = re.compile(r"\b(?:[A-Z][\w’'.-]+\s+)*[A-Z][\w’'-]+")
_PRONOUN_RE = re.compile(r"\b(he|she|him|it|they|them|his|her|its|their)\b", re.IGNORECASE)


def _referent(previous: PartOutcome, question: str) -> str | None:
    """What an earlier part's answer names that the question did not: the person
    or country a later "he" or "it" stands for."""
    # "Which UN chief ...? What did he say?": the pronoun stands for the answer.
    # After "Where is the RATS ...? When did it open?" it stands for the subject.
    asks_for_one = re.match(r"^\s*(?:\w+\s+)?(?:which|who|whom|whose)\b", previous.part.text, re.IGNORECASE)
    if not previous.answered or not asks_for_one:
        return None
    asked = question.lower()
    runs = [
        run
        for claim in previous.claims
        for run in _NAME_RUN_RE.findall(strip_superscripts(claim.text))
        if run.lower() not in asked and not any(w.lower() in asked for w in run.split())
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
    retrieved = time.perf_counter()
    snapshot = retriever.snapshot()
    acronyms = retriever.acronyms()
    citations: dict[str, Citation] = {}
    parts: list[str] = []
    claims: list[Claim] = []
    wants_source = is_source_question(question)
    sources: list[tuple[int, int]] = []  # (endnote, ref) to name after the claims
    outcomes: list[PartOutcome] = []
    drafts: list[Draft] = []
    passages: dict[str, StoredPassage] = {}
    retrieve_ms = (retrieved - started) * 1000

    def emit(part: str) -> TextEvent:
        separator = "" if not parts else ("\n" if "\n" in part or "\n" in parts[-1] else " ")
        parts.append(part)
        return TextEvent(separator + part)

    def cite(claim: Claim, item: Evidence) -> Citation:
        citation = citations.get(item.passage.id)
        if citation is None:
            notes = snapshot.endnotes(item.passage.document_id, item.passage.endnotes)
            citation = Citation(
                ref=len(citations) + 1,
                passage=item.passage,
                quote=claim.quote,
                score=item.score,
                endnotes=tuple(EndnoteSource(n.endnote_number or 0, n.text, n.urls) for n in notes),
            )
        elif claim.quote and citation.quote and claim.quote not in citation.quote:
            joined = f"{citation.quote} {claim.quote}"
            if joined not in item.passage.text:
                joined = f"{citation.quote}{QUOTE_GAP}{claim.quote}"
            citation = Citation(citation.ref, citation.passage, joined, citation.score, citation.endnotes)
        citations[item.passage.id] = citation
        return citation

    corrections = checks.premises.corrections(plan) if checks.premises and plan.assumptions else []
    for correction in corrections:
        # The question rests on something the papers contradict: say what they say instead.
        found = snapshot.get([correction.passage_id])
        if not found:
            continue
        item = Evidence(found[0], 1.0)
        passages[item.passage.id] = item.passage
        claim = Claim(_claim_text(correction.quote), item.passage.id, correction.quote, correction.notes)
        citation = cite(claim, item)
        claims.append(claim)
        yield emit(f"{correction.sentence} {claim.text} [{citation.ref}]")

    def say(new: list[Claim]) -> Iterator[TextEvent]:
        for claim in new:
            if any(c.passage_id == claim.passage_id and c.text == claim.text for c in claims):
                continue  # one sentence can answer two parts; it is said once
            citation = cite(claim, Evidence(passages[claim.passage_id], scores.get(claim.passage_id, 0.0)))
            claims.append(claim)
            yield emit(f"{claim.text} [{citation.ref}]")
            if wants_source:
                for note in citation.endnotes:
                    if note.number in claim.endnotes and (note.number, citation.ref) not in sources:
                        sources.append((note.number, citation.ref))

    scores: dict[str, float] = {}
    for index, part in enumerate(plan.parts if not corrections else []):
        if plan.multi:
            wanted = part.search_text
            lead = [n for n in plan.parts[0].names if n not in part.names] if index else []
            bridge = _bridge_names(outcomes[-1].claims, question) if index and outcomes else []
            extra = " ".join(dict.fromkeys(lead + bridge))
            search_query = f"{wanted} {plan.context} {extra}".strip()
            tick = time.perf_counter()
            part_search = retriever.search(search_query, top_k)
            part_evidence = _merge(gather_evidence(part_search.hits, retriever, top_k), evidence, top_k + 2)
            retrieve_ms += (time.perf_counter() - tick) * 1000
            referent = _referent(outcomes[-1], question) if part.refers_back and outcomes else None
            if referent:
                # "What did he tell the leaders?" after "Which UN chief attended?": he is the answer.
                part = resolve_reference(part, referent)
            asked = part.display
        else:
            part_search, part_evidence, asked = search, evidence, question
        # What the model is asked to judge: a follow-up carries what the
        # conversation is about ("And when did it open? (about: RATS Tashkent)").
        judged = asked if part_search.query.text == asked else about(asked, part_search.query.text)
        by_id = {e.passage.id: e for e in part_evidence}
        passages.update({pid: e.passage for pid, e in by_id.items()})
        scores.update({pid: e.score for pid, e in by_id.items() if pid not in scores})
        draft = Draft(False, reason="no answer was produced")
        part_claims: list[Claim] = []
        shown: list[Claim] = []
        confidence: float | None = None
        reason: str | None = None
        # A generator that writes as it goes (a language model) has each claim
        # checked on its own and shown at once, or once it is done when the same
        # model gives the verdicts; one that decides on the whole answer has its
        # claims checked together.
        per_claim = getattr(generator, "incremental", False)
        live = per_claim and not (checks.model is not None and getattr(generator, "shares_model", False))

        def check_one(claim: Claim) -> list[TextEvent]:
            nonlocal reason, confidence
            why, verdict = check_part(part, [claim], passages, snapshot, acronyms, checks, asked=judged)
            reason = reason or why
            if why is not None:
                return []
            confidence = verdict if confidence is None or verdict is None else min(confidence, verdict)
            shown.append(claim)
            return list(say([claim]))

        for item in generator.stream(asked, part_evidence, part_search, cancel):
            if isinstance(item, Draft):
                draft = item
                break
            if item.passage_id not in by_id:  # never cite a passage the generator was not given
                continue
            part_claims.append(item)
            # Nothing new to show still hands control back, so a client that left is noticed.
            yield from (check_one(item) if live else []) or [TextEvent("")]
        drafts.append(draft)
        if per_claim and not live:
            for claim in part_claims:
                yield from check_one(claim)
        elif not per_claim and draft.answered and part_claims:
            reason, confidence = check_part(
                part, part_claims, passages, snapshot, acronyms, checks, asked=judged, confidence=draft.confidence
            )
            if reason is None:
                shown = part_claims
                yield from say(part_claims)
        firsts = [o.claims[0] for o in outcomes if o.answered and o.claims]
        if shown and index and not part.clause and all(_said(c, firsts, exclude=[]) for c in shown):
            # A question of its own answered only by what answered an earlier one
            # ("and when did each apply?" by the sentence that says when they joined).
            reason, shown = "the only sentences that fit it answer an earlier part", []
        if not shown:
            why = reason if part_claims and draft.answered else (draft.reason or "no supported claim")
            outcomes.append(PartOutcome(part, [], False, why, confidence or draft.confidence, draft.relevance))
        else:
            outcomes.append(PartOutcome(part, shown, True, None, confidence, draft.relevance))
    for number, ref in sources:
        note = next(n for c in citations.values() if c.ref == ref for n in c.endnotes if n.number == number)
        yield emit(f"{_source_sentence(note)} [{ref}]")
    answered = bool(parts)
    missing = [o for o in outcomes if not o.answered]
    if answered and missing:
        documents = len({c.passage.document_id for c in citations.values()})
        for outcome in missing:
            yield emit(unanswered_sentence(outcome.part, documents))
    finished = time.perf_counter()
    lead_draft = next((d for d in drafts if d.answered), drafts[0] if drafts else Draft(False))
    # Answered: the least sure verdict among the parts shown; refused: how close it came.
    verdicts = [o.confidence for o in outcomes if o.confidence is not None and o.answered == answered]
    confidence = (min(verdicts) if answered else max(verdicts)) if verdicts else None
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
            generator=lead_draft.generator or generator.name,
            reason=None if answered else (missing[0].reason if missing else "no supported claim"),
            stats=lead_draft.stats,
            raw_answer=" ".join(d.raw for d in drafts if d.raw) or strip_superscripts(" ".join(c.text for c in claims)),
            relevance=lead_draft.relevance,
            unanswered=[o.part.display for o in missing] if answered else [],
            corrections=[f"{c.assumption.rstrip('.')}: {c.reason}" for c in corrections],
            confidence=confidence,
            checks=checks.name,
            timings_ms={
                "retrieve": round(retrieve_ms, 1),
                "answer": round((finished - started) * 1000 - retrieve_ms, 1),
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
    checks: Checks | None = None,
) -> AnswerResult:
    """The whole answer at once. Called by the API, CLI and eval."""
    for event in answer_events(
        question, retriever=retriever, generator=generator, top_k=top_k, query=query, checks=checks
    ):
        if isinstance(event, DoneEvent):
            return event.result
    raise RuntimeError("the answer stream ended without a result")
