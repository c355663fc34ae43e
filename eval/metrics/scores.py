"""Metrics that need no judge: retrieval, answer correctness and refusal. The
judged ones are in `eval.metrics.support` and `eval.metrics.citations`.

Spans, passages and answers are compared as normalised plain text (markdown
and endnote markers removed, quotes unified, whitespace collapsed, thousands
separators dropped), so "4,000" matches "4000" and ’ matches '.
"""

from __future__ import annotations

import re

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
    first = next(
        (i for i, p in enumerate(passages[:10]) if any(contains(p, s) for s in spans)), None
    )
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
