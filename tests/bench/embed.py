"""The packaged embedder on torch and on its ONNX export (onnxruntime): the
memo's paragraphs and sentences embedded in batches of 32, and questions one
at a time; the lowest cosine between the two runtimes' vectors.

    tests/offline.sh .venv/bin/python tests/bench/embed.py
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ingest.embed import load_embedder, onnx_queries

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "corpus" / "manifest.json"
MEMO = ROOT / "corpus" / json.loads(MANIFEST.read_text())["documents"][0]["file"]
QUESTIONS = [
    line.strip()
    for line in (ROOT / "service/cli/bench_questions.txt").read_text().splitlines()
    if line.strip()
]

Embed = Callable[[list[str]], list[list[float]]]


def per_second(embed: Embed, texts: list[str], batch: int = 32) -> float:
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        embed(texts[i : i + batch])
    return len(texts) / (time.perf_counter() - started)


def per_question_ms(embed: Embed, questions: list[str]) -> float:
    started = time.perf_counter()
    for question in questions:
        embed([question])
    return (time.perf_counter() - started) / len(questions) * 1000


def main() -> None:
    embedder = load_embedder("all-MiniLM-L6-v2")
    with tempfile.TemporaryDirectory(prefix="memoqa-onnx-") as folder:
        fast = onnx_queries(embedder, Path(folder))
        if fast is None:
            raise SystemExit("the ONNX export is not available here")
        torch = embedder.model.get_text_embedding_batch
        paragraphs = [p for p in MEMO.read_text().split("\n\n") if len(p.strip()) > 80]
        sentences = [s for p in paragraphs for s in re.split(r"(?<=[.!?])\s+", p) if len(s) > 20]
        texts = {"paragraphs": paragraphs, "sentences": sentences, "questions": QUESTIONS}
        worst = min(
            float(np.min(np.sum(np.asarray(fast(t)) * np.asarray(torch(t)), axis=1)))
            for t in texts.values()
        )
        per_question_ms(fast, QUESTIONS[:4])  # warm-up
        per_question_ms(torch, QUESTIONS[:4])
        print("| what | torch | onnxruntime |")
        print("|---|---|---|")
        for name in ("paragraphs", "sentences"):
            n = len(texts[name])
            print(
                f"| {n} {name}, per second | {per_second(torch, texts[name]):.0f} "
                f"| {per_second(fast, texts[name]):.0f} |"
            )
        print(
            f"| one question, ms ({len(QUESTIONS)} questions) "
            f"| {per_question_ms(torch, QUESTIONS):.1f} | {per_question_ms(fast, QUESTIONS):.1f} |"
        )
        print(f"lowest cosine between the two runtimes' vectors: {worst:.6f}")


if __name__ == "__main__":
    main()
