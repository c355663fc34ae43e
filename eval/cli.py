"""`memoqa eval`: did this change make answers worse? Added to the `memoqa`
command through the `memoqa.commands` entry point (`register`)."""

from __future__ import annotations

import json
import shutil
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from eval.settings import EvalSettings
from eval.settings import get_settings as get_eval_settings
from ingest.errors import MemoqaError
from service.cli.app import err, fail, out, progress_bars, settings_from, settings_with

if TYPE_CHECKING:
    from eval.dataset import EvalItem
    from eval.report import Comparison
    from eval.runner import EvalConfig, RunResult
    from service.engine import Engine

eval_app = typer.Typer(help="Evaluate answers and retrieval against the curated question set.")


def register(app: typer.Typer) -> None:
    """Add `memoqa eval` to the `memoqa` command."""
    app.add_typer(eval_app, name="eval")


# ci: the model answers a fixed stratified slice (every kind, every paper) and a fixed
# few of those are judged; every question is searched. full: every question answered
# and judged.
PROFILES = {
    "ci": {"judged": "slice", "split": "all", "answers": "slice"},
    "full": {"judged": "all", "split": "all", "answers": "all"},
}
HERE = Path(__file__).parent
SUMMARY_COLUMNS = (
    "n",
    "asked",
    "hit@5",
    "mrr@10",
    "key_facts",
    "correct",
    "refused",
    "faithfulness",
    "citation_recall",
)

Profile = Annotated[str, typer.Option(help="ci (judged metrics on a fixed slice) or full.")]
Split = Annotated[str | None, typer.Option(help="dev, test or all.")]
Limit = Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")]
Judged = Annotated[str | None, typer.Option(help="none, slice or all.")]
Answers = Annotated[
    str | None,
    typer.Option(
        help="slice (the model answers a fixed slice, the rest are searched only) or all."
    ),
]
JudgeUrl = Annotated[str | None, typer.Option(help="OpenAI-compatible judge endpoint.")]
JudgeModel = Annotated[str | None, typer.Option(help="Model name at that endpoint.")]
JudgeKey = Annotated[str | None, typer.Option(help="API key for that endpoint.")]
Url = Annotated[str | None, typer.Option(help="Evaluate a running server over HTTP.")]
Key = Annotated[
    str | None,
    typer.Option(envvar="MEMOQA_API_KEY", help="API key for --url (or MEMOQA_API_KEY)."),
]
OutDir = Annotated[Path | None, typer.Option("--out", help="Output folder.")]
Baseline = Annotated[Path | None, typer.Option(help="Baseline to compare with.")]
UpdateBaseline = Annotated[bool, typer.Option(help="Write this run as the baseline.")]
Report = Annotated[Path | None, typer.Option(help="Also copy the Markdown report here.")]
Questions = Annotated[Path, typer.Option(help="Question set (JSON Lines).")]
Metrics = Annotated[
    str | None,
    typer.Option(help="Judged metrics to score, comma-separated (default: all of them)."),
]


@eval_app.callback(invoke_without_command=True)
def evaluate(
    ctx: typer.Context,
    profile: Profile = "ci",
    split: Split = None,
    limit: Limit = None,
    judged: Judged = None,
    answers: Answers = None,
    judge_url: JudgeUrl = None,
    judge_model: JudgeModel = None,
    judge_key: JudgeKey = None,
    url: Url = None,
    key: Key = None,
    out_dir: OutDir = None,
    baseline: Baseline = None,
    update_baseline: UpdateBaseline = False,
    report: Report = None,
    questions: Questions = HERE / "questions.jsonl",
    metrics: Metrics = None,
) -> None:
    """Run the evaluation; with --baseline, exit 1 when quality regressed."""
    if ctx.invoked_subcommand is not None:
        return
    config = _config(profile, split, limit, judged, metrics, answers)
    judge = {"base_url": judge_url, "model": judge_model, "api_key": judge_key}
    settings = settings_from(get_eval_settings, judge=judge)
    items = _load(questions, settings, check_spans=url is None)
    target = out_dir or Path("eval/runs") / profile
    result = _run(items, config, settings, url, target, key)
    comparison = None
    if baseline is not None and not update_baseline:
        comparison = _compare(result, baseline, profile)
    _write(result, comparison, target, report)
    if update_baseline:
        _update_baseline(result, baseline or HERE / "baseline.json", profile)
        _keep_judgements(result, settings)
    if comparison is not None:
        _gate(comparison)


