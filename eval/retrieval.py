"""`memoqa eval retrieval`: every retrieval stage side by side on the same
questions in one process, against the naive baseline a user would build from
the llama-index quick start (default SentenceSplitter chunks, vector-only
top-k, the same embedder, its own Chroma collection)."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.dataset import UNANSWERABLE, EvalItem
from eval.metrics.scores import retrieval_scores
from eval.runner import search_query
from ingest.corpus import load_corpus
from ingest.text import clean_inline
from service.engine import Engine
from service.followup import Turn
from service.retrieve import RetrievalOptions
from service.settings import Settings

STAGES: dict[str, RetrievalOptions] = {
    "bm25": RetrievalOptions(dense=False, rerank=False, diversity=1.0, companions=False),
    "dense": RetrievalOptions(lexical=False, rerank=False, diversity=1.0, companions=False),
    "hybrid (rrf)": RetrievalOptions(rerank=False, diversity=1.0, companions=False),
    "hybrid + rerank": RetrievalOptions(diversity=1.0, companions=False),
    "+ diversity + companions (default)": RetrievalOptions(),
}
NAIVE = "naive (llama-index quick start)"
Search = Callable[[str, int], list[str]]


def naive_search(settings: Settings, engine: Engine, workdir: Path) -> Search:
    """The quick-start pipeline over the raw corpus files, in its own Chroma store."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.vector_stores.chroma import ChromaVectorStore

    documents = [
        Document(text=s.text, metadata={"document_id": s.meta.id})
        for s in load_corpus(settings.corpus.manifest)
    ]
    client = chromadb.PersistentClient(
        path=str(workdir / "naive"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    collection = client.get_or_create_collection("naive", embedding_function=None)
    store = ChromaVectorStore(chroma_collection=collection)
    index = VectorStoreIndex.from_documents(
        documents,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=engine.embedder.model,
        transformations=[SentenceSplitter()],
    )

    def search(question: str, k: int) -> list[str]:
        nodes = index.as_retriever(similarity_top_k=k).retrieve(question)
        # Raw chunks are cleaned only so evidence spans can be matched in them.
        return [clean_inline(n.node.get_content(), markers="strip") for n in nodes]

    return search


@dataclass
class StageResult:
    name: str
    scores: dict[str, dict[str, float]]  # group -> metric -> mean
    latency_p50: float
    latency_p95: float


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def evaluate_stage(name: str, search: Search, items: list[EvalItem]) -> StageResult:
    rows: list[tuple[str, dict[str, float]]] = []
    latencies = []
    for item in items:
        started = time.perf_counter()
        passages = search(search_query(item), 10)
        latencies.append((time.perf_counter() - started) * 1000)
        rows.append((item.kind, retrieval_scores(passages, [e.span for e in item.evidence])))
    groups: dict[str, list[dict[str, float]]] = {"all": [r for _, r in rows]}
    for kind, r in rows:
        groups.setdefault(kind, []).append(r)
    scores = {
        g: {"n": len(rs), **{m: statistics.fmean(r[m] for r in rs) for m in rs[0]}}
        for g, rs in groups.items()
    }
    return StageResult(name, scores, _percentile(latencies, 0.5), _percentile(latencies, 0.95))


def compare_stages(settings: Settings, engine: Engine, items: list[EvalItem]) -> list[StageResult]:
    answerable = [i for i in items if i.kind not in UNANSWERABLE]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        naive = naive_search(settings, engine, Path(tmp))
        naive("warm up", 1)
        results.append(evaluate_stage(NAIVE, naive, answerable))
    for name, options in STAGES.items():

        def search(question: str, k: int, options: RetrievalOptions = options) -> list[str]:
            return [h.passage.text for h in engine.retriever.search(question, k, options).hits]

        search("warm up", 1)
        results.append(evaluate_stage(name, search, answerable))
    return results


def refusal_signal(engine: Engine, items: list[EvalItem]) -> list[tuple[str, float, float]]:
    """(kind, top retrieval score, answerer relevance) per question, for calibration."""
    out = []
    for item in items:
        turns = [Turn(t.role, t.content) for t in item.history]
        result = engine.ask(item.question, None, turns or None)
        top = engine.retriever.search(item.question, 1).hits
        out.append((item.kind, top[0].score if top else 0.0, float(result.relevance or 0.0)))
    return out


def threshold_table(
    signal: list[tuple[str, float, float]], thresholds: list[float]
) -> list[dict[str, Any]]:
    """Precision and recall of "does not answer" (relevance below the threshold)
    on the unanswerable kind, and the share of answerable questions refused."""
    rows = []
    for t in thresholds:
        flagged = [(kind, s) for kind, _, s in signal if s < t]
        unanswerable = [s for kind, _, s in signal if kind in UNANSWERABLE]
        answerable = [s for kind, _, s in signal if kind not in UNANSWERABLE]
        true = sum(1 for kind, _ in flagged if kind in UNANSWERABLE)
        rows.append(
            {
                "threshold": t,
                "precision": true / len(flagged) if flagged else 1.0,
                "recall": true / len(unanswerable) if unanswerable else 0.0,
                "answerable_refused": sum(s < t for s in answerable) / len(answerable)
                if answerable
                else 0.0,
            }
        )
    return rows


def table(results: list[StageResult], group: str = "all") -> str:
    head = (
        "| stage | hit@1 | hit@5 | MRR@10 | evidence recall@10 | p50 ms | p95 ms |\n"
        "|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in results:
        s = r.scores.get(group)
        if not s:
            continue
        lines.append(
            f"| {r.name} | {s['hit@1']:.3f} | {s['hit@5']:.3f} | {s['mrr@10']:.3f} | "
            f"{s['evidence_recall@10']:.3f} | {r.latency_p50:.1f} | {r.latency_p95:.1f} |"
        )
    return "\n".join(lines)


def per_kind(result: StageResult) -> str:
    lines = [
        "| kind | n | hit@1 | hit@5 | MRR@10 | evidence recall@10 |",
        "|---|---|---|---|---|---|",
    ]
    for group, s in result.scores.items():
        if group == "all":
            continue
        lines.append(
            f"| {group} | {s['n']} | {s['hit@1']:.3f} | {s['hit@5']:.3f} | {s['mrr@10']:.3f} | "
            f"{s['evidence_recall@10']:.3f} |"
        )
    return "\n".join(lines)
