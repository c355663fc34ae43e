"""The CLI turns bad input into a message and a non-zero exit, never a traceback."""

import json

import pytest
from support import memoqa_env, run_cli

pytestmark = pytest.mark.slow


def test_ingest_with_a_missing_manifest(tmp_path):
    result = run_cli(["ingest"], memoqa_env(tmp_path, tmp_path / "missing.json"))
    assert result.returncode == 1
    assert "manifest not found" in result.stderr and "Traceback" not in result.stderr


def test_ingest_with_an_undecodable_file_names_it(tmp_path):
    (tmp_path / "bad.md").write_bytes(b"\xff\xfe\x00\x00garbage")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps({"documents": [{"id": "bad", "file": "bad.md", "title": "Bad"}]})
    )
    result = run_cli(["ingest"], memoqa_env(tmp_path, manifest))
    assert result.returncode == 1
    assert "bad.md" in result.stderr and "left as it was" in result.stderr
    assert "Traceback" not in result.stderr


def test_ask_with_an_empty_question(tmp_path):
    result = run_cli(["ask", "  "], memoqa_env(tmp_path, tmp_path / "m.json"))
    assert result.returncode == 2 and "error:" in result.stderr


def test_ask_without_an_index(tmp_path):
    result = run_cli(["ask", "Anything?"], memoqa_env(tmp_path, tmp_path / "m.json"))
    assert result.returncode == 1 and "memoqa ingest" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_with_nothing_to_measure(tmp_path):
    result = run_cli(["bench", "--no-plain"], memoqa_env(tmp_path, tmp_path / "m.json"))
    assert result.returncode == 2 and "--no-plain needs --stream" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_waits_out_rate_limits(tmp_path):
    from support import ServerThread, rate_limited_api

    questions = tmp_path / "q.txt"
    questions.write_text("One?\nTwo?\n")
    with ServerThread(rate_limited_api()) as server:
        result = run_cli(
            ["bench", "--url", server.url, "--questions", str(questions)],
            memoqa_env(tmp_path, tmp_path / "m.json"),
        )
    assert result.returncode == 0, result.stderr
    assert "2 questions (1 kinds, 0 papers) x 1 round(s)" in result.stdout
    assert "2 answered" in result.stdout


def test_bench_asks_a_stratified_sample_of_the_eval_set(tmp_path):
    """By default the bench draws from the evaluation's questions: every kind,
    only papers the server holds, and follow-ups on /v1/chat with their history."""
    from support import ServerThread, rate_limited_api

    app = rate_limited_api()
    with ServerThread(app) as server:
        result = run_cli(
            ["bench", "--url", server.url, "--sample", "30"],
            memoqa_env(tmp_path, tmp_path / "m.json"),
        )
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    asked = int(first.split()[0])
    assert asked >= 10 and "(10 kinds, 1 papers)" in first, first
    assert "left out: their papers are not indexed" in result.stdout
    assert (
        app.state.asked["chat"] >= 1 and app.state.asked["ask"] + app.state.asked["chat"] == asked
    )
    assert "/v1/ask by kind" in result.stdout and "followup" in result.stdout


def test_bench_without_the_needed_key_says_why(tmp_path):
    from support import ServerThread, rate_limited_api

    env = memoqa_env(tmp_path, tmp_path / "m.json")
    with ServerThread(rate_limited_api(require_key="k1")) as server:
        refused = run_cli(["bench", "--url", server.url], env)
        keyed = run_cli(["bench", "--url", server.url, "--key", "k1"], env)
    assert refused.returncode == 1 and "401" in refused.stderr and "API key" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert keyed.returncode == 0, keyed.stderr


def test_eval_names_the_bad_lines_of_a_question_file(tmp_path):
    from support import MANIFEST, ROOT

    first = json.loads((ROOT / "eval/questions.jsonl").read_text().splitlines()[0])
    moved = {**first, "id": "fact-902", "question": "Another question?"}
    moved["evidence"] = [{**first["evidence"][0], "span": "words the memo never wrote"}]
    env = memoqa_env(tmp_path, MANIFEST)
    spans = tmp_path / "spans.jsonl"
    spans.write_text(json.dumps(first) + "\n" + json.dumps(moved) + "\n")
    result = run_cli(["eval", "--questions", str(spans), "--judged", "none"], env)
    assert result.returncode == 2 and f"{spans}:2: fact-902: span not in" in result.stderr
    assert "nothing was evaluated" in result.stderr and "Traceback" not in result.stderr

    schema = tmp_path / "schema.jsonl"
    schema.write_text(json.dumps(first) + "\n\n" + '{"id": "own-3"}\n')
    result = run_cli(["eval", "--questions", str(schema), "--judged", "none"], env)
    assert result.returncode == 2 and f"{schema}:3:" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_with_a_question_set_it_cannot_read_says_why(tmp_path):
    from support import ServerThread, rate_limited_api

    broken = tmp_path / "q.jsonl"
    broken.write_text('{"id": "x-001", "kind": "fact"\n')
    with ServerThread(rate_limited_api()) as server:
        result = run_cli(
            ["bench", "--url", server.url, "--questions", str(broken)],
            memoqa_env(tmp_path, tmp_path / "m.json"),
        )
    assert result.returncode == 2 and "cannot read the questions" in result.stderr
    assert "Traceback" not in result.stderr
