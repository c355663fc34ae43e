"""`memoqa eval compare`: two evaluation runs side by side. Every metric per
kind with its difference and whether the difference is beyond run-to-run
noise, and the questions whose outcome changed, with both answers and their
citations. Written as Markdown and as a self-contained HTML page."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.dataset import KINDS, UNANSWERABLE
from eval.report import LOWER_IS_BETTER, TABLE_METRICS
from eval.runner import QUESTION_METRICS, aggregate, asked, summary_row
from ingest.errors import MemoqaError

BASELINE_PREFIX = "baseline:"
REFUSAL_METRICS = (
    "unanswerable_refused",
    "answerable_wrongly_refused",
    "refusal_precision",
    "refusal_recall",
)


class CompareError(MemoqaError):
    """Two runs that cannot be compared as asked, or a run that cannot be read."""


@dataclass
class Run:
    """One side of a comparison: a run folder, or a profile of the baseline file
    (which keeps figures and per-question outcomes, not answers)."""

    label: str
    meta: dict[str, Any]
    aggregates: dict[str, dict[str, Any]]
    outcomes: dict[str, dict[str, Any]]  # question id -> summary_row
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> full row, when kept

    @property
    def fingerprint(self) -> str:
        return str(self.meta.get("questions_fingerprint", ""))


def load_run(spec: str, baseline_file: Path) -> Run:
    """A run folder (its `aggregates.json` and `rows.jsonl`), or `baseline:PROFILE`."""
    if spec.startswith(BASELINE_PREFIX):
        return _baseline_run(spec.removeprefix(BASELINE_PREFIX) or "ci", baseline_file)
    folder = Path(spec)
    summary, rows_file = folder / "aggregates.json", folder / "rows.jsonl"
    if not summary.is_file() or not rows_file.is_file():
        raise CompareError(
            f"{spec} is not an evaluation run: it needs aggregates.json and rows.jsonl "
            "(written by `memoqa eval --out FOLDER`), or name a baseline as baseline:PROFILE"
        )
    try:
        data = json.loads(summary.read_text())
        rows = [json.loads(line) for line in rows_file.read_text().splitlines() if line.strip()]
        by_id = {str(r["id"]): r for r in rows}
        return Run(
            label=str(folder),
            meta=dict(data["meta"]),
            aggregates=dict(data["aggregates"]),
            outcomes={i: summary_row(r) for i, r in by_id.items()},
            rows=by_id,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CompareError(f"{spec}: cannot read the run: {exc}") from exc


def _baseline_run(profile: str, path: Path) -> Run:
    try:
        profiles = json.loads(path.read_text())["profiles"]
    except (OSError, ValueError, KeyError) as exc:
        raise CompareError(f"cannot read the baseline {path}: {exc}") from exc
    if profile not in profiles:
        raise CompareError(
            f"{path} has no '{profile}' baseline (it has: {', '.join(sorted(profiles))})"
        )
    section = profiles[profile]
    return Run(
        label=f"baseline:{profile}",
        meta=dict(section["meta"]),
        aggregates=dict(section["aggregates"]),
        outcomes=dict(section.get("questions", {})),
    )


def restrict(a: Run, b: Run, shared_only: bool) -> tuple[Run, Run]:
    """The two runs over the same questions. Runs over different question sets
    are refused unless `shared_only`, which keeps the questions both asked and
    recomputes each run's figures over them."""
    if a.fingerprint == b.fingerprint and a.fingerprint:
        return a, b
    shared = [i for i in a.outcomes if i in b.outcomes]
    if not shared_only:
        raise CompareError(
            f"the runs asked different question sets ({len(a.outcomes)} questions, set "
            f"{a.fingerprint or '?'}; {len(b.outcomes)} questions, set {b.fingerprint or '?'}). "
            f"Pass --shared-only to compare the {len(shared)} questions both asked."
        )
    if not shared:
        raise CompareError("the runs share no question: there is nothing to compare")
    for run in (a, b):
        if not run.rows:
            raise CompareError(
                f"--shared-only recomputes figures from the answers, and {run.label} keeps "
                "none: compare two run folders"
            )
    return _only(a, shared), _only(b, shared)


def _only(run: Run, ids: list[str]) -> Run:
    rows = [run.rows[i] for i in ids]
    return Run(
        label=run.label,
        meta={**run.meta, "questions": len(rows), "questions_fingerprint": "shared"},
        aggregates=aggregate(rows),
        outcomes={i: run.outcomes[i] for i in ids},
        rows={i: run.rows[i] for i in ids},
    )