def _config(
    profile: str,
    split: str | None,
    limit: int | None,
    judged: str | None,
    metrics: str | None,
    answers: str | None = None,
) -> EvalConfig:
    from eval.runner import EvalConfig

    if profile not in PROFILES:
        raise fail(f"unknown profile '{profile}': choose ci or full", 2)
    config = EvalConfig(
        profile=profile,
        split=split or PROFILES[profile]["split"],
        limit=limit,
        judged=judged or PROFILES[profile]["judged"],
        answers=answers or PROFILES[profile]["answers"],
    )
    if config.split not in ("dev", "test", "all") or config.judged not in ("none", "slice", "all"):
        raise fail("--split is dev, test or all; --judged is none, slice or all", 2)
    if config.answers not in ("slice", "all"):
        raise fail("--answers is slice or all", 2)
    if metrics:
        config.metrics = _judged_metrics(metrics)
    return config


def _judged_metrics(metrics: str) -> tuple[str, ...]:
    from eval.runner import JUDGED_METRICS

    chosen = tuple(m.strip() for m in metrics.split(",") if m.strip())
    unknown = [m for m in chosen if m not in JUDGED_METRICS]
    if unknown or not chosen:
        raise fail(
            f"unknown judged metric(s) {', '.join(unknown) or '(none)'}: "
            f"choose from {', '.join(JUDGED_METRICS)}",
            2,
        )
    return chosen


def _load(questions: Path, settings: EvalSettings, *, check_spans: bool) -> list[EvalItem]:
    """The question file, checked before anything is asked: each line against the
    schema and, for the local index, each evidence span against the corpus. Every
    problem is named by its line."""
    from eval.dataset import corpus_text, load_items, validate

    try:
        items = load_items(questions)
        problems = validate(items, corpus_text(settings.corpus.manifest)) if check_spans else []
    except (OSError, ValueError, MemoqaError) as exc:
        raise fail(str(exc), 2) from exc
    if problems:
        lines = _lines_by_id(questions)
        for problem in problems:
            qid = problem.split(":", 1)[0]
            where = f"{questions}:{lines[qid]}" if qid in lines else str(questions)
            err.print(f"{where}: {problem}")
        raise fail(f"{questions}: {len(problems)} problem(s) found; nothing was evaluated", 2)
    return items


def _lines_by_id(path: Path) -> dict[str, int]:
    found = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            found[str(json.loads(line)["id"])] = number
        except (ValueError, KeyError, TypeError):
            continue
    return found


def _build_judge(settings: EvalSettings) -> Any:
    from eval.judge import build_judge

    return build_judge(settings.judge, settings.llm)


def _build_embeddings(settings: EvalSettings) -> Any:
    from ragas.embeddings import LlamaIndexEmbeddingsWrapper

    from ingest.settings import load_configured_embedder

    return LlamaIndexEmbeddingsWrapper(load_configured_embedder(settings).model)


def _run(
    items: list[EvalItem],
    config: EvalConfig,
    settings: EvalSettings,
    url: str | None,
    target: Path,
    key: str | None = None,
) -> RunResult:
    """The run itself, its progress shown; a failure of the system under test ends it."""
    from eval.client import Client, HttpClient, InProcessClient
    from eval.dataset import JUDGE_CASES
    from eval.judge import check_endpoint
    from eval.runner import run_eval

    started = time.perf_counter()
    with progress_bars(transient=False) as notify:
        try:
            if config.judged != "none" and settings.judge.base_url:
                check_endpoint(settings.judge)
            client: Client = HttpClient(url, key=key) if url else InProcessClient(settings)
            result = run_eval(
                items,
                config,
                client,
                target,
                judge_factory=partial(_build_judge, settings) if config.judged != "none" else None,
                embeddings_factory=partial(_build_embeddings, settings),
                judge_cases=JUDGE_CASES,
                judge_timeout_s=settings.judge.timeout_s,
                progress=notify,
            )
        except MemoqaError as exc:
            raise fail(str(exc)) from exc
    result.seconds["total"] = round(time.perf_counter() - started, 1)
    return result


def _compare(result: RunResult, baseline: Path, profile: str) -> Comparison:
    from eval.report import compare, load_baseline

    section = load_baseline(baseline, profile)
    if section is None:
        raise fail(f"{baseline} has no '{profile}' baseline: run with --update-baseline first", 2)
    return compare(result, section)


