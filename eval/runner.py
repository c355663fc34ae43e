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
Progress = Callable[[str, int, int], None]


@dataclass
class EvalConfig:
    profile: str = "ci"
    split: str = "all"  # dev | test | all
    limit: int | None = None
    judged: str = "slice"  # none | slice | all
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


def answer_row(item: EvalItem, client: Client, config: EvalConfig) -> dict[str, Any]:
    """Ask one question and score it without a judge."""
    history = [turn.model_dump() for turn in item.history]
    started = time.perf_counter()
    search = client.search(search_query(item), 10)
    search_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    body = client.ask(item.question, config.top_k, history or None)
    ask_ms = (time.perf_counter() - started) * 1000

    passages = [p["text"] for p in search["passages"]]
    spans = [e.span for e in item.evidence]
    contexts = [_context(c) for c in body["citations"]]
    for p in search["passages"]:
        if len(contexts) >= config.contexts:
            break
        if p["text"] not in [c["text"] for c in body["citations"]]:
            contexts.append(p["text"])

    metrics: dict[str, float] = {}
    answered = bool(body["answered"])
    unanswered = list(body.get("unanswered") or [])
    if item.kind in UNANSWERABLE:
        metrics["refused"] = float(not answered)
    elif item.kind == "premise":
        # Corrected (the answer states what the papers say instead) or refused;
        # never an answer that leaves the false assumption standing.
        facts = key_facts_present(body["answer"], item.key_facts) if answered else 0.0
        metrics["key_facts"] = facts
        metrics["premise_handled"] = float(not answered or facts == 1.0)
        metrics["premise_flagged"] = float(bool(body.get("corrections")))
        metrics["refused"] = float(not answered)
    else:
        metrics.update(retrieval_scores(passages, spans))
        metrics["wrongly_refused"] = float(not answered)
        facts = key_facts_present(body["answer"], item.key_facts) if answered else 0.0
        metrics["key_facts"] = facts
        metrics["correct"] = float(answered and facts == 1.0)
        metrics["cited_evidence"] = float(
            answered and any(contains(_context(c), s) for c in body["citations"] for s in spans)
        )
        if item.kind == "partial":
            # The part the papers answer, answered; the part they do not, named.
            metrics["missing_named"] = float(answered and bool(unanswered))
            metrics["partial_handled"] = float(answered and facts == 1.0 and bool(unanswered))
        else:
            metrics["claimed_unanswered"] = float(answered and bool(unanswered))
        metrics["false_correction"] = float(bool(body.get("corrections")))
    return {
        "id": item.id,
        "kind": item.kind,
        "split": item.split,
        "item_hash": _item_hash(item),
        "question": item.question,
        "history": [turn.model_dump() for turn in item.history],
        "reference": item.reference,
        "key_facts": item.key_facts,
        "evidence": spans,
        "answer": body["answer"],
        "answered": answered,
        "unanswered": unanswered,
        "corrections": list(body.get("corrections") or []),
        "confidence": body.get("confidence"),
        "reason": body.get("reason"),
        "generator": body.get("generator"),
        "citations": [
            {
                "ref": c["ref"],
                "passage_id": c["passage_id"],
                "section": c["section"],
                "quote": c["quote"],
                "endnotes": [n["number"] for n in c["endnotes"]],
            }
            for c in body["citations"]
        ],
        "retrieved": [
            {"passage_id": p["passage_id"], "kind": p["kind"], "section": p["section"], "score": p["score"]}
            for p in search["passages"]
        ],
        "contexts": contexts,
        "metrics": metrics,
        "judged": {},
        "failures": {},
        "latency_ms": {
            "search": round(search_ms, 1),
            "retrieve": body["timings_ms"]["retrieve"],
            "answer": body["timings_ms"]["answer"],
            "total": body["timings_ms"]["total"],
            "ask_roundtrip": round(ask_ms, 1),
        },
    }


