"""Citation recall and precision (ALCE: Gao et al., 2023, "Enabling Large
Language Models to Generate Text with Citations") as ragas single-turn metrics.

The sample's `retrieved_contexts[n-1]` is the passage behind marker [n].
Recall: a statement scores 1 when its cited passages together support it.
Precision: a citation is irrelevant when it does not support the statement
alone and the other citations support it without it; a statement that its
citations do not support gets no precision credit.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ragas.metrics.base import MetricType, MetricWithLLM, SingleTurnMetric
from ragas.prompt import PydanticPrompt

from eval.metrics.scores import statements
from eval.metrics.support import SupportPrompt, supported


def cited(sample: t.Any) -> list[tuple[str, list[str]]]:
    """Each statement of the response with the passages its markers point at."""
    contexts = sample.retrieved_contexts or []
    return [
        (text, [contexts[r - 1] for r in refs if 0 < r <= len(contexts)])
        for text, refs in statements(sample.response or "")
    ]


def _columns() -> dict[MetricType, set[str]]:
    return {MetricType.SINGLE_TURN: {"response", "retrieved_contexts"}}


@dataclass
class _CitationMetric(MetricWithLLM, SingleTurnMetric):  # type: ignore[misc]
    """What both citation metrics share: their columns and the support judgement."""

    _required_columns: dict[MetricType, set[str]] = field(default_factory=_columns)
    support_prompt: PydanticPrompt = field(default_factory=SupportPrompt)

    async def _supports(self, passages: list[str], statement: str) -> bool:
        return await supported(self.support_prompt, self.llm, "\n\n".join(passages), statement)


@dataclass
class CitationRecall(_CitationMetric):
    """Share of statements that their cited passages together support."""

    name: str = "citation_recall"

    async def _single_turn_ascore(self, sample: t.Any, callbacks: t.Any = None) -> float:
        items = cited(sample)
        if not items:
            return 0.0
        hits = 0
        for text, passages in items:
            if passages and await self._supports(passages, text):
                hits += 1
        return hits / len(items)


@dataclass
class CitationPrecision(_CitationMetric):
    """Share of citations that are relevant to a statement they support."""

    name: str = "citation_precision"

    async def _single_turn_ascore(self, sample: t.Any, callbacks: t.Any = None) -> float:
        total = relevant = 0
        for text, passages in cited(sample):
            total += len(passages)
            if passages and await self._supports(passages, text):
                relevant += await self._relevant(passages, text)
        return relevant / total if total else 0.0

    async def _relevant(self, passages: list[str], statement: str) -> int:
        """How many of the passages, which together support the statement, are relevant."""
        if len(passages) == 1:
            return 1
        count = 0
        for i, passage in enumerate(passages):
            alone = await self._supports([passage], statement)
            rest = passages[:i] + passages[i + 1 :]
            if alone or not await self._supports(rest, statement):
                count += 1
        return count


def alce_metrics(prompt: t.Any | None = None) -> tuple[CitationRecall, CitationPrecision]:
    """Citation recall and precision sharing one support prompt."""
    judge_prompt = prompt or SupportPrompt()
    recall = CitationRecall(support_prompt=judge_prompt)
    return recall, CitationPrecision(support_prompt=judge_prompt)
