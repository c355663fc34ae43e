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
from dataclasses import dataclass, field, replace
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from ingest.chunk import quotable_units
from ingest.embed import Embedder
from ingest.index.store import DocumentRecord, Snapshot, StoredPassage
from service.text import entities, looks_like_instructions, mentions
from ingest.text import plain_text, split_sentences, strip_superscripts
from service.answer.answerability import AnswerCheck
from service.answer.checks import MONTH_RE, YEAR_RE, Similarity, unmet
from service.query import is_source_question
from service.answer.question import Part, QuestionPlan, analyse_question, names_in
from service.retrieve import Hit, Retriever, SearchResult

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
# Of the relevance that says the passages address a question, the share the best
# sentence that fits what is asked must reach.
FITTING_SHARE = 0.6
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


_QUANTITY_RE = re.compile(
    r"\b(\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|hundreds?|"
    r"thousands?|millions?|billions?|half|several|many|most|all|no)\b",
    re.IGNORECASE,
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
        plain = re.sub(MONTH_RE.pattern + r"\s+\d{1,2}\b", " ", plain)  # "March 22"
        plain = YEAR_RE.sub("", plain)
        return bool(_QUANTITY_RE.search(plain))
    if kind == "date":
        return bool(YEAR_RE.search(text) or MONTH_RE.search(text))
    return True


def units_of(passage: StoredPassage) -> list[tuple[str, tuple[int, ...]]]:
    """A passage's quotable units; text that addresses a model is never quoted."""
    return [
        (u, n) if not looks_like_instructions(u) else ("", n)
        for u, n in quotable_units(passage.kind, passage.text)
    ]


def _claim_text(unit: str) -> str:
    return plain_text(unit).removeprefix("- ").strip()


def whole_list(passage: StoredPassage) -> str:
    """A list passage as an answer: its heading, then its items."""
    items = [_claim_text(line) for line, _ in units_of(passage) if line]
    heading = passage.section_path[-1] if passage.section else ""
    return (f"{heading}:\n" if heading else "") + "\n".join(f"- {i}" for i in items)


class DecidesWhole:
    """A generator that decides on the whole answer before any of it is shown."""

    def generate(self, question: str, evidence: list[Evidence], search: SearchResult) -> Draft:
        raise NotImplementedError

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


class ExtractiveGenerator(DecidesWhole):
    """No language model: the passages' own sentences that best answer the question.

    A sentence scores the mean of its cosine similarity to the question and the
    weighted share of question terms it contains, blended with its passage's
    relevance. When the best sentence scores under `min_relevance` the answer is
    a refusal.
    """

    name = "extractive"

    def __init__(
        self,
        embedder: Embedder,
        retriever: Retriever,
        *,
        min_relevance: float,
        max_sentences: int = 3,
        evidence_passages: int = 4,
        rules: bool = True,
        similar: Similarity | None = None,
    ) -> None:
        self.embedder = embedder
        self.retriever = retriever
        self.min_relevance = min_relevance
        self.rules = rules
        self.similar = similar
        self.max_sentences = max_sentences
        self.evidence_passages = evidence_passages

    def rank(self, question: str, evidence: list[Evidence], search: SearchResult) -> list[Unit]:
        """Every quotable unit of the first passages, scored against the question."""
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
            return []
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
        ranked = []
        for (e_index, position, unit, notes), cos in zip(units, cosine, strict=True):
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
            score = (0.7 * sentence + 0.3 * item.score + bonus) * (1 - 0.6 * missing) * typed
            ranked.append(Unit(e_index, position, unit, notes, float(score)))
        return ranked

    def generate(self, question: str, evidence: list[Evidence], search: SearchResult) -> Draft:
        if not evidence:
            return Draft(False, reason="nothing in the index is related to the question")
        ranked = self.rank(question, evidence, search)
        if not ranked:
            return Draft(False, reason="the retrieved passages hold no text")
        units = [(u.evidence, u.position, u.text, u.notes) for u in ranked]
        scores = [u.score for u in ranked]
        best = int(np.argmax(scores))
        relevance = round(float(scores[best]), 4)
        if relevance < self.min_relevance:
            return too_far(relevance, self.min_relevance)
        if self.rules:
            # Sentences that cannot answer what is asked (no number for "how many",
            # a rough period for "on what date") are set aside, whatever their score.
            part = analyse_question(question).parts[0]
            snapshot = self.retriever.snapshot()
            acronyms = self.retriever.acronyms()
            failure = None
            for i, unit in enumerate(ranked):
                passage = evidence[unit.evidence].passage
                text = passage.text if unit.position < 0 else unit.text
                why = unmet(
                    part,
                    [text],
                    unit_context(passage, unit.text, snapshot),
                    acronyms,
                    always_named=passage.document_title,
                    names=False,
                    similar=self.similar,
                )
                if why is not None:
                    failure = failure or (scores[i], why)
                    scores[i] = 0.0
            # The passages address the question (the gate above); the best sentence
            # that fits it may score a little lower than one that does not.
            best = int(np.argmax(scores))
            if scores[best] < self.min_relevance * FITTING_SHARE:
                return Draft(
                    False,
                    reason=f"the passages do not answer it as asked: {failure[1] if failure else 'no sentence fits'}",
                    relevance=relevance,
                )
        best_item = evidence[units[best][0]]
        if units[best][1] == -1:
            # A list answers as a whole: the analyst asked for its items.
            text = whole_list(best_item.passage)
            return Draft(True, [Claim(text, best_item.passage.id, best_item.passage.text)], relevance=relevance)

        floor = max(min(self.min_relevance, scores[best]), scores[best] - 0.08)
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
    """A piece of the answer, already verified and cited, in order (empty: nothing
    new yet, the answer is still being made)."""

    text: str


@dataclass(frozen=True)
class DoneEvent:
    result: AnswerResult


class PremiseChecker(Protocol):
    def corrections(self, plan: QuestionPlan) -> list[Any]: ...


@dataclass
class Checks:
    """What every answer passes before it is shown, whatever wrote it: the
    rules of `service.answer.checks` (names, kind of answer, qualifiers) and, when a
    model is at hand, its graded verdict that the sentences answer the part."""

    rules: bool = True
    model: AnswerCheck | None = None
    min_confidence: float = 0.5
    similar: Similarity | None = None  # phrase similarity, for what a number counts
    premises: PremiseChecker | None = None  # finds assumptions the papers contradict

    @property
    def name(self) -> str:
        return "rules+model" if self.model is not None and self.rules else ("model" if self.model else "rules" if self.rules else "none")


@dataclass
class PartOutcome:
    part: Part
    claims: list[Claim]
    answered: bool
    reason: str | None = None
    confidence: float | None = None
    relevance: float | None = None


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
    note_text = " ".join(n.text for n in snapshot.endnotes(passage.document_id, notes)) if notes else ""
    before = previous_unit(passage, quote)
    dated = relative_years(f"{before} {quote or ''}", snapshot.documents.get(passage.document_id))
    return f"{passage.section} {before} {note_text} {dated}".strip()


_RELATIVE_YEAR_RE = re.compile(r"\b(this|last|next|the current|the previous|the coming) year\b", re.IGNORECASE)
_YEAR_OFFSET = {"this": 0, "the current": 0, "last": -1, "the previous": -1, "next": 1, "the coming": 1}


def relative_years(text: str, document: DocumentRecord | None) -> str:
    """"This year" in a paper dated 2025-07 is 2025: the years such phrases name,
    so that a question asking about 2025 finds them."""
    if document is None or not document.date or not document.date[:4].isdigit():
        return ""
    year = int(document.date[:4])
    found = {year + _YEAR_OFFSET[m.group(1).lower()] for m in _RELATIVE_YEAR_RE.finditer(text)}
    return " ".join(str(y) for y in sorted(found))


def check_part(
    part: Part,
    claims: list[Claim],
    passages: dict[str, StoredPassage],
    snapshot: Snapshot,
    acronyms: dict[str, str],
    checks: Checks,
    *,
    asked: str,
    confidence: float | None = None,
) -> tuple[str | None, float | None]:
    """(why the claims do not answer the part, or None; the model's confidence)."""
    if not claims:
        return "no supported claim", confidence
    quotes = [c.quote or c.text for c in claims]
    if checks.rules:
        context = " ".join(unit_context(passages[c.passage_id], c.quote, snapshot) for c in claims)
        title = " ".join({passages[c.passage_id].document_title for c in claims})
        reason = unmet(part, quotes, context, acronyms, always_named=title, similar=checks.similar)
        if reason is not None:
            return f"the passages do not answer it as asked: {reason}", confidence
    if checks.model is not None:
        if confidence is None:
            confidence = round(checks.model.score(asked, [plain_text(q) for q in quotes]), 4)
        if confidence < checks.min_confidence:
            return (
                f"the closest sentences do not answer it as asked (confidence {confidence:.2f}, "
                f"below {checks.min_confidence:.2f})"
            ), confidence
    return None, confidence


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