def _write(
    result: RunResult, comparison: Comparison | None, target: Path, report: Path | None
) -> None:
    from eval.report import write_reports

    paths = write_reports(target, result, comparison)
    _print_summary(result)
    out.print(f"report: {paths['markdown']} and {paths['html']}; rows: {paths['rows']}")
    if report is not None:
        shutil.copyfile(paths["markdown"], report)


def _update_baseline(result: RunResult, path: Path, profile: str) -> None:
    from eval.report import update_baseline

    update_baseline(path, result)
    out.print(f"baseline '{profile}' written to {path}")


def _keep_judgements(result: RunResult, settings: EvalSettings) -> None:
    """The judgements the new baseline's run used, kept beside it: a fresh clone's
    gate judges only the answers that changed since."""
    from eval.judge import write_kept

    path = settings.judge.kept_path
    if path is None or not result.judgements:
        return
    write_kept(path, result.judgements)
    out.print(f"{len(result.judgements)} judgements kept in {path}")


def _gate(comparison: Comparison) -> None:
    """Print the comparison; exit 1 when it found a regression."""
    for note in comparison.notes:
        out.print(f"[yellow]note:[/] {note}")
    for line in comparison.improvements:
        out.print(f"[green]improved[/] {line}")
    for line in comparison.question_regressions:
        out.print(f"[yellow]question regressed[/] {line}")
    for line in comparison.regressions:
        out.print(f"[bold red]REGRESSION[/] {line}")
    if comparison.failed:
        raise typer.Exit(1)
    out.print("no regression against the baseline")


def _print_summary(result: RunResult) -> None:
    from eval.dataset import KINDS

    agg = result.aggregates
    out.print(f"{'group':20}" + "".join(f"{c:>16}" for c in SUMMARY_COLUMNS))
    for group in ["all", *[f"kind:{k}" for k in KINDS], "split:dev", "split:test"]:
        row = agg.get(group)
        if not row:
            continue
        cells = []
        for c in SUMMARY_COLUMNS:
            v = row.get(c)
            cells.append(f"{'–' if v is None else (f'{v:.3f}' if isinstance(v, float) else v):>16}")
        out.print(f"{group:20}" + "".join(cells))
    r = agg["refusal"]
    out.print(
        f"refusal: unanswerable and near misses refused {r['unanswerable_refused']}, "
        f"answerable wrongly refused {r['answerable_wrongly_refused']}, "
        f"precision {r['refusal_precision']}"
    )
    partial, premise = agg.get("kind:partial", {}), agg.get("kind:premise", {})
    if partial or premise:
        out.print(
            f"partly answerable: handled {partial.get('partial_handled')}, missing part named "
            f"{partial.get('missing_named')}; false premises: corrected or refused "
            f"{premise.get('premise_handled')}, flagged {premise.get('premise_flagged')}"
        )
    if result.judge_check:
        check = result.judge_check
        out.print(f"judge accuracy on {check['cases']} support cases: {check['accuracy']}")
    out.print(f"time: {result.seconds}")


@eval_app.command("retrieval")
def retrieval(
    split: Annotated[str, typer.Option(help="dev, test or all.")] = "test",
    questions: Questions = HERE / "questions.jsonl",
    calibrate: Annotated[bool, typer.Option(help="Also tabulate the refusal threshold.")] = True,
) -> None:
    """Compare retrieval stages and the naive baseline side by side."""
    from eval.dataset import UNANSWERABLE, load_items
    from eval.retrieval import compare_stages, per_kind, table
    from service.engine import build_engine

    # The relevance signal comes from the extractive pass that every generator
    # runs first, so no language model is needed here.
    settings = settings_with(answer={"generator": "extractive"})
    items = [i for i in load_items(questions) if split == "all" or i.split == split]
    try:
        engine = build_engine(settings)
        results = compare_stages(settings, engine, items)
    except MemoqaError as exc:
        raise fail(str(exc)) from exc
    answerable = [i for i in items if i.kind not in UNANSWERABLE]
    out.print(
        f"{len(answerable)} answerable questions, split {split}; "
        "search latency in-process, 2 threads\n"
    )
    out.print(table(results))
    out.print(f"\nper kind, {results[-1].name}:\n")
    out.print(per_kind(results[-1]))
    if calibrate:
        _print_thresholds(engine, items, settings.answer.min_relevance)


