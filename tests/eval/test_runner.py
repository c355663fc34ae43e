"""The evaluation run end to end with fakes: answers, judged metrics with a
deterministic judge, failures kept per item, resumption, reports and the gate."""

import json

import pytest
from fakes import FakeClient, SchemaJudge

from eval.dataset import EvalItem
from eval.report import compare, load_baseline, markdown, update_baseline, write_reports
from eval.runner import EvalConfig, run_eval

SPAN = "contributed approximately 4,000 military personnel"


def items():
    def make(i, kind, split, question, **extra):
        base = {
            "id": f"{kind[:5]}-{i:03d}",
            "kind": kind,
            "split": split,
            "question": question,
            "reference": "About 4,000 personnel took part.",
        }
        if kind != "unanswerable":
            base.update(key_facts=["4,000"], evidence=[{"doc": "weitz-2025-sco", "span": SPAN}])
        base.update(extra)
        return EvalItem.model_validate(base)

    return [
        make(1, "fact", "dev", "How many took part?"),
        make(2, "fact", "test", "How many again?"),
        make(1, "unanswerable", "dev", "What is the population of Kyrgyzstan?"),
    ]


ANSWERS = {
    "How many took part?": f"Eight members {SPAN} to Peace Mission 2021.",
    "How many again?": "Something else entirely.",
}


def run(tmp_path, client, judge, judged="all"):
    return run_eval(
        items(),
        EvalConfig(profile="ci", judged=judged),
        client,
        tmp_path / "out",
        judge_factory=lambda: judge,
        embeddings_factory=None,
        judge_cases=None,
        judge_timeout_s=30,
        progress=lambda *a: None,
    )


def test_run_scores_answers_and_refusals(tmp_path):
    result = run(tmp_path, FakeClient(ANSWERS), SchemaJudge(), judged="none")
    rows = {r["id"]: r for r in result.rows}
    assert (
        rows["fact-001"]["metrics"]["correct"] == 1.0
        and rows["fact-001"]["metrics"]["hit@1"] == 1.0
    )
    assert (
        rows["fact-002"]["metrics"]["correct"] == 0.0
        and rows["fact-002"]["metrics"]["cited_evidence"] == 0.0
    )
    assert rows["unans-001"]["metrics"]["refused"] == 1.0
    assert result.aggregates["kind:fact"]["correct"] == 0.5
    assert result.aggregates["refusal"]["unanswerable_refused"] == 1.0
    assert rows["fact-001"]["metrics"]["string_presence"] == 1.0


def test_judged_metrics_and_failures_are_kept_per_item(tmp_path):
    result = run(tmp_path, FakeClient(ANSWERS), SchemaJudge(fail_on="Something else entirely"))
    good = next(r for r in result.rows if r["id"] == "fact-001")
    bad = next(r for r in result.rows if r["id"] == "fact-002")
    assert {"faithfulness", "citation_recall", "context_recall"} <= set(good["judged"])
    assert "faithfulness" in bad["failures"] and "timed out" in bad["failures"]["faithfulness"]
    assert "faithfulness" not in bad["judged"]
    fact = result.aggregates["kind:fact"]
    assert fact["faithfulness_n"] == 1 and fact["faithfulness_failed"] == 1
    assert fact["faithfulness"] == good["judged"]["faithfulness"]  # the failure is not averaged in
    assert result.meta["judge"] == "fake:schema"


def test_interrupted_runs_resume_without_asking_again(tmp_path):
    client = FakeClient(ANSWERS)
    run(tmp_path, client, SchemaJudge(), judged="none")
    assert client.asked == 3
    run(tmp_path, client, SchemaJudge(), judged="none")
    assert client.asked == 3


def many_items(count=12):
    return [
        EvalItem.model_validate(
            {
                "id": f"fact-{i:03d}",
                "kind": "fact",
                "split": "test",
                "question": f"Question {i}?",
                "reference": "About 4,000.",
                "key_facts": ["4,000"],
                "evidence": [{"doc": "weitz-2025-sco", "span": SPAN}],
            }
        )
        for i in range(1, count + 1)
    ]


def test_the_gate_fails_when_answers_get_worse(tmp_path):
    good = {f"Question {i}?": f"Members {SPAN}." for i in range(1, 13)}
    bad = dict(good, **{f"Question {i}?": "Unrelated text." for i in range(1, 6)})

    def go(answers, where):
        return run_eval(
            many_items(),
            EvalConfig(profile="ci", judged="none"),
            FakeClient(answers),
            tmp_path / where,
            judge_factory=None,
            embeddings_factory=None,
            judge_cases=None,
            judge_timeout_s=30,
            progress=lambda *a: None,
        )

    base = go(good, "good")
    baseline = tmp_path / "baseline.json"
    update_baseline(baseline, base)
    section = load_baseline(baseline, "ci")
    assert not compare(go(good, "again"), section).failed
    worse = compare(go(bad, "bad"), section)
    assert worse.failed and any("correct" in r for r in worse.regressions)
    assert len(worse.question_regressions) >= 5


