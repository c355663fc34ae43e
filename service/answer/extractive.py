"""The extractive generator: no language model, the passages' own sentences that best answer the question."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import numpy as np

from ingest.embed import Embedder
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

