"""Running an evaluation: ask every question through the same code the API
runs, score what needs no judge, then the judged metrics, then aggregate.

Phase 1 (answers and the metrics that need no judge) writes one row per
question to `answers.jsonl` as it goes; a re-run with the same configuration
reuses those rows. Phase 2 scores the judged metrics metric by metric (so the
judge's prompt prefix stays in its KV cache), every judgement cached by its
inputs. A judge failure is recorded per item with its reason, never averaged
in as NaN.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import platform
import statistics
import time
import typing as t
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from eval.client import Client
from eval.dataset import KINDS, UNANSWERABLE, EvalItem
from eval.metrics.scores import contains, key_facts_present, retrieval_scores

ANSWERABLE = tuple(k for k in KINDS if k not in UNANSWERABLE)
JUDGED_METRICS = (
    "faithfulness",
    "answer_relevancy",
    "context_precision",
    "context_recall",
    "citation_recall",
    "citation_precision",
)
# What the baseline keeps of each question; losing one of them names the question.
QUESTION_METRICS = (
    "hit@5",
    "correct",
    "refused",
    "cited_evidence",
    "partial_handled",
    "premise_handled",
)
Progress = Callable[[str, int, int], None]


# How many questions the ci gate asks the language model; the others are searched only.
ANSWER_SLICE_SIZE = 72


@dataclass
class EvalConfig:
    profile: str = "ci"
    split: str = "all"  # dev | test | all
    limit: int | None = None
    judged: str = "slice"  # none | slice | all
    answers: str = "all"  # slice (the model answers a fixed slice; the rest are searched) | all
    slice_size: int = ANSWER_SLICE_SIZE
    top_k: int | None = None
    contexts: int = 4
    metrics: tuple[str, ...] = JUDGED_METRICS  # which judged metrics to score


def judged_slice(items: list[EvalItem]) -> list[str]:
    """The fixed subset judged in CI: the first dev item of each kind."""
    chosen = []
    for kind in KINDS:
        first = next((i for i in items if i.kind == kind and i.split == "dev"), None)
        if first is not None:
            chosen.append(first.id)
    return chosen


def paper_of(item: EvalItem) -> str:
    """The paper(s) a question is about: its evidence's documents, a near miss's trap
    documents, the paper an unanswerable question names, or "any"."""
    docs = sorted(
        {e.doc for e in item.evidence}
        or {e.doc for e in item.trap}
        or ({item.paper} if item.paper else set())
    )
    return "+".join(docs) or "any"


def _share(sizes: dict[tuple[str, str], int], total: int) -> dict[tuple[str, str], int]:
    """`total` places shared among groups in proportion to their sizes (largest
    remainder), at least one each and never more than a group holds."""
    whole = sum(sizes.values())
    quota = {g: total * n / whole for g, n in sizes.items()} if whole else {}
    shares = {g: min(n, max(1, int(quota[g]))) for g, n in sizes.items()}

    def remainder(g: tuple[str, str]) -> tuple[float, tuple[str, str]]:
        return (quota[g] - shares[g], g)

    while sum(shares.values()) < min(total, whole):
        g = max((g for g in sizes if shares[g] < sizes[g]), key=remainder)
        shares[g] += 1
    while sum(shares.values()) > max(total, len(sizes)):
        g = min((g for g in sizes if shares[g] > 1), key=remainder)
        shares[g] -= 1
    return shares


def answer_slice(items: list[EvalItem], size: int = ANSWER_SLICE_SIZE) -> list[str]:
    """The fixed, stratified slice of questions the ci gate asks the language model:
    every (kind, paper) group has at least one, the rest of `size` shared in
    proportion to the groups' sizes. A group's judged question comes first, then its
    questions in the order of a hash of their ids, so adding questions to the set
    moves few of those already chosen."""
    judged = set(judged_slice(items))
    groups: dict[tuple[str, str], list[EvalItem]] = {}
    for item in items:
        groups.setdefault((item.kind, paper_of(item)), []).append(item)
    shares = _share({g: len(members) for g, members in groups.items()}, size)
    chosen: set[str] = set()
    for group, members in groups.items():
        ordered = sorted(
            members,
            key=lambda i: (i.id not in judged, hashlib.sha256(i.id.encode()).hexdigest()),
        )
        chosen.update(i.id for i in ordered[: shares[group]])
    return [i.id for i in items if i.id in chosen]


def _item_hash(item: EvalItem) -> str:
    return hashlib.sha256(item.model_dump_json().encode()).hexdigest()[:12]


def select(items: list[EvalItem], config: EvalConfig) -> list[EvalItem]:
    chosen = [i for i in items if config.split == "all" or i.split == config.split]
    return chosen[: config.limit] if config.limit else chosen


def _context(citation: dict[str, Any]) -> str:
    notes = " ".join(f"[note {n['number']}] {n['text']}" for n in citation.get("endnotes", []))
    return f"{citation['text']}\nSources: {notes}" if notes else str(citation["text"])


def search_query(item: EvalItem) -> str:
    """What retrieval sees: a follow-up is made standalone the way the chat endpoint does."""
    from service.followup import Turn, standalone_question

    if not item.history:
        return item.question
    return standalone_question(item.question, [Turn(t.role, t.content) for t in item.history])


# --- phase 1: one question, no judge ------------------------------------------------


@dataclass
class Exchange:
    """One question's search and answer as the API returned them, with their round trips."""

    search: dict[str, Any]
    body: dict[str, Any]
    search_ms: float
    ask_ms: float