def test_reports_and_baseline_gate(tmp_path):
    result = run(tmp_path, FakeClient(ANSWERS), SchemaJudge())
    paths = write_reports(tmp_path / "out", result, None)
    assert "## By kind" in paths["markdown"].read_text()
    page = paths["html"].read_text()
    assert "<svg" in page and "http" not in page.replace("http://www.w3.org", "")  # self-contained
    baseline = tmp_path / "baseline.json"
    update_baseline(baseline, result)
    section = load_baseline(baseline, "ci")
    assert not compare(result, section).failed

    worse_answers = dict(ANSWERS, **{"How many took part?": "No idea, but here is text."})
    worse = run(tmp_path / "worse", FakeClient(worse_answers), SchemaJudge())
    cmp = compare(worse, section)
    assert any("fact-001" in q for q in cmp.question_regressions)
    assert "Against the baseline" in markdown(worse, cmp)

    other_judge = run(tmp_path / "other", FakeClient(ANSWERS), SchemaJudge())
    other_judge.meta["judge"] = "openai:https://example/v1#big"
    notes = compare(other_judge, section).notes
    assert any("NOT compared" in n for n in notes)
    assert json.loads(baseline.read_text())["profiles"]["ci"]["meta"]["judge"] == "fake:schema"


@pytest.mark.parametrize("judged", ["slice", "all"])
def test_judged_slice_is_the_first_dev_item_of_each_kind(tmp_path, judged):
    result = run(tmp_path, FakeClient(ANSWERS), SchemaJudge(), judged=judged)
    expected = (
        ["fact-001", "unans-001"] if judged == "slice" else ["fact-001", "fact-002", "unans-001"]
    )
    assert result.meta["judged_ids"] == expected


def test_only_the_judged_metrics_asked_for_are_scored(tmp_path):
    result = run_eval(
        items(),
        EvalConfig(profile="ci", judged="all", metrics=("faithfulness",)),
        FakeClient(ANSWERS),
        tmp_path / "out",
        judge_factory=SchemaJudge,
        embeddings_factory=None,
        judge_cases=None,
        judge_timeout_s=30,
        progress=lambda *a: None,
    )
    judged = {name for r in result.rows for name in r["judged"]}
    assert judged == {"faithfulness"} and result.meta["judged_metrics"] == ["faithfulness"]


def test_new_kinds_are_scored_for_what_they_test(tmp_path):
    def item(kind, question, **extra):
        return EvalItem.model_validate(
            {
                "id": f"{kind}-001",
                "kind": kind,
                "split": "test",
                "question": question,
                "reference": "A reference.",
                **extra,
            }
        )

    span = {"doc": "weitz-2025-sco", "span": SPAN}
    questions = [
        item("nearmiss", "How many troops did China alone send?", trap=[span]),
        item(
            "partial",
            "How many took part, and why?",
            key_facts=["4,000"],
            evidence=[span],
            missing="why",
        ),
        item(
            "premise",
            "Why did China send 4,000 troops alone?",
            key_facts=["Eight members"],
            evidence=[span],
            premise="China alone sent them",
        ),
    ]

    class Client(FakeClient):
        def ask(self, question, top_k=None, history=None):
            body = super().ask(question, top_k, history)
            if "and why" in question:
                body["unanswered"] = ["Why?"]
            return body

    answers = {
        "How many took part, and why?": f"Eight members {SPAN}.",
        "Why did China send 4,000 troops alone?": f"Eight members {SPAN}.",
    }
    result = run_eval(
        questions,
        EvalConfig(profile="ci", judged="none"),
        Client(answers),
        tmp_path / "out",
        judge_factory=None,
        embeddings_factory=None,
        judge_cases=None,
        judge_timeout_s=30,
        progress=lambda *a: None,
    )
    rows = {r["kind"]: r["metrics"] for r in result.rows}
    assert rows["nearmiss"]["refused"] == 1.0
    assert rows["partial"]["partial_handled"] == 1.0 and rows["partial"]["missing_named"] == 1.0
    assert rows["premise"]["premise_handled"] == 1.0 and rows["premise"]["refused"] == 0.0
    assert result.aggregates["refusal"]["unanswerable_refused"] == 1.0


