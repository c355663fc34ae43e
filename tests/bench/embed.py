"""The packaged embedder on torch and on its ONNX export (onnxruntime): the
memo's paragraphs and sentences embedded in batches of 32 in the memo's order,
and as ingest embeds them (sorted by length, in batches of 4); questions one at
a time; the time to load each runtime (the ONNX one from its checked export,
in a new process); the lowest cosine between the two runtimes' vectors.

    tests/offline.sh .venv/bin/python tests/bench/embed.py
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ingest.embed import export_onnx, load_embedder

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "corpus" / "manifest.json"
MEMO = ROOT / "corpus" / json.loads(MANIFEST.read_text())["documents"][0]["file"]
QUESTIONS = [
    line.strip()
    for line in (ROOT / "service/cli/bench_questions.txt").read_text().splitlines()
    if line.strip()
]

Embed = Callable[[list[str]], list[list[float]]]


def per_second(embed: Embed, texts: list[str], batch: int, by_length: bool) -> float:
    if by_length:
        texts = sorted(texts, key=len)
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
        exported = export_onnx(embedder, Path(folder))
        if exported is None:
            raise SystemExit("the ONNX export is not available here")
        fast = exported.embed_texts
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
            for batch, by_length in ((32, False), (4, True)):
                how = "by length, batches of 4" if by_length else "in order, batches of 32"
                print(
                    f"| {n} {name} {how}, per second "
                    f"| {per_second(torch, texts[name], batch, by_length):.0f} "
                    f"| {per_second(fast, texts[name], batch, by_length):.0f} |"
                )
        print(
            f"| one question, ms ({len(QUESTIONS)} questions) "
            f"| {per_question_ms(torch, QUESTIONS):.1f} | {per_question_ms(fast, QUESTIONS):.1f} |"
        )
        print(f"| load, s | {load_seconds(None):.1f} | {load_seconds(Path(folder)):.1f} |")
        print(f"lowest cosine between the two runtimes' vectors: {worst:.6f}")


def load_seconds(onnx: Path | None) -> float:
    """Seconds a new process takes to import and load the embedder (no interpreter start)."""
    folder = "None" if onnx is None else f"Path({str(onnx)!r})"
    script = (
        "import time; from pathlib import Path; started = time.perf_counter()\n"
        "from ingest.embed import load_embedder\n"
        f"e = load_embedder('all-MiniLM-L6-v2', onnx_folder={folder})\n"
        "e.embed_query('a question'); print(e.runtime, time.perf_counter() - started)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return float(done.stdout.split()[-1])


if __name__ == "__main__":
    main()