def ask(item: EvalItem, client: Client, config: EvalConfig) -> Exchange:
    history = [turn.model_dump() for turn in item.history]
    started = time.perf_counter()
    search = client.search(search_query(item), 10)
    search_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    body = client.ask(item.question, config.top_k, history or None)
    ask_ms = (time.perf_counter() - started) * 1000
    return Exchange(search, body, search_ms, ask_ms)


def judge_contexts(exchange: Exchange, limit: int) -> list[str]:
    """The cited passages, then the best uncited search results, up to `limit`."""
    citations = exchange.body["citations"]
    contexts = [_context(c) for c in citations]
    for p in exchange.search["passages"]:
        if len(contexts) >= limit:
            break
        if p["text"] not in [c["text"] for c in citations]:
            contexts.append(p["text"])
    return contexts


def _facts(item: EvalItem, body: dict[str, Any]) -> float:
    return key_facts_present(body["answer"], item.key_facts) if body["answered"] else 0.0


def _premise_scores(item: EvalItem, body: dict[str, Any]) -> dict[str, float]:
    # Corrected (the answer states what the papers say instead) or refused;
    # never an answer that leaves the false assumption standing.
    answered = bool(body["answered"])
    facts = _facts(item, body)
    return {
        "key_facts": facts,
        "premise_handled": float(not answered or facts == 1.0),
        "premise_flagged": float(bool(body.get("corrections"))),
        "refused": float(not answered),
    }


def _answer_scores(item: EvalItem, exchange: Exchange, spans: list[str]) -> dict[str, float]:
    body = exchange.body
    answered = bool(body["answered"])
    unanswered = bool(body.get("unanswered"))
    facts = _facts(item, body)
    passages = [p["text"] for p in exchange.search["passages"]]
    metrics = retrieval_scores(passages, spans)
    metrics["wrongly_refused"] = float(not answered)
    metrics["key_facts"] = facts
    metrics["correct"] = float(answered and facts == 1.0)
    metrics["cited_evidence"] = float(
        answered and any(contains(_context(c), s) for c in body["citations"] for s in spans)
    )
    if item.kind == "partial":
        # The part the papers answer, answered; the part they do not, named.
        metrics["missing_named"] = float(answered and unanswered)
        metrics["partial_handled"] = float(answered and facts == 1.0 and unanswered)
    else:
        metrics["claimed_unanswered"] = float(answered and unanswered)
    metrics["false_correction"] = float(bool(body.get("corrections")))
    return metrics


def unjudged_scores(item: EvalItem, exchange: Exchange) -> dict[str, float]:
    """The metrics that need no judge, by what the question's kind tests."""
    if item.kind in UNANSWERABLE:
        return {"refused": float(not exchange.body["answered"])}
    if item.kind == "premise":
        return _premise_scores(item, exchange.body)
    return _answer_scores(item, exchange, [e.span for e in item.evidence])