def sliced_items():
    """Two papers, three kinds, groups of unequal size."""

    def make(n, kind, doc):
        base = {"id": f"{kind[:5]}-{n:03d}", "kind": kind, "split": "dev" if n == 1 else "test"}
        base.update(question=f"{kind} question {n}?", reference="About 4,000.")
        if kind == "unanswerable":
            return EvalItem.model_validate(base)
        evidence = [{"doc": doc, "span": SPAN}]
        return EvalItem.model_validate({**base, "key_facts": ["4,000"], "evidence": evidence})

    out = [make(n, "fact", "paper-a") for n in range(1, 21)]
    out += [make(n, "fact", "paper-b") for n in range(21, 26)]
    out += [make(n, "list", "paper-b") for n in range(1, 3)]
    out += [make(n, "unanswerable", "") for n in range(1, 11)]
    return out


def test_the_answer_slice_holds_every_kind_and_paper_in_proportion():
    from eval.runner import answer_slice, judged_slice, paper_of

    questions = sliced_items()
    chosen = answer_slice(questions, 12)
    by_id = {i.id: i for i in questions}
    groups = {}
    for qid in chosen:
        key = (by_id[qid].kind, paper_of(by_id[qid]))
        groups[key] = groups.get(key, 0) + 1
    assert len(chosen) == 12
    # Every group has one; the rest go in proportion (20 : 5 : 2 : 10 questions).
    assert groups == {
        ("fact", "paper-a"): 6,
        ("fact", "paper-b"): 2,
        ("list", "paper-b"): 1,
        ("unanswerable", "any"): 3,
    }
    assert set(judged_slice(questions)) <= set(chosen)
    assert answer_slice(list(reversed(questions)), 12) == chosen[::-1]
    # Questions added to one group leave the others' choice as it was.
    grown = questions + [
        EvalItem.model_validate({**by_id["fact-002"].model_dump(), "id": f"fact-{n:03d}"})
        for n in range(30, 35)
    ]
    kept = [q for q in chosen if by_id[q].kind != "fact"]
    assert [q for q in answer_slice(grown, 12) if not q.startswith("fact")] == kept
    # A slice smaller than the groups still has one of each.
    assert len(answer_slice(questions, 2)) == 4
    assert set(answer_slice(questions, 100)) == set(by_id)


class SearchFinds(FakeClient):
    """Search finds the evidence whatever the answers."""

    def search(self, q, k):
        return FakeClient({q: f"Members {SPAN}."}).search(q, k)


def test_a_sliced_run_searches_the_rest_and_gates_on_what_was_answered(tmp_path):
    questions = sliced_items()
    answers = {i.question: f"Members {SPAN}." for i in questions if i.kind != "unanswerable"}
    client = SearchFinds(answers)
    config = EvalConfig(profile="ci", judged="none", answers="slice", slice_size=12)

    def go(where, client):
        return run_eval(
            questions,
            config,
            client,
            tmp_path / where,
            judge_factory=None,
            embeddings_factory=None,
            judge_cases=None,
            judge_timeout_s=30,
            progress=lambda *a: None,
        )

    result = go("out", client)
    assert client.asked == 12 and len(result.rows) == len(questions)
    searched = [r for r in result.rows if r["asked"] is False]
    assert len(searched) == len(questions) - 12
    fact = next(r for r in searched if r["kind"] == "fact")
    assert fact["metrics"]["hit@1"] == 1.0 and "correct" not in fact["metrics"]
    assert all(r["answered"] is None for r in searched)
    agg = result.aggregates
    assert agg["all"]["n"] == 37 and agg["all"]["asked"] == 12
    assert agg["kind:fact"]["correct"] == 1.0 and agg["kind:fact"]["hit@1"] == 1.0
    assert agg["refusal"]["unanswerable_refused"] == 1.0
    assert agg["refusal"]["answerable_wrongly_refused"] == 0.0
    assert result.meta["answers"] == "slice" and len(result.meta["asked_ids"]) == 12
    assert "12 of 37, a fixed slice" in markdown(result)

    # The same run again reuses every row. The gate counts answer metrics over the
    # questions answered: of the 8 facts answered, two going wrong are within its
    # tolerance of two flips, three are not.
    again = SearchFinds(answers)
    go("out", again)
    assert again.asked == 0
    baseline = tmp_path / "baseline.json"
    update_baseline(baseline, result)
    section = load_baseline(baseline, "ci")
    answered_facts = [r["question"] for r in result.rows if r["asked"] and r["kind"] == "fact"]
    assert len(answered_facts) == 8
    two_wrong = dict(answers, **dict.fromkeys(answered_facts[:2], "Unrelated text."))
    assert not compare(go("two", SearchFinds(two_wrong)), section).failed
    three_wrong = dict(answers, **dict.fromkeys(answered_facts[:3], "Unrelated text."))
    worse = compare(go("three", SearchFinds(three_wrong)), section)
    assert worse.failed and any("kind:fact correct" in r for r in worse.regressions)
