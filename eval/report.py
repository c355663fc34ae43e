"""Reports (Markdown and a self-contained HTML page) and the baseline gate."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.dataset import KINDS, UNANSWERABLE
from eval.runner import JUDGED_METRICS, QUESTION_METRICS, RunResult, asked, summary_row

TABLE_METRICS = (
    "hit@1",
    "hit@5",
    "mrr@10",
    "evidence_recall@10",
    "key_facts",
    "correct",
    "cited_evidence",
    "wrongly_refused",
    "refused",
    "partial_handled",
    "missing_named",
    "premise_handled",
    "premise_flagged",
    "string_presence",
    "non_llm_context_recall",
    *JUDGED_METRICS,
)
LOWER_IS_BETTER = {
    "wrongly_refused",
    "answerable_wrongly_refused",
    "claimed_unanswered",
    "false_correction",
}
RETRIEVAL = ("hit@", "mrr@", "evidence_recall@", "non_llm_context_recall")


# --- the baseline gate -----------------------------------------------------------


def tolerance(metric: str) -> float:
    if metric.startswith(RETRIEVAL):
        return 0.02
    if metric in JUDGED_METRICS:
        return 0.05
    return 0.03


def gated(metric: str) -> bool:
    return not (
        metric in ("n", "asked")
        or metric.startswith("latency_")
        or metric.endswith(("_n", "_failed"))
    )


@dataclass
class Comparison:
    regressions: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    question_regressions: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.regressions)


def _notes(result: RunResult, base_meta: dict[str, Any], same_judge: bool) -> list[str]:
    """Why some moves against the baseline may not be the system's doing."""
    notes = []
    if base_meta.get("questions_fingerprint") != result.meta["questions_fingerprint"]:
        notes.append(
            "the question set differs from the baseline's: figures compared, but some moves "
            "come from the questions, not the system"
        )
    asked_before, asked_now = base_meta.get("asked_ids"), result.meta.get("asked_ids")
    if asked_before is not None and asked_now is not None and asked_before != asked_now:
        notes.append(
            f"the model answered {len(asked_now)} questions, the baseline's run "
            f"{len(asked_before)} (or others): answer metrics compare different questions"
        )
    if not same_judge:
        notes.append(
            f"judged metrics NOT compared: the baseline was judged by {base_meta.get('judge')}, "
            f"this run by {result.meta.get('judge')}"
        )
    return notes


def _allowed(
    group: str, metric: str, metrics: dict[str, Any], before: dict[str, Any], n: int
) -> float:
    """How far `metric` of `group` may fall before it counts as a regression."""
    allowed = tolerance(metric)
    if group != "refusal":
        # A small group also tolerates one question's change (two for answer
        # metrics: greedy decoding can flip a close call on another CPU); a
        # metric counts only the questions it was scored on (a judged one those
        # judged, an answer metric those the model answered).
        retrieval = metric.startswith(RETRIEVAL)
        count = metrics.get(f"{metric}_n") or before.get(f"{metric}_n") or n
        flips = 1 if retrieval or metric in JUDGED_METRICS else 2
        if count:
            allowed = max(allowed, flips / count + 1e-9)
    return allowed


def _compare_group(
    cmp: Comparison, group: str, metrics: dict[str, Any], before: dict[str, Any], same_judge: bool
) -> None:
    """One group's gated metrics against the baseline, into `cmp`."""
    n = metrics.get("n") or before.get("n") or 0
    for metric, now in metrics.items():
        was = before.get(metric)
        if not gated(metric) or now is None or was is None:
            continue
        if metric in JUDGED_METRICS and not same_judge:
            continue
        allowed = _allowed(group, metric, metrics, before, n)
        delta = now - was if metric not in LOWER_IS_BETTER else was - now
        line = f"{group} {metric}: {was:.3f} -> {now:.3f}"
        if delta < -allowed:
            cmp.regressions.append(f"{line} (tolerance {allowed:.3f})")
        elif delta > allowed:
            cmp.improvements.append(line)