def _citation_record(citation: dict[str, Any]) -> dict[str, Any]:
    return {
        "ref": citation["ref"],
        "passage_id": citation["passage_id"],
        "section": citation["section"],
        "quote": citation["quote"],
        "endnotes": [n["number"] for n in citation["endnotes"]],
    }


def _retrieved_record(passage: dict[str, Any]) -> dict[str, Any]:
    keys = ("passage_id", "kind", "section", "score")
    return {k: passage[k] for k in keys}


def _latency(exchange: Exchange) -> dict[str, float]:
    timings = exchange.body["timings_ms"]
    return {
        "search": round(exchange.search_ms, 1),
        "retrieve": timings["retrieve"],
        "answer": timings["answer"],
        "total": timings["total"],
        "ask_roundtrip": round(exchange.ask_ms, 1),
    }


def answer_row(item: EvalItem, client: Client, config: EvalConfig) -> dict[str, Any]:
    """Ask one question and score it without a judge."""
    exchange = ask(item, client, config)
    body = exchange.body
    return {
        "id": item.id,
        "kind": item.kind,
        "paper": paper_of(item),
        "split": item.split,
        "item_hash": _item_hash(item),
        "asked": True,
        "question": item.question,
        "history": [turn.model_dump() for turn in item.history],
        "reference": item.reference,
        "key_facts": item.key_facts,
        "evidence": [e.span for e in item.evidence],
        "answer": body["answer"],
        "answered": bool(body["answered"]),
        "unanswered": list(body.get("unanswered") or []),
        "corrections": list(body.get("corrections") or []),
        "confidence": body.get("confidence"),
        "reason": body.get("reason"),
        "generator": body.get("generator"),
        "citations": [_citation_record(c) for c in body["citations"]],
        "retrieved": [_retrieved_record(p) for p in exchange.search["passages"]],
        "contexts": judge_contexts(exchange, config.contexts),
        "metrics": unjudged_scores(item, exchange),
        "judged": {},
        "failures": {},
        "latency_ms": _latency(exchange),
    }


def search_row(item: EvalItem, client: Client, config: EvalConfig) -> dict[str, Any]:
    """Search for one question without asking the language model: its retrieval
    metrics only (the questions outside the ci gate's answer slice)."""
    started = time.perf_counter()
    search = client.search(search_query(item), 10)
    search_ms = (time.perf_counter() - started) * 1000
    passages = [p["text"] for p in search["passages"]]
    spans = [e.span for e in item.evidence]
    answerable = item.kind not in UNANSWERABLE and item.kind != "premise"
    return {
        "id": item.id,
        "kind": item.kind,
        "paper": paper_of(item),
        "split": item.split,
        "item_hash": _item_hash(item),
        "asked": False,
        "question": item.question,
        "history": [turn.model_dump() for turn in item.history],
        "reference": item.reference,
        "key_facts": item.key_facts,
        "evidence": spans,
        "answer": "",
        "answered": None,
        "unanswered": [],
        "corrections": [],
        "confidence": None,
        "reason": None,
        "generator": None,
        "citations": [],
        "retrieved": [_retrieved_record(p) for p in search["passages"]],
        "contexts": passages[: config.contexts],
        "metrics": retrieval_scores(passages, spans) if answerable else {},
        "judged": {},
        "failures": {},
        "latency_ms": {"search": round(search_ms, 1)},
    }


def asked(row: dict[str, Any]) -> bool:
    """Whether the language model answered the row's question (rows written before
    search-only rows existed were all answered)."""
    return bool(row.get("asked", True))


