"""`memoqa eval compare` on run folders made from rows: the checks that refuse,
the verdicts against noise, and the reports."""

import json

import pytest

from eval.compare import (
    CompareError,
    MetricChange,
    compare_runs,
    html_page,
    load_run,
    markdown,
    measured_noise,
    restrict,
)
from eval.runner import aggregate, summary_row


def row(qid: str, kind: str, *, correct: float, answered: bool = True, answer: str = "x [1]"):
    return {
        "id": qid,
        "kind": kind,
        "split": "dev",
        "question": f"Question {qid}?",
        "answer": answer,
        "answered": answered,
        "citations": [
            {"ref": 1, "passage_id": "p1", "section": "Intro", "quote": "A quote.", "endnotes": [3]}
        ],
        "metrics": {"hit@5": 1.0, "correct": correct, "refused": float(not answered)},
        "judged": {},
        "failures": {},
        "latency_ms": {"search": 1.0, "retrieve": 1.0, "answer": 1.0, "total": 2.0},
    }


def write_run(folder, rows, fingerprint="set-1", generator="extractive"):
    folder.mkdir(parents=True)
    meta = {
        "created_at": "2026-12-01T00:00:00Z",
        "questions": len(rows),
        "questions_fingerprint": fingerprint,
        "judge": None,
        "target": {"generator": generator},
        "versions": {"memoqa": "0"},
    }
    (folder / "aggregates.json").write_text(
        json.dumps({"meta": meta, "aggregates": aggregate(rows)})
    )
    (folder / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


FACTS = [row(f"f{i}", "fact", correct=1.0) for i in range(10)]


def test_a_question_that_changed_is_shown_with_both_answers(tmp_path):
    changed = [*FACTS[:9], row("f9", "fact", correct=0.0, answered=False, answer="Not stated.")]
    a = load_run(str(write_run(tmp_path / "a", FACTS)), tmp_path / "none.json")
    b = load_run(str(write_run(tmp_path / "b", changed)), tmp_path / "none.json")
    cmp = compare_runs(*restrict(a, b, shared_only=False))
    (question,) = cmp.questions
    assert question.id == "f9" and question.direction == "worse"
    assert question.changes["correct"] == (1.0, 0.0) and question.changes["answered"] == (
        True,
        False,
    )
    correct = next(m for m in cmp.metrics if (m.group, m.metric) == ("kind:fact", "correct"))
    assert correct.delta == pytest.approx(-0.1) and correct.questions == "1 q"
    assert correct.verdict == "worse"  # no noise measured: any difference counts
    text = markdown(cmp)
    assert "Not stated." in text and "x [1]" in text and "“A quote.” (endnotes 3)" in text
    page = html_page(cmp)
    assert "Not stated." in page and "<script" not in page and "http" not in page


def test_verdicts_follow_the_metric_direction_and_the_noise():
    assert MetricChange("all", "correct", 0.5, 0.8, 0.1).verdict == "better"
    assert MetricChange("all", "correct", 0.5, 0.45, 0.1).verdict == "within noise"
    assert MetricChange("all", "wrongly_refused", 0.1, 0.4, 0.1).verdict == "worse"
    assert MetricChange("all", "correct", None, 0.4, 0.1).verdict == "not in both"
    # More refusals: right for unanswerable questions, wrong for facts, neither over all.
    assert MetricChange("kind:unanswerable", "refused", 0.5, 0.9, 0.1).verdict == "better"
    assert MetricChange("kind:fact", "refused", 0.0, 0.3, 0.1).verdict == "worse"
    assert MetricChange("all", "refused", 0.5, 0.9, 0.1).verdict == "changed"


def test_measured_noise_widens_the_band(tmp_path):
    twenty = [row(f"f{i}", "fact", correct=1.0) for i in range(20)]
    moved = [*twenty[:17], *(row(f"f{i}", "fact", correct=0.0) for i in range(17, 20))]
    a = load_run(str(write_run(tmp_path / "a", twenty)), tmp_path / "none.json")
    b = load_run(str(write_run(tmp_path / "b", moved)), tmp_path / "none.json")
    plain = compare_runs(a, b)
    noisy = compare_runs(a, b, measured_noise(a, b), "the same runs")
    pick = lambda c: next(m for m in c.metrics if (m.group, m.metric) == ("all", "correct"))  # noqa: E731
    assert pick(plain).verdict == "worse" and pick(noisy).verdict == "within noise"


def test_different_question_sets_are_refused_unless_shared_only(tmp_path):
    a = load_run(str(write_run(tmp_path / "a", FACTS)), tmp_path / "none.json")
    fewer = [*FACTS[:5], row("x1", "premise", correct=0.0)]
    b = load_run(str(write_run(tmp_path / "b", fewer, fingerprint="set-2")), tmp_path / "n.json")
    with pytest.raises(CompareError, match="different question sets.*--shared-only.*5 questions"):
        restrict(a, b, shared_only=False)
    one, two = restrict(a, b, shared_only=True)
    assert set(one.outcomes) == set(two.outcomes) == {f"f{i}" for i in range(5)}
    assert one.aggregates["all"]["n"] == two.aggregates["all"]["n"] == 5


def test_a_baseline_profile_is_one_side(tmp_path):
    baseline = tmp_path / "baseline.json"
    section = {
        "meta": {"questions_fingerprint": "set-1", "questions": 10, "judge": None},
        "aggregates": aggregate(FACTS),
        "questions": {r["id"]: summary_row(r) for r in FACTS},
    }
    baseline.write_text(json.dumps({"profiles": {"ci": section}}))
    base = load_run("baseline:ci", baseline)
    run = load_run(str(write_run(tmp_path / "b", FACTS)), baseline)
    cmp = compare_runs(*restrict(base, run, shared_only=False))
    assert not cmp.questions and all(m.verdict == "within noise" for m in cmp.metrics)
    assert "| all | correct | 1.000 | 1.000 | +0.000 | 0 q | ±0.000 | within noise |" in markdown(
        cmp
    )
    with pytest.raises(CompareError, match="no 'full' baseline"):
        load_run("baseline:full", baseline)


def test_a_folder_that_is_not_a_run_is_named(tmp_path):
    with pytest.raises(CompareError, match="is not an evaluation run"):
        load_run(str(tmp_path), tmp_path / "none.json")


def test_a_metric_of_some_kinds_counts_only_their_questions(tmp_path):
    def premise(qid, handled):
        r = row(qid, "premise", correct=handled)
        r["metrics"]["premise_handled"] = handled
        return r

    a = load_run(
        str(write_run(tmp_path / "a", [*FACTS, premise("p1", 1.0), premise("p2", 1.0)])),
        tmp_path / "none.json",
    )
    b = load_run(
        str(write_run(tmp_path / "b", [*FACTS, premise("p1", 1.0), premise("p2", 0.0)])),
        tmp_path / "none.json",
    )
    cmp = compare_runs(a, b)
    handled = next(m for m in cmp.metrics if (m.group, m.metric) == ("all", "premise_handled"))
    # Over all twelve questions, the one premise question that changed is 1 q, not 6.
    assert handled.delta == pytest.approx(-0.5) and handled.questions == "1 q"
