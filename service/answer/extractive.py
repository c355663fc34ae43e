"""The extractive generator: no language model, the passages' own sentences
that best answer the question."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from ingest.embed import Embedder
from ingest.index.reader import Snapshot
from ingest.text import strip_superscripts
from service.answer.checks import MONTH_RE, YEAR_RE, Similarity, unmet
from service.answer.evidence import (
    _claim_text,
    too_far,
    unit_context,
    units_of,
    whole_list,
)
from service.answer.question import analyse_question
from service.answer.types import (
    Claim,
    Draft,
    Evidence,
    Unit,
)
from service.retrieve import Retriever, SearchResult
from service.text import entities, mentions

# Of the relevance that says the passages address a question, the share the best
# sentence that fits what is asked must reach.
FITTING_SHARE = 0.6


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
        plain = re.sub(MONTH_RE.pattern + r"\s+\d{1,2}\b", " ", plain)  # "March 22"
        plain = YEAR_RE.sub("", plain)
        return bool(_QUANTITY_RE.search(plain))
    if kind == "date":
        return bool(YEAR_RE.search(text) or MONTH_RE.search(text))
    return True


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


@dataclass(frozen=True)
class SentenceWeights:
    """How the extractive scorer weighs a sentence against the question."""

    # A sentence's own score: its similarity to the question and the share of the
    # question's concepts it (with its endnotes) names, equally.
    cosine: float = 0.5
    coverage: float = 0.5
    # Blended with the retrieval score of its passage, which sees the context.
    sentence: float = 0.7
    passage: float = 0.3
    # It cites the endnote its passage was found through.
    endnote_bonus: float = 0.05
    # The share of the score lost when it names none of the question's names
    # ("the population of Kyrgyzstan" is not answered by one about Kazakhstan).
    missing_names: float = 0.6
    # The factor for a sentence without the kind of answer asked (no quantity for
    # "how many", no date for "when").
    untyped: float = 0.75
    # Sentences this close to the best one join it in the answer.
    close_margin: float = 0.08
    # The most sentences quoted from one passage.
    per_passage: int = 2


class ExtractiveGenerator(DecidesWhole):
    """No language model: the passages' own sentences that best answer the question.

    A sentence scores the mean of its cosine similarity to the question and the
    weighted share of question terms it contains, blended with its passage's
    relevance (`SentenceWeights`). When the best sentence scores under
    `min_relevance` the answer is a refusal.
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
        weights: SentenceWeights | None = None,
    ) -> None:
        self.embedder = embedder
        self.retriever = retriever
        self.min_relevance = min_relevance
        self.rules = rules
        self.similar = similar
        self.max_sentences = max_sentences
        self.evidence_passages = evidence_passages
        self.weights = weights or SentenceWeights()

    def rank(self, question: str, evidence: list[Evidence], search: SearchResult) -> list[Unit]:
        """Every quotable unit of the first passages, scored against the question."""
        units = self._units(evidence)
        if not units:
            return []
        snapshot = self.retriever.snapshot()
        stored = snapshot.sentence_vectors(e.passage.id for e in evidence[: self.evidence_passages])
        cosine = self._cosines(units, evidence, search, stored)
        lexical = self.retriever.lexical()
        tokenize = self.retriever.tokenizer
        acronyms = self.retriever.acronyms()
        names = entities(question)
        wanted = answer_type(question)
        note_text = self._note_texts(evidence, snapshot)
        w = self.weights
        ranked = []
        for unit, cos in zip(units, cosine, strict=True):
            item = evidence[unit.evidence]
            doc = item.passage.document_id
            sources = " ".join(note_text.get((doc, n), "") for n in unit.notes)
            cover = lexical.coverage(search.query, set(tokenize(f"{unit.text} {sources}")))
            sentence = w.cosine * max(float(cos), 0.0) + w.coverage * cover
            cites_route = item.via_endnote is not None and item.via_endnote in unit.notes
            bonus = w.endnote_bonus if cites_route else 0.0
            # A sentence that leaves out a name or number the question asks about
            # ("the population of Kyrgyzstan") is about something else.
            context = f"{item.passage.section} {unit.text} {sources}"
            missing = sum(not mentions(n, context, acronyms) for n in names) / max(len(names), 1)
            # A "how many" question is not answered by a sentence without a quantity,
            # nor a "when" question by one without a date.
            typed = 1.0 if answer_type_present(wanted, unit.text) else w.untyped
            blended = w.sentence * sentence + w.passage * item.score + bonus
            score = blended * (1 - w.missing_names * missing) * typed
            ranked.append(replace(unit, score=float(score)))
        return ranked

    def _units(self, evidence: list[Evidence]) -> list[Unit]:
        """The quotable units of the first passages, unscored; a list passage also
        competes whole, under its heading ("what are X's goals?")."""
        units: list[Unit] = []
        for e_index, item in enumerate(evidence[: self.evidence_passages]):
            if item.passage.kind == "list":
                heading = item.passage.section_path[-1] if item.passage.section else ""
                units.append(Unit(e_index, -1, f"{heading}\n{item.passage.text}", (), 0.0))
            for position, (text, notes) in enumerate(units_of(item.passage)):
                if text:
                    units.append(Unit(e_index, position, text, notes, 0.0))
        return units

    def _cosines(
        self,
        units: list[Unit],
        evidence: list[Evidence],
        search: SearchResult,
        stored: dict[str, np.ndarray],
    ) -> np.ndarray:
        """Each unit's similarity to the question: from the sentence vectors stored
        at ingest, or embedded now (a whole list, an index without them)."""
        cosine = np.zeros(len(units), dtype=np.float32)
        to_embed: list[int] = []
        for i, unit in enumerate(units):
            matrix = stored.get(evidence[unit.evidence].passage.id)
            if unit.position >= 0 and matrix is not None and unit.position < len(matrix):
                cosine[i] = float(matrix[unit.position] @ search.query_vector)
            else:
                to_embed.append(i)
        if to_embed:
            texts = [_claim_text(units[i].text) for i in to_embed]
            fresh = np.asarray(self.embedder.embed_texts(texts))
            cosine[to_embed] = fresh @ search.query_vector
        return cosine

    def _note_texts(
        self, evidence: list[Evidence], snapshot: Snapshot
    ) -> dict[tuple[str, int], str]:
        """The endnotes behind the first passages, by (document, number)."""
        note_text: dict[tuple[str, int], str] = {}
        for item in evidence[: self.evidence_passages]:
            p = item.passage
            for note in snapshot.endnotes(p.document_id, p.endnotes):
                note_text[(p.document_id, note.endnote_number or 0)] = note.text
        return note_text

    def generate(self, question: str, evidence: list[Evidence], search: SearchResult) -> Draft:
        if not evidence:
            return Draft(False, reason="nothing in the index is related to the question")
        ranked = self.rank(question, evidence, search)
        if not ranked:
            return Draft(False, reason="the retrieved passages hold no text")
        scores = [u.score for u in ranked]
        relevance = round(float(scores[int(np.argmax(scores))]), 4)
        if relevance < self.min_relevance:
            return too_far(relevance, self.min_relevance)
        if self.rules:
            failure = self._set_aside(question, ranked, evidence, scores)
            # The passages address the question (the gate above); the best sentence
            # that fits it may score a little lower than one that does not.
            if max(scores) < self.min_relevance * FITTING_SHARE:
                why = failure or "no sentence fits"
                return Draft(
                    False,
                    reason=f"the passages do not answer it as asked: {why}",
                    relevance=relevance,
                )
        best = int(np.argmax(scores))
        top = ranked[best]
        if top.position == -1:
            # A list answers as a whole: the analyst asked for its items.
            passage = evidence[top.evidence].passage
            claim = Claim(whole_list(passage), passage.id, passage.text)
            return Draft(True, [claim], relevance=relevance)
        picked = self._pick(ranked, scores, best)
        claims = [
            Claim(_claim_text(u.text), evidence[u.evidence].passage.id, u.text.strip(), u.notes)
            for u in picked
        ]
        return Draft(True, claims, relevance=relevance)

    def _set_aside(
        self, question: str, ranked: list[Unit], evidence: list[Evidence], scores: list[float]
    ) -> str | None:
        """Sentences that cannot answer what is asked (no number for "how many",
        a rough period for "on what date") get no score, whatever they scored;
        returns why the best of them was set aside."""
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
                always_named=snapshot.known_as(passage.document_id),
                names=False,
                similar=self.similar,
            )
            if why is not None:
                failure = failure or why
                scores[i] = 0.0
        return failure

    def _pick(self, ranked: list[Unit], scores: list[float], best: int) -> list[Unit]:
        """The best sentence and those close to it, at most `per_passage` from one
        passage and `max_sentences` in all, in the passages' order."""
        w = self.weights
        floor = max(min(self.min_relevance, scores[best]), scores[best] - w.close_margin)
        chosen = sorted(
            (i for i in range(len(ranked)) if scores[i] >= floor),
            key=lambda i: scores[i],
            reverse=True,
        )
        picked: list[Unit] = []
        per_passage: dict[int, int] = {}
        lead = ranked[best].evidence
        for i in chosen:
            unit = ranked[i]
            if per_passage.get(unit.evidence, 0) >= w.per_passage:
                continue
            if len(picked) >= self.max_sentences:
                continue
            if unit.text.startswith("- ") and unit.evidence != lead:
                continue
            picked.append(unit)
            per_passage[unit.evidence] = per_passage.get(unit.evidence, 0) + 1
        picked.sort(key=lambda u: (u.evidence, u.position))
        return picked
