"""What every answer passes before it is shown, whatever wrote it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ingest.index.reader import Snapshot
from ingest.index.records import StoredPassage
from ingest.text import plain_text
from service.answer.answerability import AnswerCheck
from service.answer.checks import Similarity, unmet
from service.answer.evidence import (
    unit_context,
)
from service.answer.question import Part, QuestionPlan
from service.answer.types import (
    Claim,
)
from service.retrieve import Retriever


class PremiseChecker(Protocol):
    def corrections(self, plan: QuestionPlan, retriever: Retriever | None = None) -> list[Any]: ...


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
        return (
            "rules+model"
            if self.model is not None and self.rules
            else ("model" if self.model else "rules" if self.rules else "none")
        )


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
        cited = {c.passage_id: passages[c.passage_id] for c in claims}.values()
        title = " ".join({snapshot.known_as(p.document_id) for p in cited})
        around = " ".join(p.text for p in cited)
        reason = unmet(
            part,
            quotes,
            context,
            acronyms,
            always_named=title,
            around=around,
            similar=checks.similar,
        )
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