def _non_llm_ragas(rows: list[dict[str, Any]]) -> None:
    """ragas' metrics that need no judge: StringPresence on each key fact and
    NonLLMContextRecall of the retrieved contexts against the evidence spans."""
    from ragas.dataset_schema import SingleTurnSample
    from ragas.metrics import NonLLMContextRecall, StringPresence

    presence, recall = StringPresence(), NonLLMContextRecall()

    async def score(row: dict[str, Any]) -> None:
        if row["kind"] in UNANSWERABLE or row["kind"] == "premise":
            return
        if asked(row):
            facts = [
                await presence.single_turn_ascore(
                    SingleTurnSample(response=row["answer"], reference=f)
                )
                for f in row["key_facts"]
            ]
            row["metrics"]["string_presence"] = sum(facts) / len(facts) if facts else 0.0
        sample = SingleTurnSample(
            retrieved_contexts=row["contexts"], reference_contexts=row["evidence"]
        )
        row["metrics"]["non_llm_context_recall"] = float(await recall.single_turn_ascore(sample))

    async def all_rows() -> None:
        for row in rows:
            await score(row)

    asyncio.run(all_rows())


def _sample(metric: str, row: dict[str, Any]) -> Any:
    """Answer-level metrics judge the answer against the passages it cites (the
    ALCE metrics need them in marker order); context metrics judge everything
    retrieved."""
    from ragas.dataset_schema import SingleTurnSample

    contexts = row["contexts"] or [""]
    if metric in ("faithfulness", "citation_recall", "citation_precision") and row["citations"]:
        contexts = contexts[: len(row["citations"])]
    return SingleTurnSample(
        user_input=row["question"],
        response=row["answer"],
        retrieved_contexts=contexts,
        reference=row["reference"],
    )


def _applies(metric: str, row: dict[str, Any]) -> bool:
    if metric in ("context_precision", "context_recall"):
        return row["kind"] not in UNANSWERABLE
    return bool(row["answered"])  # answer-level metrics need an answer, not a refusal


def judged_metrics(
    judge: Any, embeddings: Any, timeout_s: float, batcher: Any = None
) -> dict[str, Any]:
    """Every judged metric, by name, set up to ask `judge`."""
    from ragas.metrics import (
        Faithfulness,
        LLMContextPrecisionWithReference,
        LLMContextRecall,
        ResponseRelevancy,
    )

    from eval.judge import judge_run_config, ragas_llm
    from eval.metrics.citations import alce_metrics

    llm = ragas_llm(judge, batcher, timeout_s)
    recall, precision = alce_metrics()
    metrics = {
        "faithfulness": Faithfulness(llm=llm),
        "answer_relevancy": ResponseRelevancy(llm=llm, embeddings=embeddings, strictness=1),
        "context_precision": LLMContextPrecisionWithReference(llm=llm),
        "context_recall": LLMContextRecall(llm=llm),
        "citation_recall": recall,
        "citation_precision": precision,
    }
    run_config = judge_run_config(timeout_s)
    for metric in metrics.values():
        metric.llm = llm
        metric.init(run_config)
    return metrics


async def _judge_one(name: str, metric: Any, row: dict[str, Any], timeout_s: float) -> None:
    """Score one metric on one row, in place; a failure is kept with its reason."""
    sample = _sample(name, row)
    try:
        value = await metric.single_turn_ascore(sample, timeout=timeout_s * 4)
        if value is None or value != value:  # NaN from inside ragas
            raise ValueError("the metric returned no score")
        row["judged"][name] = round(float(value), 4)
    except Exception as exc:  # recorded per item, never averaged in
        row["failures"][name] = f"{type(exc).__name__}: {str(exc)[:300]}"


def judge_rows(
    rows: list[dict[str, Any]],
    judge: Any,
    embeddings: Any,
    *,
    timeout_s: float,
    progress: Progress,
    only: tuple[str, ...] = JUDGED_METRICS,
) -> dict[str, float]:
    """Score the judged metrics (those in `only`) on `rows` in place; returns
    the seconds each metric took."""
    batcher = _batcher(judge)
    metrics = judged_metrics(judge, embeddings, timeout_s, batcher)
    jobs = [(name, row) for name in metrics if name in only for row in rows if _applies(name, row)]
    spent: dict[str, float] = {}
    done = 0
    progress("judging", 0, len(jobs))

    def one_done() -> None:
        nonlocal done
        done += 1
        progress("judging", done, len(jobs))

    async def run_all() -> None:
        # Metric by metric, so the judge keeps the metric's instructions decoded.
        for name in metrics:
            group = [row for n, row in jobs if n == name]
            if not group:
                continue
            started = time.perf_counter()

            async def score(row: dict[str, Any], name: str = name) -> None:
                await _judge_one(name, metrics[name], row, timeout_s)
                one_done()

            await concurrently(group, score, batcher)
            spent[name] = time.perf_counter() - started

    asyncio.run(run_all())
    return {name: round(value, 1) for name, value in spent.items()}


