"""Answers the model selects and code writes.

The passages' sentences are ranked against the question (the extractive
scorer), those that cannot answer it are set aside by rule (a "how many"
question needs a number, a "bilateral" one a bilateral figure), and the
language model gives each remaining candidate a graded verdict: does this
sentence answer the question as asked? The answer quotes the sentences it
accepts, word for word, each with its citation; when it accepts none, the
question is not answered. The model never writes a word of the answer, so
nothing it says can misquote a source.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ingest.text import plain_text
from service.answer.answerability import AnswerCheck
from service.answer.checks import kind_present, unmet, unnamed
from service.answer.evidence import (
    _claim_text,
    introduced_list,
    too_far,
    unit_context,
    whole_list,
)
from service.answer.extractive import DecidesWhole, ExtractiveGenerator
from service.answer.gate import Checks
from service.answer.pipeline import about
from service.answer.question import Part, analyse_question
from service.answer.reader import SpanReader
from service.answer.types import Claim, Draft, Evidence, Unit
from service.errors import GeneratorBusy
from service.query import is_list_question
from service.retrieve import SearchResult

_PLURAL_ASK_RE = re.compile(
    r"\b(?:which|what)\s+(?:[a-z]+\s+)??([a-z]{3,}s)\b|\b(?:who|what|which) are\b", re.IGNORECASE
)
_NOT_PLURAL = frozenset(
    "this its his has was does is always perhaps unless less news series status".split()
)


def asks_for_several(question: str) -> bool:
    """ "Which cities ...", "what documents ...", "who are ...": more than one thing."""
    for m in _PLURAL_ASK_RE.finditer(question):
        if m.group(1) is None or m.group(1).lower() not in _NOT_PLURAL:
            return True
    return False


# A candidate sentence may sit this share of `min_relevance` below it: the
# model's verdict, not relevance alone, decides whether it answers.
CANDIDATE_FLOOR = 0.75


@dataclass
class _Candidates:
    units: list[Unit] = field(default_factory=list)
    whole: dict[int, bool] = field(default_factory=dict)  # unit -> names everything asked
    first_failure: str | None = None  # why the best ruled-out sentence was ruled out


@dataclass
class _Turn:
    """One hold of the shared model: when it was asked for, got and given back."""

    asked: float
    began: float = 0.0
    ended: float = 0.0

    def stats(self, prompt_tokens: int, completion_tokens: int) -> dict[str, float]:
        """The generation figures of the decision (whole once the model is done)."""
        spent = round((self.ended - self.began) * 1000, 1)
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "ttft_ms": spent,
            "generate_ms": spent,
            "queue_ms": round((self.began - self.asked) * 1000, 1),
        }


@dataclass(frozen=True)
class _Verdict:
    verdict: float  # the model's P(the sentence answers the question as asked)
    unit: Unit


class SelectGenerator(DecidesWhole):
    """The model selects which of the ranked sentences answer; code quotes them."""

    def __init__(
        self,
        extractive: ExtractiveGenerator,
        check: AnswerCheck,
        checks: Checks,
        *,
        reader: SpanReader | None = None,
        model_name: str = "local",
        candidates: int = 4,
        min_confidence: float = 0.5,
        min_relevance: float = 0.3,
        max_sentences: int = 2,
        close_call: float = 0.1,
        relevance_weight: float = 1.0,
        queue_timeout_s: float = 20.0,
    ) -> None:
        self.extractive = extractive
        self.check = check
        self.reader = reader  # the model copies the answer's words instead of giving verdicts
        self.checks = checks
        self.name = model_name
        self.candidates = candidates
        self.min_confidence = min_confidence
        self.min_relevance = min_relevance
        self.close_call = close_call
        # The model's verdict decides whether a sentence answers; which of the
        # accepted sentences comes first weighs the verdict with the sentence's
        # relevance to the question (two noisy judges agree more often than one).
        self.relevance_weight = relevance_weight
        self.max_sentences = max_sentences
        self.queue_timeout_s = queue_timeout_s
        self._lock = threading.Lock()

    def _text(self, unit: Unit, evidence: list[Evidence]) -> str:
        return (
            _claim_text(unit.text)
            if unit.position >= 0
            else whole_list(evidence[unit.evidence].passage)
        )

    def generate(self, question: str, evidence: list[Evidence], search: SearchResult) -> Draft:
        if not evidence:
            return Draft(False, reason="nothing in the index is related to the question")
        ranked = sorted(self.extractive.rank(question, evidence, search), key=lambda u: -u.score)
        if not ranked:
            return Draft(False, reason="the retrieved passages hold no text")
        relevance = round(ranked[0].score, 4)
        if relevance < self.min_relevance:
            return too_far(relevance, self.min_relevance)
        part: Part = analyse_question(question).parts[0]
        wants_list = part.asks == "list" or is_list_question(question)
        # A second sentence joins the best one when it continues the same passage,
        # or when the question asks for several things ("which cities").
        several = wants_list or asks_for_several(question)
        found = self._candidates(part, ranked, evidence, several=several)
        if not found.units:
            failure = found.first_failure or "no candidate sentence"
            return Draft(
                False,
                reason=f"the passages do not answer it as asked: {failure}",
                relevance=relevance,
            )
        judged = question if search.query.text == question else about(question, search.query.text)
        if self.reader is not None:
            return self._read(judged, part, found.units, evidence, relevance)
        verdicts, stats = self._judge(judged, found.units, evidence)
        order = {id(v.unit): v.verdict + self.relevance_weight * v.unit.score for v in verdicts}
        ranked_verdicts = self._rank(verdicts, order, found.whole)
        best = round(ranked_verdicts[0].verdict, 4)
        chosen = self._choose(ranked_verdicts, order, several=several)
        if not chosen:
            return Draft(
                False,
                reason=(
                    f"no sentence answers it as asked (the model's best verdict {best:.2f}, "
                    f"below {self.min_confidence:.2f})"
                ),
                relevance=relevance,
                confidence=best,
                stats=stats,
            )
        claims = self._claims(chosen, evidence)
        return Draft(True, claims, relevance=relevance, confidence=best, stats=stats)

    def _candidates(
        self, part: Part, ranked: list[Unit], evidence: list[Evidence], *, several: bool
    ) -> _Candidates:
        """The best-ranked sentences the rules do not rule out, up to `candidates`."""
        snapshot = self.extractive.retriever.snapshot()
        acronyms = self.extractive.retriever.acronyms()
        found = _Candidates()
        seen: set[str] = set()
        floor = self.min_relevance * CANDIDATE_FLOOR
        for unit in ranked:
            if len(found.units) >= self.candidates:
                break
            if unit.position < 0 and not several:
                continue  # a whole list answers a question that asks for several things
            text = self._text(unit, evidence)
            if text in seen or unit.score < floor:
                continue
            seen.add(text)
            passage = evidence[unit.evidence].passage
            context = unit_context(passage, unit.text, snapshot)
            title = snapshot.known_as(passage.document_id)
            failure = unmet(
                part,
                [text],
                context,
                acronyms,
                always_named=title,
                names=False,
                similar=self.checks.similar,
            )
            if failure is not None:
                found.first_failure = found.first_failure or failure
                continue
            found.units.append(unit)
            missing = unnamed(
                part, [text], context, acronyms, always_named=title, around=passage.text
            )
            found.whole[id(unit)] = missing is None
        return found

    def _read(
        self, judged: str, part: Part, units: list[Unit], evidence: list[Evidence], relevance: float
    ) -> Draft:
        """The model copies the words that answer from the candidates; the
        sentence holding them is quoted when they are the kind of answer asked."""
        assert self.reader is not None
        texts = [plain_text(self._text(u, evidence)) for u in units]
        with self._model_turn() as turn:
            reading = self.reader.read(judged, part.asks, texts)
        stats = turn.stats(reading.prompt_tokens, len(reading.words.split()) or 1)
        if reading.sentence is None:
            return Draft(
                False,
                reason="no sentence answers it as asked (the model found no words that do)",
                relevance=relevance,
                confidence=0.0,
                stats=stats,
            )
        if not kind_present(part, reading.words, self.checks.similar):
            return Draft(
                False,
                reason=f"the words the model found (“{reading.words}”) are not the kind of "
                "answer asked",
                relevance=relevance,
                confidence=0.0,
                stats=stats,
            )
        claims = self._claims([units[reading.sentence]], evidence)
        return Draft(True, claims, relevance=relevance, confidence=1.0, stats=stats)

    def _judge(
        self, judged: str, units: list[Unit], evidence: list[Evidence]
    ) -> tuple[list[_Verdict], dict[str, float]]:
        """The model's verdict on each candidate, one at a time (the model is shared),
        with the generation figures of the whole judgement."""
        read_before = self.check.prompt_tokens
        with self._model_turn() as turn:
            verdicts = [
                _Verdict(self.check.score(judged, [plain_text(self._text(u, evidence))]), u)
                for u in units
            ]
        # One verdict token per candidate sentence.
        return verdicts, turn.stats(self.check.prompt_tokens - read_before, len(verdicts))

    @contextmanager
    def _model_turn(self) -> Iterator[_Turn]:
        """The shared model held for one decision, after waiting at most
        `queue_timeout_s` for it (then GeneratorBusy); times the wait and the use."""
        turn = _Turn(time.monotonic())
        if not self._lock.acquire(timeout=self.queue_timeout_s):
            raise GeneratorBusy(
                f"the language model is busy; try again in a few seconds "
                f"(waited {self.queue_timeout_s:.0f} s)"
            )
        turn.began = time.monotonic()
        try:
            yield turn
        finally:
            self._lock.release()
            turn.ended = time.monotonic()

    def _rank(
        self, verdicts: list[_Verdict], order: dict[int, float], whole: dict[int, bool]
    ) -> list[_Verdict]:
        """Accepted sentences first, by verdict and relevance; the rest by verdict."""
        ranked = sorted(
            verdicts,
            key=lambda v: -(v.verdict if v.verdict < self.min_confidence else order[id(v.unit)]),
        )
        ranked.sort(key=lambda v: v.verdict < self.min_confidence)
        # A sentence that names everything the question names goes first when the
        # model accepts it, ahead of a surer one that leaves a name out.
        if not whole[id(ranked[0].unit)]:
            complete = [
                i
                for i, v in enumerate(ranked)
                if v.verdict >= self.min_confidence and whole[id(v.unit)]
            ]
            if complete:
                ranked.insert(0, ranked.pop(complete[0]))
        return ranked

    def _choose(
        self, ranked: list[_Verdict], order: dict[int, float], *, several: bool
    ) -> list[Unit]:
        """The best sentence, and others the model holds about as sure (an answer
        may take two sentences); a whole list answers alone."""
        top = ranked[0].unit
        chosen = [
            v.unit
            for i, v in enumerate(ranked)
            if v.verdict >= self.min_confidence
            and (
                i == 0
                or (
                    order[id(v.unit)] >= order[id(top)] - self.close_call
                    and (several or v.unit.evidence == top.evidence)
                )
            )
        ][: self.max_sentences]
        if chosen and chosen[0].position < 0:
            chosen = chosen[:1]
        else:
            chosen = [u for u in chosen if u.position >= 0]
        chosen.sort(key=lambda u: (u.evidence, u.position))
        return chosen

    def _claims(self, units: list[Unit], evidence: list[Evidence]) -> list[Claim]:
        """The chosen sentences quoted; one that announces a list ("agreed to do
        the following:") brings the list's items after it."""
        claims = []
        for unit in units:
            claims.append(self._claim(unit, evidence))
            if unit.position < 0:
                continue
            listed = introduced_list(unit.text, evidence[unit.evidence].passage, evidence)
            if listed is not None and all(c.passage_id != listed.passage.id for c in claims):
                text = whole_list(listed.passage, heading=False)
                claims.append(Claim(text, listed.passage.id, listed.passage.text))
        return claims

    def _claim(self, unit: Unit, evidence: list[Evidence]) -> Claim:
        passage = evidence[unit.evidence].passage
        quote = passage.text if unit.position < 0 else unit.text.strip()
        return Claim(self._text(unit, evidence), passage.id, quote, unit.notes)