def _question_regressions(result: RunResult, baseline: dict[str, Any]) -> list[str]:
    """Questions that lost something they had in the baseline."""
    lines = []
    before_q = baseline.get("questions", {})
    for row in result.rows:
        was = before_q.get(row["id"])
        if not was:
            continue
        now = summary_row(row)
        for key in QUESTION_METRICS:
            if was.get(key) == 1.0 and now.get(key) == 0.0:
                lines.append(f"{row['id']} ({row['kind']}): {key} lost — {row['question']}")
    return lines


def compare(result: RunResult, baseline: dict[str, Any]) -> Comparison:
    """Compare a run with the baseline of the same profile, metric by metric,
    with tolerances; a small group also tolerates a question's change."""
    cmp = Comparison()
    same_judge = baseline["meta"].get("judge") == result.meta.get("judge")
    cmp.notes += _notes(result, baseline["meta"], same_judge)
    for group, metrics in result.aggregates.items():
        before = baseline["aggregates"].get(group)
        if not isinstance(before, dict) or not (
            group in ("all", "refusal") or group.startswith("kind:")
        ):
            continue
        _compare_group(cmp, group, metrics, before, same_judge)
    cmp.question_regressions += _question_regressions(result, baseline)
    return cmp


def baseline_section(result: RunResult) -> dict[str, Any]:
    return {
        "meta": result.meta,
        "aggregates": result.aggregates,
        "judge_check": {k: v for k, v in (result.judge_check or {}).items() if k != "errors"}
        or None,
        "questions": {r["id"]: summary_row(r) for r in result.rows},
    }


def update_baseline(path: Path, result: RunResult) -> None:
    data = json.loads(path.read_text()) if path.exists() else {"profiles": {}}
    data["profiles"][result.meta["profile"]] = baseline_section(result)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n")


def load_baseline(path: Path, profile: str) -> dict[str, Any] | None:
    if not path.exists():
        return None
    section: dict[str, Any] | None = json.loads(path.read_text())["profiles"].get(profile)
    return section


# --- Markdown ---------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _table(result: RunResult, groups: list[str]) -> list[str]:
    present = [
        m
        for m in TABLE_METRICS
        if any(result.aggregates.get(g, {}).get(m) is not None for g in groups)
    ]
    head = "| group | n | answered by the model | " + " | ".join(present) + " |"
    lines = [head, "|---|---|---|" + "---|" * len(present)]
    for group in groups:
        row = result.aggregates.get(group)
        if not row:
            continue
        cells = [_fmt(row.get(m)) for m in present]
        asked = row.get("asked", row["n"])
        lines.append(f"| {group} | {row['n']} | {asked} | " + " | ".join(cells) + " |")
    return lines


def worst(result: RunResult, count: int = 10) -> list[dict[str, Any]]:
    def badness(row: dict[str, Any]) -> float:
        m, j = row["metrics"], row["judged"]
        if not asked(row):  # searched only: a retrieval miss is all that can be wrong
            return 1 - m.get("hit@5", 1.0)
        if row["kind"] in UNANSWERABLE:
            return 2.0 * (1 - m.get("refused", 0.0))
        if row["kind"] == "premise":
            return 2.0 * (1 - m.get("premise_handled", 0.0))
        if row["kind"] == "partial":
            return 2.0 * (1 - m.get("partial_handled", 0.0))
        return (
            (1 - m.get("correct", 0.0))
            + (1 - m.get("hit@5", 0.0))
            + (1 - j.get("faithfulness", 1.0))
            + (1 - j.get("citation_recall", 1.0))
        )

    ranked = sorted(result.rows, key=badness, reverse=True)
    return [r for r in ranked if badness(r) > 0][:count]


def _summary(result: RunResult) -> list[str]:
    meta = result.meta
    target = meta["target"]
    return [
        f"# memoqa evaluation: profile `{meta['profile']}`",
        "",
        f"- run: {meta['created_at']}, {meta['questions']} questions (split {meta['split']}), "
        f"memoqa {meta['versions']['memoqa']}",
        f"- system: {target.get('mode')}, index `{target.get('index')}`, embedding "
        f"`{target.get('embed_model', '?')}`, generator `{target.get('generator', '?')}`",
        f"- corpus fingerprint `{target.get('corpus_fingerprint', '?')}`, question set "
        f"`{meta['questions_fingerprint']}`",
        f"- answered by the language model: {_asked(meta)}",
        f"- judge: `{meta.get('judge') or 'none'}`; judged questions: "
        f"{len(meta['judged_ids'])} ({meta['judged']})",
        f"- time: {result.seconds}",
    ]