def _print_thresholds(engine: Engine, items: list[EvalItem], current: float) -> None:
    """The refusal threshold's precision and recall around the configured one."""
    from eval.retrieval import refusal_signal, threshold_table

    signal = refusal_signal(engine, items)
    grid = sorted({round(current + d, 2) for d in (-0.1, -0.05, -0.02, 0.0, 0.02, 0.05, 0.1)})
    out.print(
        f"\nrefusal signal (answerer relevance), {len(items)} questions; "
        f"configured threshold {current}:\n"
    )
    out.print(
        "| threshold | precision (unanswerable) | recall (unanswerable) | answerable refused |"
    )
    out.print("|---|---|---|---|")
    for row in threshold_table(signal, grid):
        out.print(
            f"| {row['threshold']:.2f} | {row['precision']:.3f} | {row['recall']:.3f} | "
            f"{row['answerable_refused']:.3f} |"
        )


@eval_app.command("validate")
def validate_questions(
    files: Annotated[list[Path] | None, typer.Argument(help="Question files.")] = None,
) -> None:
    """Check the question set: schema, and that every evidence span is in the corpus."""
    from eval.dataset import QUESTIONS, corpus_text, load_items, summary, validate

    settings = settings_with()
    try:
        items = [i for f in (files or [QUESTIONS]) for i in load_items(f)]
        problems = validate(items, corpus_text(settings.corpus.manifest))
    except (OSError, ValueError, MemoqaError) as exc:
        raise fail(str(exc), 2) from exc
    for problem in problems:
        err.print(problem)
    out.print(summary(items))
    if problems:
        raise typer.Exit(1)


NOISE = HERE / "noise.json"


@eval_app.command("compare")
def compare_command(
    run_a: Annotated[str, typer.Argument(help="A run folder, or baseline:PROFILE.")],
    run_b: Annotated[str, typer.Argument(help="A run folder, or baseline:PROFILE.")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where compare.md and compare.html go.")
    ] = Path("eval/runs/compare"),
    shared_only: Annotated[
        bool,
        typer.Option(help="Runs over different question sets: compare the questions both asked."),
    ] = False,
    noise: Annotated[Path, typer.Option(help="Run-to-run noise measured by --save-noise.")] = NOISE,
    save_noise: Annotated[
        Path | None,
        typer.Option(help="The two runs share one configuration: save their differences as noise."),
    ] = None,
    baseline: Annotated[Path, typer.Option(help="Baseline file for baseline:PROFILE.")] = (
        HERE / "baseline.json"
    ),
) -> None:
    """Put two runs side by side: every metric per kind with its difference and
    whether it is beyond run-to-run noise, and the questions whose outcome changed."""
    from eval import compare as cmp

    try:
        a, b = cmp.restrict(
            cmp.load_run(run_a, baseline), cmp.load_run(run_b, baseline), shared_only
        )
        if save_noise is not None:
            _save_noise(save_noise, a, b)
            return
        measured, source = _load_noise(noise)
        comparison = cmp.compare_runs(a, b, measured, source)
        paths = cmp.write(comparison, out_dir)
    except (OSError, MemoqaError) as exc:
        raise fail(str(exc), 2) from exc
    moved = [m for m in comparison.metrics if m.verdict in ("better", "worse", "changed")]
    for m in moved:
        out.print(f"{m.verdict:>7}  {m.group} {m.metric}: {m.a:.3f} -> {m.b:.3f}")
    out.print(
        f"{len(moved)} figures beyond noise, {len(comparison.questions)} questions changed; "
        f"report: {paths['markdown']} and {paths['html']}"
    )


def _save_noise(path: Path, a: Any, b: Any) -> None:
    from datetime import UTC, datetime

    from eval.compare import measured_noise

    generator = {r.meta.get("target", {}).get("generator") for r in (a, b)}
    data = {
        "source": f"{a.label} and {b.label}, one configuration run twice "
        f"(generator {', '.join(sorted(str(g) for g in generator))}, judge "
        f"{a.meta.get('judge') or 'none'}), measured "
        f"{datetime.now(UTC).date().isoformat()}",
        "groups": measured_noise(a, b),
    }
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    out.print(f"run-to-run noise written to {path}")


def _load_noise(path: Path) -> tuple[dict[str, Any], str]:
    if not path.is_file():
        return {}, ""
    try:
        data = json.loads(path.read_text())
        return dict(data["groups"]), str(data["source"])
    except (ValueError, KeyError) as exc:
        raise fail(f"{path} is not a noise file (written by --save-noise): {exc}", 2) from exc