# --- the comparison ------------------------------------------------------------------


@dataclass(frozen=True)
class MetricChange:
    group: str
    metric: str
    a: float | None
    b: float | None
    noise: float  # the band a difference must leave to count
    n: int = 0  # the questions the metric is a mean over

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def questions(self) -> str:
        """The difference in questions ("2 q"), for a rate over n questions."""
        if self.delta is None or not self.n:
            return "–"
        return f"{abs(self.delta) * self.n:.1f}".removesuffix(".0") + " q"

    @property
    def verdict(self) -> str:
        """better, worse, changed (no better or worse), within noise, or not in
        both (one side lacks it)."""
        if self.delta is None:
            return "not in both"
        if abs(self.delta) <= self.noise + 1e-6:
            return "within noise"
        up_is_better = self.higher_is_better
        if up_is_better is None:
            return "changed"
        return "better" if (self.delta > 0) == up_is_better else "worse"

    @property
    def higher_is_better(self) -> bool | None:
        """None where a rise is neither: refusals over answerable and unanswerable
        questions together."""
        if self.metric in LOWER_IS_BETTER:
            return False
        if self.metric == "refused":
            if not self.group.startswith("kind:"):
                return None
            return self.group.removeprefix("kind:") in UNANSWERABLE
        return True


@dataclass(frozen=True)
class QuestionChange:
    id: str
    kind: str
    question: str
    changes: dict[str, tuple[Any, Any]]  # metric -> (a, b)
    a: dict[str, Any] | None  # the full rows, when the runs keep them
    b: dict[str, Any] | None

    @property
    def direction(self) -> str:
        score = 0
        for metric, (was, now) in self.changes.items():
            if not isinstance(was, int | float) or not isinstance(now, int | float):
                continue
            if metric == "answered":
                continue
            lower_better = metric in LOWER_IS_BETTER or (
                metric == "refused" and self.kind not in UNANSWERABLE
            )
            better = now < was if lower_better else now > was
            score += 1 if better else -1
        return "better" if score > 0 else "worse" if score < 0 else "mixed"


@dataclass
class RunComparison:
    a: Run
    b: Run
    metrics: list[MetricChange]
    questions: list[QuestionChange]
    noise_source: str
    notes: list[str] = field(default_factory=list)


def groups_of(a: Run, b: Run) -> list[str]:
    """The groups both runs can be read by: all, each kind present, refusal."""
    present = set(a.aggregates) | set(b.aggregates)
    wanted = ["all", *(f"kind:{k}" for k in KINDS), "refusal"]
    return [g for g in wanted if g in present]


def noise_band(group: str, metric: str, noise: dict[str, Any]) -> float:
    """How far a metric moved between two runs of one configuration (`eval/noise.json`)."""
    return float(noise.get(group, {}).get(metric, 0.0))


def _scored(run: Run, group: str, metric: str) -> int | None:
    """How many of a run's questions a metric of a group is a mean over, read off
    its rows (a metric that applies to some kinds only, such as premise_handled,
    is a mean over those); None for a run without rows (a baseline)."""
    if not run.rows:
        return None
    rows = list(run.rows.values())
    if group == "refusal":
        rows = [r for r in rows if asked(r)]
        if metric == "refusal_precision":
            return sum(not r["answered"] for r in rows)
        if metric == "answerable_wrongly_refused":
            return sum(r["kind"] not in (*UNANSWERABLE, "premise") for r in rows)
        return sum(r["kind"] in UNANSWERABLE for r in rows)
    kind, split = group.removeprefix("kind:"), group.removeprefix("split:")
    members = [
        r
        for r in rows
        if group == "all"
        or (group.startswith("kind:") and r["kind"] == kind)
        or (group.startswith("split:") and r["split"] == split)
    ]
    return sum(metric in r["metrics"] or metric in r.get("judged", {}) for r in members)


def question_count(group: str, metric: str, a: Run, b: Run) -> int:
    """How many questions a metric of a group is a mean over (the larger run's)."""
    scored = [c for c in (_scored(run, group, metric) for run in (a, b)) if c is not None]
    if scored:
        return max(scored)
    counted = "all" if group == "refusal" else group
    counts = [
        run.aggregates.get(counted, {}).get(f"{metric}_n")
        or run.aggregates.get(counted, {}).get("n")
        for run in (a, b)
    ]
    return max((int(c) for c in counts if c), default=0)


