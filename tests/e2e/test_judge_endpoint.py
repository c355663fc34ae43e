"""`memoqa eval --judge-url`: the judged metrics and the judge's own check asked
of an OpenAI-compatible endpoint over real HTTP, and an endpoint that fails."""

from __future__ import annotations

import json
import re

import pytest
from support import MANIFEST, OpenAICompatibleServer, memo_questions, memoqa_env, run_cli

pytestmark = pytest.mark.slow

_WORD = re.compile(r"[a-z0-9]+")


def _support_judge(messages: list[dict[str, str]]) -> str:
    """A strict rule judge for the support prompt: supported when every word of
    four letters or more in the statement occurs in the premise."""
    prompt = messages[-1]["content"]
    given, _ = json.JSONDecoder().raw_decode(prompt[prompt.rindex("input: ") + len("input: ") :])
    premise = set(_WORD.findall(given["premise"].lower()))
    words = [w for w in _WORD.findall(given["statement"].lower()) if len(w) >= 4]
    return json.dumps({"verdict": int(all(w in premise for w in words))})


def _ingested(tmp_path):
    """The environment of a memo ingested into `tmp_path`, answered extractively."""
    env = memoqa_env(
        tmp_path,
        MANIFEST,
        MEMOQA_ANSWER__GENERATOR="extractive",
        MEMOQA_JUDGE__CACHE_PATH=str(tmp_path / "judge-cache.sqlite"),
    )
    assert run_cli(["ingest"], env).returncode == 0
    return env


def _eval(tmp_path, env, name, url):
    out = tmp_path / name
    done = run_cli(
        [
            "eval",
            "--split",
            "dev",
            "--limit",
            "6",
            "--judged",
            "all",
            "--metrics",
            "citation_recall,citation_precision",
            "--judge-url",
            url,
            "--judge-model",
            "judge-7b",
            "--questions",
            str(memo_questions(tmp_path)),
            "--out",
            str(out),
        ],
        env,
    )
    return done, out


def test_a_judge_endpoint_scores_the_run_and_its_check(tmp_path):
    env = _ingested(tmp_path)
    with OpenAICompatibleServer(_support_judge) as server:
        done, out = _eval(tmp_path, env, "run", server.url)
        assert done.returncode == 0, done.stderr
        asked = list(server.requests)
        # The same run again: every judgement comes from the cache, none is asked.
        again, _ = _eval(tmp_path, env, "run-again", server.url)
        assert again.returncode == 0, again.stderr
        assert len(server.requests) == len(asked)
    assert asked and all(r["model"] == "judge-7b" and r["temperature"] == 0 for r in asked)
    schema = asked[0]["response_format"]["json_schema"]["schema"]
    assert "verdict" in schema["properties"]

    saved = json.loads((out / "aggregates.json").read_text())
    assert saved["meta"]["judge"] == f"openai:{server.url}#judge-7b"
    assert saved["judge_check"]["cases"] == 96
    # The rule judge is strict: it refuses paraphrases and accepts near-verbatim swaps.
    assert 0.3 < saved["judge_check"]["accuracy"] < 1.0
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    judged = [r for r in rows if r["judged"]]
    assert judged and all(not r["failures"] for r in rows)
    assert any("citation_recall" in r["judged"] for r in judged)
    assert "judge-7b" in (out / "report.md").read_text()


def test_a_judge_endpoint_that_cannot_be_used_ends_the_run_at_once(tmp_path):
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from support import ServerThread

    env = _ingested(tmp_path)
    done, out = _eval(tmp_path, env, "unreachable", "http://127.0.0.1:9/v1")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    said = " ".join(done.stderr.split())
    assert "the judge endpoint http://127.0.0.1:9/v1 cannot be reached" in said
    assert not (out / "answers.jsonl").exists()  # nothing was answered for nothing

    guarded = FastAPI()

    @guarded.get("/v1/models")
    def models() -> JSONResponse:
        return JSONResponse({"error": "invalid key"}, status_code=401)

    with ServerThread(guarded) as server:
        done, _ = _eval(tmp_path, env, "refused", server.url + "/v1")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "refused the key (HTTP 401)" in " ".join(done.stderr.split())