def _batcher(judge: Any) -> Any:
    """A batcher for a judge that can judge several at once, else None."""
    from eval.judge import Judge, JudgeBatcher

    return JudgeBatcher(judge) if isinstance(judge, Judge) and judge.batch > 1 else None


async def concurrently(
    items: list[Any], work: Callable[[Any], t.Awaitable[None]], batcher: Any
) -> None:
    """`work` on every item, in order; with a batcher, as many at once as the
    judge takes in one batch, so their judge calls are asked together."""
    if batcher is None:
        for item in items:
            await work(item)
        return
    queue = list(items)
    workers = min(batcher.judge.batch, len(queue))
    batcher.join(workers)

    async def worker() -> None:
        try:
            while queue:
                await work(queue.pop(0))
        finally:
            batcher.leave()

    await asyncio.gather(*(worker() for _ in range(workers)))


def judge_check(
    judge: Any, cases_path: Path, progress: Progress, timeout_s: float = 120
) -> dict[str, Any]:
    """The judge's accuracy on hand-labelled (statement, passage) support cases."""
    from eval.judge import ragas_llm
    from eval.metrics.support import support_prompt, supported

    cases = [json.loads(line) for line in cases_path.read_text().splitlines() if line.strip()]
    batcher = _batcher(judge)
    prompt, llm = support_prompt(), ragas_llm(judge, batcher, timeout_s)
    results: list[dict[str, Any] | None] = [None] * len(cases)

    async def check(i: int) -> None:
        case = cases[i]
        try:
            verdict = await supported(prompt, llm, case["passage"], case["statement"])
            results[i] = {**case, "verdict": verdict, "ok": verdict == case["supported"]}
        except Exception as exc:
            results[i] = {**case, "verdict": None, "ok": False, "error": str(exc)[:200]}
        progress("checking the judge", sum(r is not None for r in results), len(cases))

    asyncio.run(concurrently(list(range(len(cases))), check, batcher))
    checked = [r for r in results if r is not None]
    results = checked
    by_type: dict[str, list[bool]] = {}
    for r in results:
        by_type.setdefault(r["type"], []).append(r["ok"])
    positives = [r for r in results if r["supported"]]
    negatives = [r for r in results if not r["supported"]]
    return {
        "cases": len(results),
        "accuracy": round(sum(r["ok"] for r in results) / len(results), 4) if results else None,
        "true_positive_rate": round(sum(r["ok"] for r in positives) / len(positives), 4)
        if positives
        else None,
        "true_negative_rate": round(sum(r["ok"] for r in negatives) / len(negatives), 4)
        if negatives
        else None,
        "failed": sum(r["verdict"] is None for r in results),
        "by_type": {k: round(sum(v) / len(v), 4) for k, v in sorted(by_type.items())},
        "errors": [r for r in results if not r["ok"]],
    }