def _non_llm_ragas(rows: list[dict[str, Any]]) -> None:
    """ragas' metrics that need no judge: StringPresence on each key fact and
    NonLLMContextRecall of the retrieved contexts against the evidence spans."""
    from ragas.dataset_schema import SingleTurnSample
    from ragas.metrics import NonLLMContextRecall, StringPresence

    presence, recall = StringPresence(), NonLLMContextRecall()

    async def score(row: dict[str, Any]) -> None:
        if row["kind"] in UNANSWERABLE or row["kind"] == "premise":
            return
        facts = [
            await presence.single_turn_ascore(SingleTurnSample(response=row["answer"], reference=f))
            for f in row["key_facts"]
        ]
        row["metrics"]["string_presence"] = sum(facts) / len(facts) if facts else 0.0
        sample = SingleTurnSample(retrieved_contexts=row["contexts"], reference_contexts=row["evidence"])
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
    from ragas.metrics import (
        Faithfulness,
        LLMContextPrecisionWithReference,
        LLMContextRecall,
        ResponseRelevancy,
    )
    from ragas.run_config import RunConfig

    from eval.judge import ragas_llm
    from eval.metrics.scores import alce_metrics

    llm = ragas_llm(judge)
    recall, precision = alce_metrics()
    metrics = {
        "faithfulness": Faithfulness(llm=llm),
        "answer_relevancy": ResponseRelevancy(llm=llm, embeddings=embeddings, strictness=1),
        "context_precision": LLMContextPrecisionWithReference(llm=llm),
        "context_recall": LLMContextRecall(llm=llm),
        "citation_recall": recall,
        "citation_precision": precision,
    }
    run_config = RunConfig(timeout=int(timeout_s), max_retries=1, max_wait=1)
    for metric in metrics.values():
        metric.llm = llm
        metric.init(run_config)

    jobs = [(name, row) for name in metrics if name in only for row in rows if _applies(name, row)]
    done = 0
    spent: dict[str, float] = {}
    progress("judging", 0, len(jobs))

    async def run_all() -> None:
        nonlocal done
        for name, row in jobs:
            started = time.perf_counter()
            sample = _sample(name, row)
            try:
                value = await metrics[name].single_turn_ascore(sample, timeout=timeout_s * 4)
                if value is None or value != value:  # NaN from inside ragas
                    raise ValueError("the metric returned no score")
                row["judged"][name] = round(float(value), 4)
            except Exception as exc:  # recorded per item, never averaged in
                row["failures"][name] = f"{type(exc).__name__}: {str(exc)[:300]}"
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - started
            done += 1
            progress("judging", done, len(jobs))

    asyncio.run(run_all())
    return {name: round(value, 1) for name, value in spent.items()}


