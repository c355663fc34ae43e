"""Scale benchmark: the memo made into N distinct papers, ingested, served,
searched under load and evaluated, at each factor asked for.

Each synthetic paper is derived from the memo deterministically: its proper
nouns become made-up names, its years and other numbers are shifted, and its
paragraphs are reordered within their sections, all consistently, so the
evaluation questions can be re-targeted to any copy (the same changes applied
to the question and its evidence). Only questions that name something a copy
changes are used: the others cannot tell the copies apart. A hit is a passage
of the re-targeted paper that holds the re-targeted evidence.

Per factor it prints ingest throughput, the index's size on disk, the service's
start time (launch to its first answered search) and resident memory (the
extractive generator: no language model loaded), /v1/search latency with 1, 10
and 50 clients, and hit@5 / MRR@10.

    tests/offline.sh .venv/bin/python tests/bench/scale.py \\
        --factor 1 --factor 10 --factor 100
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from eval.dataset import load_items
from eval.metrics.scores import retrieval_scores
from service.cli.load import run_load

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "corpus" / "manifest.json"
MEMO = ROOT / "corpus" / json.loads(MANIFEST.read_text())["documents"][0]["file"]

PAGES_PER_PAPER = 26  # the memo printed as a PDF (tests/bench/ingest_formats.py)
_SYLLABLES = ["ka", "ro", "mi", "tel", "va", "sun", "dor", "le", "zan", "pi", "qua", "bre"]
_PROTECTED = re.compile(r"<sup>\s*\d+\s*</sup>|^\s*- \d+ |https?://\S+|\]\([^)]*\)", re.M)
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?![\w.]\d)")


def proper_nouns(text: str) -> list[str]:
    """Names: capitalised words the memo writes mid-sentence and never in lower
    case (URLs aside), longest first."""
    prose = re.sub(r"https?://\S+|\]\([^)]*\)", " ", text)
    lower = set(re.findall(r"\b[a-z][a-z]+\b", prose))
    found = set(re.findall(r"(?<=[a-z,;] )[A-Z][a-z]{3,}\b", prose))
    return sorted((w for w in found if w.lower() not in lower), key=lambda w: (-len(w), w))


@dataclass
class Variant:
    """The changes that make copy `index` of the memo: names, years, numbers."""

    index: int
    names: list[str]
    renamed: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        used: set[str] = set()
        for name in self.names:
            self.renamed[name] = self._made_up(name, used) if self.index else name
        self._pattern = re.compile(r"\b(" + "|".join(map(re.escape, self.names)) + r")\b")

    def _made_up(self, name: str, used: set[str]) -> str:
        """A made-up name no other name of any copy has: three syllables of its
        own (unique within the copy) and three that spell the copy's number."""
        copy = "".join(
            _SYLLABLES[(self.index // len(_SYLLABLES) ** k) % len(_SYLLABLES)] for k in range(3)
        )
        seed = int(hashlib.sha256(name.encode()).hexdigest(), 16)
        while True:
            own = "".join(_SYLLABLES[(seed // 12**k) % 12] for k in range(3))
            word = (own + copy).capitalize()
            if word not in used:
                used.add(word)
                return word
            seed += 7919

    def number(self, match: re.Match[str]) -> str:
        raw = match.group(1)
        value = int(raw.replace(",", ""))
        if not self.index:
            return raw
        # Shifts that differ for every copy, so no two copies share a date.
        if 1900 <= value <= 2099:
            value += self.index
        elif value >= 10:
            value += 3 * self.index
        else:
            return raw
        return f"{value:,}" if "," in raw else str(value)

    def apply(self, text: str) -> str:
        """The text with this copy's names and numbers; markers, note numbers and
        URLs untouched."""
        out, last = [], 0
        for kept in _PROTECTED.finditer(text):
            out.append(self._change(text[last : kept.start()]))
            out.append(kept.group(0))
            last = kept.end()
        out.append(self._change(text[last:]))
        return "".join(out)

    def _change(self, text: str) -> str:
        text = self._pattern.sub(lambda m: self.renamed[m.group(1)], text)
        return _NUMBER.sub(self.number, text)

    def changes(self, text: str) -> bool:
        """Whether the text names something that differs between copies."""
        return bool(
            self._pattern.search(text)
            or any(int(m.group(1).replace(",", "")) >= 10 for m in _NUMBER.finditer(text))
        )


def reorder(text: str, seed: int) -> str:
    """Paragraphs shuffled within each section (headings, lists and the endnotes
    stay as they are; a paragraph the source breaks mid-sentence stays whole)."""
    if not seed:
        return text
    rng = random.Random(seed)
    sections = re.split(r"(?m)^(?=#{2,3} )", text)
    out = []
    for section in sections:
        if section.startswith("## Endnotes") or section.startswith("## Abbreviations"):
            out.append(section)
            continue
        head, _, body = section.partition("\n")
        blocks: list[str] = []
        for block in re.split(r"\n\s*\n", body.strip("\n")):
            if blocks and not _ends_sentence(blocks[-1]):
                blocks[-1] += "\n\n" + block
            else:
                blocks.append(block)
        paragraphs = [i for i, b in enumerate(blocks) if not b.lstrip().startswith(("-", "*"))]
        moved = paragraphs[:]
        rng.shuffle(moved)
        shuffled = blocks[:]
        for target, source in zip(paragraphs, moved, strict=True):
            shuffled[target] = blocks[source]
        out.append(head + "\n\n" + "\n\n".join(shuffled) + "\n\n")
    return "".join(out)


def _ends_sentence(block: str) -> bool:
    tail = re.sub(r"(<sup>\s*\d+\s*</sup>)+\s*$", "", block.rstrip())
    return tail.endswith((".", "?", "!", ":", '"', "”", ")", "*"))


def make_corpus(folder: Path, factor: int, *, write: bool = True) -> list[Variant]:
    memo = MEMO.read_text(encoding="utf-8")
    names = proper_nouns(memo)
    meta = json.loads(MANIFEST.read_text())["documents"][0]
    variants, documents = [], []
    for i in range(factor):
        variant = Variant(i, names)
        variants.append(variant)
        if not write:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        name = f"paper-{i:04d}.md"
        (folder / name).write_text(variant.apply(reorder(memo, i)), encoding="utf-8")
        documents.append(
            {**meta, "id": f"paper-{i:04d}", "file": name, "title": variant.apply(meta["title"])}
        )
    if write:
        (folder / "manifest.json").write_text(json.dumps({"documents": documents}, indent=1))
    return variants


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


@dataclass
class Row:
    factor: int
    papers: int = 0
    passages: int = 0
    ingest_s: float = 0.0
    index_mb: float = 0.0
    start_s: float = 0.0
    rss_mb: float = 0.0
    peak_mb: float = 0.0
    search: dict[int, tuple[float, float, float, int]] = field(default_factory=dict)
    quality: dict[str, float] = field(default_factory=dict)
    add_s: float = 0.0


def ingest(env: dict[str, str], row: Row) -> None:
    started = time.perf_counter()
    done = subprocess.run(
        [str(ROOT / ".venv/bin/memoqa"), "ingest"], env=env, capture_output=True, text=True
    )
    row.ingest_s = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"ingest failed: {done.stderr[-2000:]}")
    found = re.search(r"indexed (\d+) passages", done.stdout + done.stderr)
    row.passages = int(found.group(1)) if found else 0


def serve(env: dict[str, str], port: int, row: Row, question: str) -> subprocess.Popen[bytes]:
    started = time.perf_counter()
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/memoqa"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the service exited at start")
        try:
            r = httpx.get(
                f"http://127.0.0.1:{port}/v1/search", params={"q": question, "k": 10}, timeout=300
            )
            if r.status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    row.start_s = time.perf_counter() - started
    row.rss_mb = rss_mb(server.pid)
    return server


def quality(port: int, variants: list[Variant], copies: int) -> dict[str, float]:
    items = [
        item
        for item in load_items()
        if item.evidence and not item.history and variants[0].changes(item.question)
    ]
    picked = sorted({0, len(variants) // 2, len(variants) - 1})[:copies]
    rows = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
        for index in picked:
            variant, target = variants[index], f"paper-{index:04d}"
            for item in items:
                hits = client.get(
                    "/v1/search", params={"q": variant.apply(item.question), "k": 10}
                ).json()["passages"]
                texts = [h["text"] if h["document_id"] == target else "" for h in hits]
                rows.append(retrieval_scores(texts, [variant.apply(e.span) for e in item.evidence]))
    return {
        "questions": len(items),
        "copies": len(picked),
        "hit@5": statistics.fmean(r["hit@5"] for r in rows),
        "mrr@10": statistics.fmean(r["mrr@10"] for r in rows),
    }


def measure(factor: int, work: Path, duration: float, copies: int, reuse: bool = False) -> Row:
    row = Row(factor, papers=factor)
    built = reuse and (work / "index").is_dir()
    if not built:
        shutil.rmtree(work, ignore_errors=True)
    variants = make_corpus(work / "corpus", factor, write=not built)
    env = {
        **os.environ,
        "MEMOQA_CORPUS__MANIFEST": str(work / "corpus" / "manifest.json"),
        "MEMOQA_INDEX__PATH": str(work / "index"),
        "MEMOQA_INDEX__LOCK_PATH": str(work / "ingest.lock"),
        # The embedding model's ONNX export, made once (as `make run` makes it).
        "MEMOQA_INDEX__ONNX_PATH": str(ROOT / ".memoqa" / "onnx"),
        "MEMOQA_ANSWER__GENERATOR": "extractive",
        "MEMOQA_SECURITY__RATE_PER_MINUTE": "100000",
        "MEMOQA_SECURITY__BURST": "100000",
    }
    if built:
        row.passages = int(json.loads((work / "ingest.json").read_text())["passages"])
        row.ingest_s = float(json.loads((work / "ingest.json").read_text())["seconds"])
    else:
        ingest(env, row)
        (work / "ingest.json").write_text(
            json.dumps({"passages": row.passages, "seconds": row.ingest_s})
        )
    row.index_mb = folder_mb(work / "index")
    port = free_port()
    questions = [
        variants[i % factor].apply(q)
        for i, q in enumerate(
            line.strip()
            for line in (ROOT / "service/cli/bench_questions.txt").read_text().splitlines()
            if line.strip()
        )
    ]
    server = serve(env, port, row, questions[0])
    try:
        for clients in (1, 10, 50):
            result = asyncio.run(
                run_load(f"http://127.0.0.1:{port}", "search", clients, duration, questions)
            )
            ok = result.statuses.get("200", 0)
            row.search[clients] = (
                statistics.median(result.latencies_ms),
                result.percentile(0.95),
                ok / result.seconds,
                result.requests - ok,
            )
        row.quality = quality(port, variants, copies)
        row.peak_mb = rss_mb(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=60)
    if not built:
        row.add_s = add_one(work / "corpus", env, factor)
    return row


def add_one(corpus: Path, env: dict[str, str], factor: int) -> float:
    """Seconds to bring the index up to date after one more paper joins the corpus."""
    memo = MEMO.read_text(encoding="utf-8")
    variant = Variant(factor, proper_nouns(memo))
    name = f"paper-{factor:04d}.md"
    (corpus / name).write_text(variant.apply(reorder(memo, factor)), encoding="utf-8")
    manifest = json.loads((corpus / "manifest.json").read_text())
    entry = {**manifest["documents"][0], "id": f"paper-{factor:04d}", "file": name}
    manifest["documents"].append(entry)
    (corpus / "manifest.json").write_text(json.dumps(manifest, indent=1))
    row = Row(factor)
    ingest(env, row)
    return row.ingest_s


def print_rows(rows: list[Row]) -> None:
    print(
        "| factor | papers | passages | ingest s | passages/s | pages/s | index MB | start s "
        "| RSS MB | peak RSS MB | search p50/p95 ms (1 client) | p50/p95 ms (10) | req/s (10) "
        "| req/s (50) | errors | hit@5 | MRR@10 | questions x copies | add 1 paper s |"
    )
    print("|" + "---|" * 19)
    for r in rows:
        one, ten, fifty = r.search[1], r.search[10], r.search[50]
        print(
            f"| {r.factor}x | {r.papers} | {r.passages} | {r.ingest_s:.0f} "
            f"| {r.passages / r.ingest_s:.1f} | {PAGES_PER_PAPER * r.papers / r.ingest_s:.1f} "
            f"| {r.index_mb:.0f} | {r.start_s:.1f} | {r.rss_mb:.0f} | {r.peak_mb:.0f} "
            f"| {one[0]:.0f}/{one[1]:.0f} | {ten[0]:.0f}/{ten[1]:.0f} | {ten[2]:.1f} "
            f"| {fifty[2]:.1f} | {one[3] + ten[3] + fifty[3]} | {r.quality['hit@5']:.3f} "
            f"| {r.quality['mrr@10']:.3f} | {r.quality['questions']:.0f} x "
            f"{r.quality['copies']:.0f} | {r.add_s:.0f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factor", type=int, action="append", help="copies of the memo")
    parser.add_argument("--seconds", type=float, default=15, help="seconds per load level")
    parser.add_argument("--copies", type=int, default=3, help="copies the questions target")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    parser.add_argument(
        "--reuse", action="store_true", help="with --keep: serve an index built before"
    )
    args = parser.parse_args()
    factors = args.factor or [1, 10]
    if any(f < 1 or f > 2000 for f in factors):
        parser.error("--factor is 1..2000")
    rows = []
    for factor in factors:
        if args.keep:
            work = args.keep / f"x{factor}"
            rows.append(measure(factor, work, args.seconds, args.copies, args.reuse))
        else:
            with tempfile.TemporaryDirectory(prefix=f"memoqa-scale-{factor}-") as tmp:
                rows.append(measure(factor, Path(tmp), args.seconds, args.copies))
        print_rows(rows[-1:])
    print()
    print_rows(rows)


if __name__ == "__main__":
    main()