# --- aggregation ----------------------------------------------------------------


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 1)


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {"all": rows}
    for row in rows:
        groups.setdefault(f"kind:{row['kind']}", []).append(row)
        groups.setdefault(f"split:{row['split']}", []).append(row)
        if "paper" in row:
            groups.setdefault(f"paper:{row['paper']}", []).append(row)
    out: dict[str, Any] = {}
    for name, members in sorted(groups.items()):
        metrics: dict[str, Any] = {"n": len(members), "asked": sum(asked(r) for r in members)}
        keys = sorted({k for r in members for k in r["metrics"]})
        for key in keys:
            values = [r["metrics"][key] for r in members if key in r["metrics"]]
            metrics[key] = _mean(values)
            metrics[f"{key}_n"] = len(values)
        for key in JUDGED_METRICS:
            values = [r["judged"][key] for r in members if key in r["judged"]]
            failed = sum(key in r["failures"] for r in members)
            if values or failed:
                metrics[key] = _mean(values)
                metrics[f"{key}_n"] = len(values)
                metrics[f"{key}_failed"] = failed
        for part in ("search", "retrieve", "answer", "total"):
            values = [r["latency_ms"][part] for r in members if part in r["latency_ms"]]
            metrics[f"latency_{part}_p50_ms"] = _percentile(values, 0.5)
            metrics[f"latency_{part}_p95_ms"] = _percentile(values, 0.95)
        out[name] = metrics
    answers = [r for r in rows if asked(r)]
    unanswerable = [r for r in answers if r["kind"] in UNANSWERABLE]
    answerable = [r for r in answers if r["kind"] in ANSWERABLE and r["kind"] != "premise"]
    refused = [r for r in answers if not r["answered"]]
    out["refusal"] = {
        "unanswerable_refused": _mean([float(not r["answered"]) for r in unanswerable]),
        "answerable_wrongly_refused": _mean([float(not r["answered"]) for r in answerable]),
        "refusal_precision": _mean(
            [float(r["kind"] in (*UNANSWERABLE, "premise")) for r in refused]
        ),
        "refusal_recall": _mean([float(not r["answered"]) for r in unanswerable]),
    }
    return out


@dataclass
class RunResult:
    rows: list[dict[str, Any]]
    aggregates: dict[str, Any]
    meta: dict[str, Any]
    judge_check: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    judgements: dict[str, str] = field(default_factory=dict)  # the judge's, by key


def questions_fingerprint(items: list[EvalItem]) -> str:
    return hashlib.sha256("".join(_item_hash(i) for i in items).encode()).hexdigest()[:16]


def code_fingerprint() -> str:
    """A hash of the code that answers (ingest/ and service/): answers written by
    other code are not this code's answers."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for folder in ("ingest", "service"):
        for path in sorted((root / folder).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _run_key(target: dict[str, Any], config: EvalConfig) -> str:
    """Rows answered for another target, configuration or code are never reused."""
    key = [target, config.top_k, config.contexts, code_fingerprint()]
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _row_key(qid: str, item_hash: str, was_asked: bool) -> str:
    return f"{qid}{item_hash}{'+' if was_asked else '-'}"


def _answered_before(path: Path, run_key: str) -> dict[str, dict[str, Any]]:
    """Rows an earlier run with the same key wrote, by question id, hash and
    whether the model was asked."""
    done: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row.get("run_key") == run_key:
                done[_row_key(row["id"], row["item_hash"], asked(row))] = row
    return done


def answer_all(
    chosen: list[EvalItem],
    client: Client,
    config: EvalConfig,
    out_dir: Path,
    run_key: str,
    progress: Progress,
) -> list[dict[str, Any]]:
    """Phase 1: every question answered (or, outside the answer slice, searched) and
    scored without a judge, resumably."""
    answers_path = out_dir / "answers.jsonl"
    done = _answered_before(answers_path, run_key)
    to_ask = set(answer_slice(chosen, config.slice_size)) if config.answers == "slice" else None
    rows = []
    with answers_path.open("a") as sink:
        for n, item in enumerate(chosen, start=1):
            ask_model = to_ask is None or item.id in to_ask
            row = done.get(_row_key(item.id, _item_hash(item), ask_model))
            if row is None:
                make = answer_row if ask_model else search_row
                row = make(item, client, config)
                row["run_key"] = run_key
                sink.write(json.dumps(row, ensure_ascii=False) + "\n")
                sink.flush()
            rows.append(json.loads(json.dumps(row)))
            progress("answering", n, len(chosen))
    _non_llm_ragas(rows)
    return rows


@dataclass
class Judging:
    """How phase 2 gets its judge, and what it asks of it."""

    judge_factory: Callable[[], Any] | None
    embeddings_factory: Callable[[], Any] | None
    judge_cases: Path | None
    timeout_s: float
    progress: Progress


@dataclass
class JudgedPhase:
    """What phase 2 judged, by which judge, and how long it took."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    judge: str | None = None
    check: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    judgements: dict[str, str] = field(default_factory=dict)  # key -> reply, as used