def compare_runs(
    a: Run, b: Run, noise: dict[str, Any] | None = None, noise_source: str = ""
) -> RunComparison:
    """Every table metric of every group, then every question whose outcome changed."""
    noise = noise or {}
    changes = []
    for group in groups_of(a, b):
        before, after = a.aggregates.get(group, {}), b.aggregates.get(group, {})
        for metric in REFUSAL_METRICS if group == "refusal" else TABLE_METRICS:
            was, now = before.get(metric), after.get(metric)
            if was is None and now is None:
                continue
            band = noise_band(group, metric, noise)
            count = question_count(group, metric, a, b)
            changes.append(MetricChange(group, metric, was, now, band, count))
    comparison = RunComparison(a, b, changes, _question_changes(a, b), noise_source)
    comparison.notes += _notes(a, b)
    return comparison


def _question_changes(a: Run, b: Run) -> list[QuestionChange]:
    found = []
    for qid, was in a.outcomes.items():
        now = b.outcomes.get(qid)
        if now is None:
            continue
        keys = [*QUESTION_METRICS, "answered"]
        # A question searched only on one side is compared on what both scored.
        both = [k for k in keys if k in was and k in now] if "asked" in {*was, *now} else keys
        changed = {k: (was.get(k), now.get(k)) for k in both if was.get(k) != now.get(k)}
        if not changed:
            continue
        row_a, row_b = a.rows.get(qid), b.rows.get(qid)
        source = row_b or row_a or {}
        found.append(
            QuestionChange(
                qid,
                str(source.get("kind", "")),
                str(source.get("question", "")),
                changed,
                row_a,
                row_b,
            )
        )
    return sorted(found, key=lambda q: (q.direction != "worse", q.kind, q.id))


def _notes(a: Run, b: Run) -> list[str]:
    notes = []
    if a.meta.get("judge") != b.meta.get("judge"):
        notes.append(
            f"the judge differs ({a.meta.get('judge') or 'none'} / {b.meta.get('judge') or 'none'})"
            ": judged metrics move with it, not only with the system"
        )
    for key in ("corpus_fingerprint", "index"):
        one, two = a.meta.get("target", {}).get(key), b.meta.get("target", {}).get(key)
        if one and two and one != two:
            notes.append(f"the {key.replace('_', ' ')} differs ({one} / {two})")
    return notes


def measured_noise(a: Run, b: Run) -> dict[str, dict[str, float]]:
    """The run-to-run noise of two runs of the same configuration: each group's
    absolute difference per metric."""
    noise: dict[str, dict[str, float]] = {}
    for change in compare_runs(a, b).metrics:
        if change.delta is not None:
            noise.setdefault(change.group, {})[change.metric] = round(abs(change.delta), 4)
    return noise


# --- reports ---------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}"


def _describe(run: Run) -> str:
    target = run.meta.get("target", {})
    return (
        f"`{run.label}`: {run.meta.get('created_at', '?')}, {run.meta.get('questions', '?')} "
        f"questions, generator `{target.get('generator', '?')}`, judge "
        f"`{run.meta.get('judge') or 'none'}`, memoqa "
        f"{run.meta.get('versions', {}).get('memoqa', '?')}"
    )


def _answer_md(row: dict[str, Any] | None) -> list[str]:
    if row is None:
        return ["  (this run keeps no answers)"]
    lines = [f"  {row.get('answer', '').strip() or '(empty)'}"]
    for c in row.get("citations", []):
        notes = f" (endnotes {', '.join(map(str, c['endnotes']))})" if c.get("endnotes") else ""
        lines.append(f"  - [{c['ref']}] {c['section']}: “{c['quote']}”{notes}")
    return lines