def judge_check(judge: Any, cases_path: Path, progress: Progress) -> dict[str, Any]:
    """The judge's accuracy on hand-labelled (statement, passage) support cases."""
    from eval.judge import ragas_llm
    from eval.metrics.scores import support_prompt, supported

    cases = [json.loads(line) for line in cases_path.read_text().splitlines() if line.strip()]
    prompt, llm = support_prompt(), ragas_llm(judge)
    results: list[dict[str, Any]] = []

    async def run_all() -> None:
        for i, case in enumerate(cases):
            try:
                verdict = await supported(prompt, llm, case["passage"], case["statement"])
                results.append({**case, "verdict": verdict, "ok": verdict == case["supported"]})
            except Exception as exc:
                results.append({**case, "verdict": None, "ok": False, "error": str(exc)[:200]})
            progress("checking the judge", i + 1, len(cases))

    asyncio.run(run_all())
    by_type: dict[str, list[bool]] = {}
    for r in results:
        by_type.setdefault(r["type"], []).append(r["ok"])
    positives = [r for r in results if r["supported"]]
    negatives = [r for r in results if not r["supported"]]
    return {
        "cases": len(results),
        "accuracy": round(sum(r["ok"] for r in results) / len(results), 4) if results else None,
        "true_positive_rate": round(sum(r["ok"] for r in positives) / len(positives), 4) if positives else None,
        "true_negative_rate": round(sum(r["ok"] for r in negatives) / len(negatives), 4) if negatives else None,
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
    out: dict[str, Any] = {}
    for name, members in sorted(groups.items()):
        metrics: dict[str, Any] = {"n": len(members)}
        keys = sorted({k for r in members for k in r["metrics"]})
        for key in keys:
            metrics[key] = _mean([r["metrics"][key] for r in members if key in r["metrics"]])
        for key in JUDGED_METRICS:
            values = [r["judged"][key] for r in members if key in r["judged"]]
            failed = sum(key in r["failures"] for r in members)
            if values or failed:
                metrics[key] = _mean(values)
                metrics[f"{key}_n"] = len(values)
                metrics[f"{key}_failed"] = failed
        for part in ("search", "retrieve", "answer", "total"):
            values = [r["latency_ms"][part] for r in members]
            metrics[f"latency_{part}_p50_ms"] = _percentile(values, 0.5)
            metrics[f"latency_{part}_p95_ms"] = _percentile(values, 0.95)
        out[name] = metrics
    unanswerable = [r for r in rows if r["kind"] in UNANSWERABLE]
    answerable = [r for r in rows if r["kind"] in ANSWERABLE and r["kind"] != "premise"]
    refused = [r for r in rows if not r["answered"]]
    out["refusal"] = {
        "unanswerable_refused": _mean([float(not r["answered"]) for r in unanswerable]),
        "answerable_wrongly_refused": _mean([float(not r["answered"]) for r in answerable]),
        "refusal_precision": _mean([float(r["kind"] in (*UNANSWERABLE, "premise")) for r in refused]),
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


def questions_fingerprint(items: list[EvalItem]) -> str:
    return hashlib.sha256("".join(_item_hash(i) for i in items).encode()).hexdigest()[:16]


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
    run_key = hashlib.sha256(
        json.dumps([target, config.top_k, config.contexts], sort_keys=True, default=str).encode()
    ).hexdigest()[:16]

    # Phase 1: answers (resumable).
    started = time.perf_counter()
    answers_path = out_dir / "answers.jsonl"
    done: dict[str, dict[str, Any]] = {}
    if answers_path.exists():
        for line in answers_path.read_text().splitlines():
            row = json.loads(line)
            if row.get("run_key") == run_key:
                done[row["id"] + row["item_hash"]] = row
    rows = []
    with answers_path.open("a") as sink:
        for n, item in enumerate(chosen, start=1):
            key = item.id + _item_hash(item)
            row = done.get(key)
            if row is None:
                row = answer_row(item, client, config)
                row["run_key"] = run_key
                sink.write(json.dumps(row, ensure_ascii=False) + "\n")
                sink.flush()
            rows.append(json.loads(json.dumps(row)))
            progress("answering", n, len(chosen))
    _non_llm_ragas(rows)
    seconds = {"answers": round(time.perf_counter() - started, 1)}

    # Phase 2: judged metrics.
    check = None
    judge_identity = None
    to_judge = []
    if config.judged != "none" and judge_factory is not None:
        wanted = set(judged_slice(items)) if config.judged == "slice" else {r["id"] for r in rows}
        to_judge = [r for r in rows if r["id"] in wanted]
    if to_judge:
        started = time.perf_counter()
        judge = judge_factory()
        judge_identity = judge.identity
        embeddings = embeddings_factory() if embeddings_factory else None
        per_metric = judge_rows(
            to_judge, judge, embeddings, timeout_s=judge_timeout_s, progress=progress, only=config.metrics
        )
        seconds.update({f"judging_{name}": value for name, value in per_metric.items()})
        if judge_cases is not None and judge_cases.exists():
            check_started = time.perf_counter()
            check = judge_check(judge, judge_cases, progress)
            seconds["judging_check"] = round(time.perf_counter() - check_started, 1)
        seconds["judging"] = round(time.perf_counter() - started, 1)
        seconds["judge_calls"] = judge.calls
        seconds["judge_cached"] = judge.cached

    meta = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "profile": config.profile,
        "split": config.split,
        "limit": config.limit,
        "judged": config.judged,
        "judged_ids": [r["id"] for r in to_judge],
        "judged_metrics": list(config.metrics),
        "judge": judge_identity,
        "questions": len(rows),
        "questions_fingerprint": questions_fingerprint(chosen),
        "target": target,
        "versions": {
            "memoqa": version("memoqa"),
            "ragas": _version("ragas"),
            "llama-cpp-python": _version("llama_cpp_python"),
            "llama-index-core": _version("llama-index-core"),
            "chromadb": _version("chromadb"),
            "python": platform.python_version(),
        },
    }
    result = RunResult(rows, aggregate(rows), meta, check, seconds)
    return result


def _version(name: str) -> str | None:
    try:
        return version(name)
    except Exception:
        return None


def summary_row(row: dict[str, Any]) -> dict[str, Any]:
    """What the baseline keeps of one question, to name regressions."""
    m = row["metrics"]
    keep = {
        k: m[k]
        for k in ("hit@5", "correct", "refused", "cited_evidence", "partial_handled", "premise_handled")
        if k in m
    }
    return {**keep, "answered": row["answered"]}


JudgeFactory = Callable[[], t.Any]