def _to_judge(
    items: list[EvalItem], rows: list[dict[str, Any]], config: EvalConfig, judging: Judging
) -> list[dict[str, Any]]:
    """The rows phase 2 judges: none, the fixed slice or all of them."""
    if config.judged == "none" or judging.judge_factory is None:
        return []
    wanted = set(judged_slice(items)) if config.judged == "slice" else {r["id"] for r in rows}
    return [r for r in rows if r["id"] in wanted and asked(r)]


def judge_phase(rows: list[dict[str, Any]], config: EvalConfig, judging: Judging) -> JudgedPhase:
    """Phase 2: the judged metrics on `rows` in place, then the judge's own check."""
    phase = JudgedPhase(rows)
    if not rows or judging.judge_factory is None:
        return phase
    started = time.perf_counter()
    judge = judging.judge_factory()
    phase.judge = judge.identity
    embeddings = judging.embeddings_factory() if judging.embeddings_factory else None
    per_metric = judge_rows(
        rows,
        judge,
        embeddings,
        timeout_s=judging.timeout_s,
        progress=judging.progress,
        only=config.metrics,
    )
    phase.seconds.update({f"judging_{name}": value for name, value in per_metric.items()})
    if judging.judge_cases is not None and judging.judge_cases.exists():
        check_started = time.perf_counter()
        phase.check = judge_check(judge, judging.judge_cases, judging.progress, judging.timeout_s)
        phase.seconds["judging_check"] = round(time.perf_counter() - check_started, 1)
    phase.seconds["judging"] = round(time.perf_counter() - started, 1)
    phase.seconds["judge_calls"] = judge.calls
    phase.seconds["judge_cached"] = judge.cached
    phase.judgements = dict(getattr(getattr(judge, "cache", None), "used", None) or {})
    return phase


def _versions() -> dict[str, str | None]:
    return {
        "memoqa": version("memoqa"),
        "ragas": _version("ragas"),
        "llama-cpp-python": _version("llama_cpp_python"),
        "llama-index-core": _version("llama-index-core"),
        "chromadb": _version("chromadb"),
        "python": platform.python_version(),
    }


def _meta(
    config: EvalConfig,
    chosen: list[EvalItem],
    rows: list[dict[str, Any]],
    phase: JudgedPhase,
    target: dict[str, Any],
) -> dict[str, Any]:
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "profile": config.profile,
        "split": config.split,
        "limit": config.limit,
        "judged": config.judged,
        "answers": config.answers,
        "asked_ids": [r["id"] for r in rows if asked(r)],
        "judged_ids": [r["id"] for r in phase.rows],
        "judged_metrics": list(config.metrics),
        "judge": phase.judge,
        "questions": len(rows),
        "questions_fingerprint": questions_fingerprint(chosen),
        "target": target,
        "versions": _versions(),
    }


def run_eval(
    items: list[EvalItem],
    config: EvalConfig,
    client: Client,
    out_dir: Path,
    *,
    judge_factory: Callable[[], Any] | None,
    embeddings_factory: Callable[[], Any] | None,
    judge_cases: Path | None,
    judge_timeout_s: float,
    progress: Progress,
) -> RunResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = select(items, config)
    target = client.describe()
    run_key = _run_key(target, config)
    started = time.perf_counter()
    rows = answer_all(chosen, client, config, out_dir, run_key, progress)
    seconds = {"answers": round(time.perf_counter() - started, 1)}
    judging = Judging(judge_factory, embeddings_factory, judge_cases, judge_timeout_s, progress)
    phase = judge_phase(_to_judge(items, rows, config, judging), config, judging)
    seconds.update(phase.seconds)
    meta = _meta(config, chosen, rows, phase, target)
    return RunResult(rows, aggregate(rows), meta, phase.check, seconds, phase.judgements)


def _version(name: str) -> str | None:
    try:
        return version(name)
    except Exception:
        return None


def summary_row(row: dict[str, Any]) -> dict[str, Any]:
    """What the baseline keeps of one question, to name regressions."""
    m = row["metrics"]
    keep = {k: m[k] for k in QUESTION_METRICS if k in m}
    return {**keep, "answered": row["answered"]} if asked(row) else {**keep, "asked": False}


JudgeFactory = Callable[[], t.Any]
