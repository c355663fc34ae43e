"""Metrics: retrieval, answer correctness and refusal (no judge), and the ALCE
citation metrics as ragas metrics scored by the judge.

Spans, passages and answers are compared as normalised plain text (markdown
and endnote markers removed, quotes unified, whitespace collapsed, thousands
separators dropped), so "4,000" matches "4000" and ’ matches '.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass, field

from ingest.text import plain_text
from service.answer.markers import split_answer

KS = (1, 3, 5, 10)
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


def match_text(text: str) -> str:
    """Text as spans are matched against it."""
    text = plain_text(text).translate(_QUOTES).lower()
    text = re.sub(r"(?m)^- ", "", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = re.sub(r"\s*%", " percent", text)
    return re.sub(r"\s+", " ", text).strip()


def contains(text: str, span: str) -> bool:
    return match_text(span).rstrip(".") in match_text(text)


def retrieval_scores(passages: list[str], spans: list[str]) -> dict[str, float]:
    """hit@k (some top-k passage contains an evidence span), reciprocal rank
    within 10, and evidence recall@k (share of spans found in the top k)."""
    first = next((i for i, p in enumerate(passages[:10]) if any(contains(p, s) for s in spans)), None)
    scores: dict[str, float] = {f"hit@{k}": float(first is not None and first < k) for k in KS}
    scores["mrr@10"] = 0.0 if first is None else 1.0 / (first + 1)
    for k in (5, 10):
        found = sum(any(contains(p, s) for p in passages[:k]) for s in spans)
        scores[f"evidence_recall@{k}"] = found / len(spans) if spans else 0.0
    return scores


def key_facts_present(answer: str, facts: list[str]) -> float:
    if not facts:
        return 0.0
    return sum(contains(answer, f) for f in facts) / len(facts)


def statements(answer: str) -> list[tuple[str, list[int]]]:
    """Answer sentences with the citation markers each carries."""
    return split_answer(answer)


# --- the support judgement and the ALCE metrics --------------------------------


def support_prompt() -> t.Any:
    """A ragas prompt: does the premise support the statement? (0 or 1)."""
    from pydantic import BaseModel, Field
    from ragas.prompt import PydanticPrompt

    class SupportInput(BaseModel):
        premise: str = Field(description="Passages the statement cites.")
        statement: str

    class SupportOutput(BaseModel):
        verdict: int = Field(description="1 if supported, 0 if not.", ge=0, le=1)

    class SupportPrompt(PydanticPrompt[SupportInput, SupportOutput]):
        instruction = (
            "Decide whether the premise supports the statement. Answer verdict 1 only if "
            "everything the statement claims (every number, date, name, place, and who did "
            "what to whom) is stated in the premise or follows directly from it; otherwise 0."
        )
        input_model = SupportInput
        output_model = SupportOutput
        examples = [
            (
                SupportInput(
                    premise="Eight members contributed approximately 4,000 personnel to the drill.",
                    statement="About 4,000 troops from eight members took part in the drill.",
                ),
                SupportOutput(verdict=1),
            ),
            (
                SupportInput(
                    premise="Russia used the unanimity rule to block Chinese proposals.",
                    statement="China blocked Russian proposals.",
                ),
                SupportOutput(verdict=0),
            ),
        ]

    return SupportPrompt()


def names_and_numbers_present(premise: str, statement: str) -> bool:
    """Every number and name the statement states occurs in the premise (in any
    written form). A statement that fails this is not supported, whatever a
    judge says; checked in code before the judge is asked."""
    from service.text import entities, mentions
    from service.text import numbers_in

    if numbers_in(statement) - numbers_in(premise):
        return False
    return all(mentions(name, premise, {}) for name in entities(statement))


async def supported(prompt: t.Any, llm: t.Any, premise: str, statement: str) -> bool:
    if not names_and_numbers_present(premise, statement):
        return False
    result = await prompt.generate(
        llm=llm, data=prompt.input_model(premise=premise, statement=statement)
    )
    return bool(result.verdict)


def alce_metrics(prompt: t.Any | None = None) -> tuple[t.Any, t.Any]:
    """Citation recall and precision (Gao et al., 2023, "Enabling Large Language
    Models to Generate Text with Citations") as ragas single-turn metrics.

    The sample's `retrieved_contexts[n-1]` is the passage behind marker [n].
    Recall: a statement scores 1 when its cited passages together support it.
    Precision: a citation is irrelevant when it does not support the statement
    alone and the other citations support it without it; a statement that its
    citations do not support gets no precision credit.
    """
    from ragas.metrics.base import MetricType, MetricWithLLM, SingleTurnMetric

    judge_prompt = prompt or support_prompt()

    def cited(sample: t.Any) -> list[tuple[str, list[str]]]:
        contexts = sample.retrieved_contexts or []
        out = []
        for text, refs in statements(sample.response or ""):
            out.append((text, [contexts[r - 1] for r in refs if 0 < r <= len(contexts)]))
        return out

    @dataclass
    class CitationRecall(MetricWithLLM, SingleTurnMetric):  # type: ignore[misc]
        name: str = "citation_recall"
        _required_columns: dict[MetricType, set[str]] = field(
            default_factory=lambda: {MetricType.SINGLE_TURN: {"response", "retrieved_contexts"}}
        )

        async def _single_turn_ascore(self, sample: t.Any, callbacks: t.Any = None) -> float:
            items = cited(sample)
            if not items:
                return 0.0
            hits = 0
            for text, passages in items:
                if passages and await supported(judge_prompt, self.llm, "\n\n".join(passages), text):
                    hits += 1
            return hits / len(items)

    @dataclass
    class CitationPrecision(MetricWithLLM, SingleTurnMetric):  # type: ignore[misc]
        name: str = "citation_precision"
        _required_columns: dict[MetricType, set[str]] = field(
            default_factory=lambda: {MetricType.SINGLE_TURN: {"response", "retrieved_contexts"}}
        )

        async def _single_turn_ascore(self, sample: t.Any, callbacks: t.Any = None) -> float:
            total = relevant = 0
            for text, passages in cited(sample):
                total += len(passages)
                if not passages:
                    continue
                if not await supported(judge_prompt, self.llm, "\n\n".join(passages), text):
                    continue
                if len(passages) == 1:
                    relevant += 1
                    continue
                for i, passage in enumerate(passages):
                    alone = await supported(judge_prompt, self.llm, passage, text)
                    rest = passages[:i] + passages[i + 1 :]
                    if alone or not await supported(judge_prompt, self.llm, "\n\n".join(rest), text):
                        relevant += 1
            return relevant / total if total else 0.0

    return CitationRecall(), CitationPrecision()