def markdown(cmp: RunComparison) -> str:
    moved = [m for m in cmp.metrics if m.verdict in ("better", "worse", "changed")]
    lines = [
        "# memoqa evaluation: comparison",
        "",
        f"- A: {_describe(cmp.a)}",
        f"- B: {_describe(cmp.b)}",
        f"- noise: {cmp.noise_source or 'not measured (any difference counts)'}",
        *(f"- note: {n}" for n in cmp.notes),
        "",
        f"{len(moved)} figures moved beyond noise ({sum(m.verdict == 'better' for m in moved)} "
        f"better, {sum(m.verdict == 'worse' for m in moved)} worse); "
        f"{len(cmp.questions)} questions changed outcome.",
        "",
        "## Metrics by kind",
        "",
        "| group | metric | A | B | B − A | questions | noise | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in cmp.metrics:
        lines.append(
            f"| {m.group} | {m.metric} | {_fmt(m.a)} | {_fmt(m.b)} | {_signed(m.delta)} "
            f"| {m.questions} | ±{m.noise:.3f} | {m.verdict} |"
        )
    lines += ["", "## Questions whose outcome changed", ""]
    if not cmp.questions:
        lines.append("None.")
    for q in cmp.questions:
        changed = ", ".join(f"{k} {_fmt(a)} → {_fmt(b)}" for k, (a, b) in q.changes.items())
        lines += [
            f"### {q.id} ({q.kind}): {q.direction}",
            "",
            f"{q.question}",
            "",
            f"Changed: {changed}",
            "",
            "- A:",
            *_answer_md(q.a),
            "- B:",
            *_answer_md(q.b),
            "",
        ]
    return "\n".join(lines) + "\n"


_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#1b1b1b}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.better td.verdict{background:#d8f3dc}tr.worse td.verdict{background:#ffd6d6}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.side{border:1px solid #ccd;border-radius:6px;padding:8px 12px;background:#fafaff}
.side h4{margin:0 0 6px}.q{border-top:2px solid #99a;margin-top:18px;padding-top:8px}
.worse .tag{background:#ffd6d6}.better .tag{background:#d8f3dc}
.tag{padding:1px 6px;border-radius:4px}
ul.cites{font-size:13px;color:#333;padding-left:18px}
"""


def _answer_html(label: str, row: dict[str, Any] | None) -> str:
    if row is None:
        return f'<div class="side"><h4>{label}</h4><p><em>this run keeps no answers</em></p></div>'
    cites = "".join(
        f"<li>[{c['ref']}] {html.escape(c['section'])}: “{html.escape(c['quote'])}”"
        + (f" (endnotes {', '.join(map(str, c['endnotes']))})" if c.get("endnotes") else "")
        + "</li>"
        for c in row.get("citations", [])
    )
    answer = html.escape(row.get("answer", "").strip() or "(empty)")
    return f'<div class="side"><h4>{label}</h4><p>{answer}</p><ul class="cites">{cites}</ul></div>'


def html_page(cmp: RunComparison) -> str:
    """The comparison as one HTML file with nothing to fetch."""
    rows = "".join(
        f'<tr class="{m.verdict.replace(" ", "-")}"><td>{m.group}</td><td>{m.metric}</td>'
        f'<td class="num">{_fmt(m.a)}</td><td class="num">{_fmt(m.b)}</td>'
        f'<td class="num">{_signed(m.delta)}</td><td class="num">{m.questions}</td>'
        f'<td class="num">±{m.noise:.3f}</td>'
        f'<td class="verdict">{m.verdict}</td></tr>'
        for m in cmp.metrics
    )
    questions = "".join(
        f'<div class="q {q.direction}"><h3>{html.escape(q.id)} ({q.kind}) '
        f'<span class="tag">{q.direction}</span></h3><p>{html.escape(q.question)}</p>'
        "<p>Changed: "
        + html.escape(", ".join(f"{k} {_fmt(a)} → {_fmt(b)}" for k, (a, b) in q.changes.items()))
        + '</p><div class="pair">'
        + _answer_html("A", q.a)
        + _answer_html("B", q.b)
        + "</div></div>"
        for q in cmp.questions
    )
    notes = "".join(f"<li>note: {html.escape(n)}</li>" for n in cmp.notes)
    noise = html.escape(cmp.noise_source or "not measured (any difference counts)")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>memoqa evaluation: comparison</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>memoqa evaluation: comparison</h1>"
        f"<ul><li>A: {html.escape(_describe(cmp.a))}</li><li>B: {html.escape(_describe(cmp.b))}"
        f"</li><li>noise: {noise}</li>{notes}</ul>"
        "<h2>Metrics by kind</h2><table><thead><tr><th>group</th><th>metric</th><th>A</th>"
        "<th>B</th><th>B − A</th><th>questions</th><th>noise</th><th>verdict</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        f"<h2>Questions whose outcome changed ({len(cmp.questions)})</h2>"
        f"{questions or '<p>None.</p>'}</body></html>\n"
    )


def write(cmp: RunComparison, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "compare.md", "html": out / "compare.html"}
    paths["markdown"].write_text(markdown(cmp))
    paths["html"].write_text(html_page(cmp))
    return paths
