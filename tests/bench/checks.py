"""The answer checks (`service.answer.checks`) on every paper of the eval
library, without the language model: how often they let the true answer through
(the evidence spans of answerable questions) and how often they stop the
neighbouring text a near miss is built around (its trap spans).

Each span is read with what the service reads it with: the passage that holds
it, its section and the sentence before it, the paper's abbreviations and its
title, author, publisher and series. Run over the library's index:

    tests/offline.sh env MEMOQA_CORPUS__MANIFEST=eval/library.json \\
        MEMOQA_INDEX__PATH=.memoqa/library/index \\
        MEMOQA_INDEX__LOCK_PATH=.memoqa/library/ingest.lock \\
        .venv/bin/python tests/bench/checks.py [--split dev|test|all] [--show]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from eval.dataset import UNANSWERABLE, EvalItem, GoldEvidence, load_items
from eval.runner import paper_of
from ingest.index.reader import IndexReader
from ingest.index.records import StoredPassage
from ingest.settings import load_configured_embedder
from ingest.text import plain_text
from service.answer.checks import unmet
from service.answer.evidence import unit_context
from service.answer.question import analyse_question
from service.engine import phrase_similarity
from service.retrieve import Retriever
from service.settings import Settings
from service.text import Tokenizer


def _located(span: GoldEvidence, passages: dict[str, list[StoredPassage]]) -> StoredPassage | None:
    """The passage holding the span, if any."""
    flat = plain_text(span.span)
    return next((p for p in passages[span.doc] if flat[:80] in plain_text(p.text)), None)


def verdict(
    item: EvalItem, spans: list[GoldEvidence], retriever: Retriever, passages
) -> str | None:
    """Why the checks turn the spans down for some part of the question; None when they pass."""
    snapshot = retriever.snapshot()
    acronyms = retriever.acronyms()
    similar = phrase_similarity(retriever.embedder)
    quotes, context, about, around = [], [], [], []
    for span in spans:
        passage = _located(span, passages)
        quotes.append(span.span)
        if passage is not None:
            context.append(unit_context(passage, span.span, snapshot))
            about.append(snapshot.known_as(passage.document_id))
            around.append(passage.text)
    plan = analyse_question(item.question)
    for part in plan.parts:
        why = unmet(
            part,
            quotes,
            " ".join(context),
            acronyms,
            always_named=" ".join(about),
            around=" ".join(around),
            similar=similar,
        )
        if why is not None:
            return f"{part.text}: {why}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="all", choices=["dev", "test", "all"])
    parser.add_argument("--show", action="store_true", help="print every turned-down span")
    args = parser.parse_args()
    settings = Settings()
    embedder = load_configured_embedder(settings)
    index = IndexReader(settings.index, embedder.ref, embedder.dim)
    retriever = Retriever(index, embedder, Tokenizer())
    snapshot = retriever.snapshot()
    passages: dict[str, list[StoredPassage]] = defaultdict(list)
    for passage in snapshot.passages():
        passages[passage.document_id].append(passage)
    held = set(snapshot.documents)
    items = [
        i
        for i in load_items()
        if (args.split == "all" or i.split == args.split)
        and set(paper_of(i).split("+")) <= held
        and i.kind not in ("followup", "premise", "partial")
    ]
    passed: dict[str, list[bool]] = defaultdict(list)
    stopped: dict[str, list[bool]] = defaultdict(list)
    for item in items:
        trap = item.kind in UNANSWERABLE
        spans = item.trap if trap else item.evidence
        if not spans:
            continue
        why = verdict(item, spans, retriever, passages)
        for group in ("all", f"kind:{item.kind}", f"paper:{paper_of(item)}"):
            (stopped if trap else passed)[group].append((why is not None) if trap else why is None)
        if args.show and (why is not None) != trap:
            label = "LET THROUGH" if trap else "TURNED DOWN"
            out = why or (spans[0].span[:100])
            print(f"{label} {item.id}: {item.question}\n    {out}")
    print(f"\n{'group':28} {'answers let through':>20} {'traps stopped':>14}")
    for group in sorted(set(passed) | set(stopped)):
        p, s = passed.get(group, []), stopped.get(group, [])
        fp = f"{sum(p) / len(p):.3f} ({len(p)})" if p else "–"
        fs = f"{sum(s) / len(s):.3f} ({len(s)})" if s else "–"
        print(f"{group:28} {fp:>20} {fs:>14}")


if __name__ == "__main__":
    main()