def _asked(meta: dict[str, Any]) -> str:
    ids = meta.get("asked_ids")
    if meta.get("answers", "all") == "all" or ids is None:
        return "every question"
    return (
        f"{len(ids)} of {meta['questions']}, a fixed slice with every kind and paper; the "
        "others were searched only (retrieval metrics)"
    )


def _groups(result: RunResult) -> list[str]:
    return [
        "## By kind",
        "",
        *_table(result, ["all"] + [f"kind:{k}" for k in KINDS]),
        "",
        "## By paper",
        "",
        *_table(result, sorted(g for g in result.aggregates if g.startswith("paper:"))),
        "",
        "## By split",
        "",
        *_table(result, ["split:dev", "split:test"]),
        "",
        "Retrieval metrics count a passage when it contains an evidence span and are over "
        "every question; answer metrics are over the questions the model answered; `correct` "
        "needs every key fact in an answer that was not refused. Judged metrics are means over the "
        "questions they apply to (answer-level ones skip refusals).",
    ]


def _refusal(result: RunResult) -> list[str]:
    refusal = result.aggregates["refusal"]
    return [
        "## Refusal",
        "",
        "- unanswerable questions and near misses refused: "
        f"{_fmt(refusal['unanswerable_refused'])}",
        f"- answerable questions wrongly refused: {_fmt(refusal['answerable_wrongly_refused'])}",
        f"- refusals that were right (precision): {_fmt(refusal['refusal_precision'])}",
    ]


def _latency(result: RunResult) -> list[str]:
    overall = result.aggregates["all"]
    lines = ["## Latency (ms)", "", "| part | p50 | p95 |", "|---|---|---|"]
    for part in ("search", "retrieve", "answer", "total"):
        p50, p95 = overall[f"latency_{part}_p50_ms"], overall[f"latency_{part}_p95_ms"]
        lines.append(f"| {part} | {_fmt(p50)} | {_fmt(p95)} |")
    return lines


def _judge_check(check: dict[str, Any]) -> list[str]:
    return [
        "",
        "## How far to trust the judge",
        "",
        f"On {check['cases']} hand-labelled (statement, passage) support cases the judge was "
        f"right {_fmt(check['accuracy'])} of the time (supported cases "
        f"{_fmt(check['true_positive_rate'])}, unsupported {_fmt(check['true_negative_rate'])}; "
        f"{check['failed']} failed).",
        "",
        "| case type | accuracy |",
        "|---|---|",
        *[f"| {k} | {_fmt(v)} |" for k, v in check["by_type"].items()],
    ]


def _judge_failures(result: RunResult) -> list[str]:
    failures = [(r["id"], m, why) for r in result.rows for m, why in r["failures"].items()]
    if not failures:
        return []
    return ["", "## Judge failures", "", *[f"- {i} {m}: {why}" for i, m, why in failures]]


def _weak_answer(row: dict[str, Any]) -> list[str]:
    lines = [f"### {row['id']} ({row['kind']}): {row['question']}", ""]
    lines += [f"> earlier {turn['role']}: {turn['content']}" for turn in row["history"]]
    lines.append(f"- answer: {row['answer']}")
    lines.append(f"- reference: {row['reference']}")
    if row["citations"]:
        cites = "; ".join(
            f"[{c['ref']}] {c['section']} ({c['passage_id']})" for c in row["citations"]
        )
        lines.append(f"- citations: {cites}")
    scores = {**row["metrics"], **row["judged"]}
    lines.append("- scores: " + ", ".join(f"{k} {_fmt(v)}" for k, v in scores.items()))
    lines.append("")
    return lines


def _against_baseline(comparison: Comparison) -> list[str]:
    lines = ["## Against the baseline", ""]
    lines += [f"- note: {n}" for n in comparison.notes]
    lines += [f"- REGRESSION {r}" for r in comparison.regressions] or ["- no regression"]
    lines += [f"- improved {i}" for i in comparison.improvements]
    lines += [f"- question regressed: {q}" for q in comparison.question_regressions]
    return lines


