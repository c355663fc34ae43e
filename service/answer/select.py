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

from ingest.text import plain_text
from service.answer.gate import Checks
from service.answer.pipeline import about
from service.answer.extractive import DecidesWhole, ExtractiveGenerator
from service.answer.evidence import _claim_text, too_far, unit_context, whole_list
from service.answer.types import Claim, Draft, Evidence, Unit
from service.answer.answerability import AnswerCheck
from service.answer.checks import unnamed, unmet
from service.errors import GeneratorBusy
from service.query import is_list_question
from service.answer.question import Part, analyse_question
from service.retrieve import SearchResult


_PLURAL_ASK_RE = re.compile(r"\b(?:which|what)\s+(?:[a-z]+\s+)??([a-z]{3,}s)\b|\b(?:who|what|which) are\b", re.IGNORECASE)
_NOT_PLURAL = frozenset("this its his has was does is always perhaps unless less news series status".split())


def asks_for_several(question: str) -> bool:
    """"Which cities ...", "what documents ...", "who are ...": more than one thing."""
    for m in _PLURAL_ASK_RE.finditer(question):
        if m.group(1) is None or m.group(1).lower() not in _NOT_PLURAL:
            return True
    return False


class SelectGenerator(DecidesWhole):
    def __init__(
        self,
        extractive: ExtractiveGenerator,
        check: AnswerCheck,
        checks: Checks,
        *,
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
        return _claim_text(unit.text) if unit.position >= 0 else whole_list(evidence[unit.evidence].passage)

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
        snapshot = self.extractive.retriever.snapshot()
        acronyms = self.extractive.retriever.acronyms()
        candidates: list[Unit] = []
        whole: dict[int, bool] = {}  # candidate -> it names everything asked on its own
        first_failure = None
        seen: set[str] = set()
        wants_list = part.asks == "list" or is_list_question(question)
        # A second sentence joins the best one when it continues the same passage,
        # or when the question asks for several things ("which cities").
        several = wants_list or asks_for_several(question)
        for unit in ranked:
            if len(candidates) >= self.candidates:
                break
            if unit.position < 0 and not several:
                continue  # a whole list answers a question that asks for several things
            text = self._text(unit, evidence)
            if text in seen or unit.score < self.min_relevance * 0.75:
                continue
            seen.add(text)
            passage = evidence[unit.evidence].passage
            context = unit_context(passage, unit.text, snapshot)
            failure = unmet(
                part,
                [text],
                context,
                acronyms,
                always_named=passage.document_title,
                names=False,
                similar=self.checks.similar,
            )
            if failure is not None:
                first_failure = first_failure or failure
                continue
            candidates.append(unit)
            whole[id(unit)] = unnamed(part, [text], context, acronyms, always_named=passage.document_title) is None
        if not candidates:
            return Draft(
                False,
                reason=f"the passages do not answer it as asked: {first_failure or 'no candidate sentence'}",
                relevance=relevance,
            )
        asked = time.monotonic()
        if not self._lock.acquire(timeout=self.queue_timeout_s):
            raise GeneratorBusy(
                f"the language model is busy; try again in a few seconds "
                f"(waited {self.queue_timeout_s:.0f} s)"
            )
        began = time.monotonic()
        waited = (began - asked) * 1000
        read_before = self.check.prompt_tokens
        try:
            judged = question if search.query.text == question else about(question, search.query.text)
            scored = [
                (self.check.score(judged, [plain_text(self._text(u, evidence))]), u) for u in candidates
            ]
        finally:
            self._lock.release()
        spent = (time.monotonic() - began) * 1000
        order = {id(u): p + self.relevance_weight * u.score for p, u in scored}
        scored.sort(key=lambda pair: -(pair[0] if pair[0] < self.min_confidence else order[id(pair[1])]))
        scored.sort(key=lambda pair: pair[0] < self.min_confidence)
        # A sentence that names everything the question names goes first when the
        # model accepts it, ahead of a surer one that leaves a name out.
        if not whole[id(scored[0][1])]:
            complete = [i for i, (p, u) in enumerate(scored) if p >= self.min_confidence and whole[id(u)]]
            if complete:
                scored.insert(0, scored.pop(complete[0]))
        best = round(scored[0][0], 4)
        stats = {
            "prompt_tokens": self.check.prompt_tokens - read_before,
            "completion_tokens": len(scored),  # one verdict token per candidate sentence
            "ttft_ms": round(spent, 1),  # the answer is whole once the verdicts are in
            "generate_ms": round(spent, 1),
            "queue_ms": round(waited, 1),
        }
        # The best sentence, and others the model holds about as sure (an answer
        # may take two sentences); a whole list answers alone.
        chosen = [
            u
            for i, (p, u) in enumerate(scored)
            if p >= self.min_confidence
            and (
                i == 0
                or (
                    order[id(u)] >= order[id(scored[0][1])] - self.close_call
                    and (several or u.evidence == scored[0][1].evidence)
                )
            )
        ][: self.max_sentences]
        if chosen and chosen[0].position < 0:
            chosen = chosen[:1]
        else:
            chosen = [u for u in chosen if u.position >= 0]
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
        chosen.sort(key=lambda u: (u.evidence, u.position))
        claims = []
        for unit in chosen:
            passage = evidence[unit.evidence].passage
            quote = passage.text if unit.position < 0 else unit.text.strip()
            claims.append(Claim(self._text(unit, evidence), passage.id, quote, unit.notes))
        return Draft(True, claims, relevance=relevance, confidence=best, stats=stats)