def markdown(result: RunResult, comparison: Comparison | None = None) -> str:
    lines = [*_summary(result), "", *_groups(result), "", *_refusal(result), ""]
    lines += _latency(result)
    if result.judge_check:
        lines += _judge_check(result.judge_check)
    lines += _judge_failures(result)
    lines += ["", "## Weakest answers", ""]
    for row in worst(result):
        lines += _weak_answer(row)
    if comparison is not None:
        lines += _against_baseline(comparison)
    return "\n".join(lines) + "\n"


# --- HTML -------------------------------------------------------------------------


def _bars(title: str, series: dict[str, float | None], width: int = 560) -> str:
    bar_h, gap, label_w = 18, 6, 150
    items = list(series.items())
    height = len(items) * (bar_h + gap) + 30
    parts = [
        f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="0" y="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(items):
        y = 24 + i * (bar_h + gap)
        v = value or 0.0
        w = int((width - label_w - 60) * max(0.0, min(v, 1.0)))
        parts.append(f'<text x="0" y="{y + 13}">{html.escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="#3b6ea8"/>')
        parts.append(f'<text x="{label_w + w + 4}" y="{y + 13}">{_fmt(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _histogram(title: str, values: list[float], width: int = 560, bins: int = 12) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    step = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / step))] += 1
    top = max(counts)
    bar_w = (width - 40) / bins
    parts = [
        f'<svg width="{width}" height="190" role="img" aria-label="{html.escape(title)}">',
        f'<text x="0" y="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i, c in enumerate(counts):
        h = 130 * c / top
        x = 20 + i * bar_w
        parts.append(
            f'<rect x="{x:.1f}" y="{150 - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
            'fill="#8a5a9e"/>'
        )
        if c:
            parts.append(f'<text x="{x + 2:.1f}" y="{145 - h:.1f}" font-size="10">{c}</text>')
    parts.append(f'<text x="20" y="170" font-size="11">{lo:.0f} ms</text>')
    parts.append(f'<text x="{width - 90}" y="170" font-size="11">{hi:.0f} ms</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_page(result: RunResult, comparison: Comparison | None = None) -> str:
    agg = result.aggregates
    charts = []
    for metric in ("correct", "hit@5", "mrr@10", "key_facts", "faithfulness", "citation_recall"):
        series = {k: agg.get(f"kind:{k}", {}).get(metric) for k in KINDS}
        if any(v is not None for v in series.values()):
            charts.append(_bars(f"{metric} by kind", series))
    charts.append(_bars("refusal", dict(agg["refusal"])))
    charts.append(
        _histogram(
            "answer latency (server total)",
            [r["latency_ms"]["total"] for r in result.rows if "total" in r["latency_ms"]],
        )
    )
    body = html.escape(markdown(result, comparison))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>memoqa evaluation</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
        "svg{display:block;margin:1em 0;font-size:12px}pre{white-space:pre-wrap;background:#f6f6f6;"
        "padding:1em;font-size:13px}</style></head><body>"
        f"<h1>memoqa evaluation: {html.escape(result.meta['profile'])}</h1>"
        + "".join(charts)
        + f"<h2>Full report</h2><pre>{body}</pre></body></html>\n"
    )


def write_reports(
    out_dir: Path, result: RunResult, comparison: Comparison | None
) -> dict[str, Path]:
    paths = {
        "rows": out_dir / "rows.jsonl",
        "aggregates": out_dir / "aggregates.json",
        "markdown": out_dir / "report.md",
        "html": out_dir / "report.html",
    }
    with paths["rows"].open("w") as sink:
        for row in result.rows:
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
    paths["aggregates"].write_text(
        json.dumps(
            {
                "meta": result.meta,
                "aggregates": result.aggregates,
                "judge_check": result.judge_check,
                "seconds": result.seconds,
            },
            indent=1,
            ensure_ascii=False,
        )
        + "\n"
    )
    paths["markdown"].write_text(markdown(result, comparison))
    paths["html"].write_text(html_page(result, comparison))
    return paths
