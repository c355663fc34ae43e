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


def _rate_limited_api(require_key: str | None = None):  # type: ignore[no-untyped-def]
    """A stand-in for the service that answers every other request with 429."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()
    calls = {"n": 0}

    @app.middleware("http")
    async def limit(request: Request, call_next):  # type: ignore[no-untyped-def]
        if require_key and request.headers.get("authorization") != f"Bearer {require_key}":
            return JSONResponse({"detail": "a valid API key is required"}, status_code=401)
        calls["n"] += 1
        if calls["n"] % 2:
            return JSONResponse(
                {"detail": "rate limited"}, status_code=429, headers={"Retry-After": "0"}
            )
        return await call_next(request)

    @app.get("/v1/search")
    def search(q: str, k: int = 10) -> dict:
        return {"passages": []}

    @app.post("/v1/ask")
    def ask() -> dict:
        return {"answer": "x [1]", "answered": True, "timings_ms": {"total": 1.0}}

    return app


def test_bench_waits_out_rate_limits(tmp_path):
    from support import ServerThread

    questions = tmp_path / "q.txt"
    questions.write_text("One?\nTwo?\n")
    with ServerThread(_rate_limited_api()) as server:
        result = run_cli(
            ["bench", "--url", server.url, "--questions", str(questions)],
            memoqa_env(tmp_path, tmp_path / "m.json"),
        )
    assert result.returncode == 0, result.stderr
    assert "2 questions x 1 round(s)" in result.stdout and "2 answered" in result.stdout


def test_bench_without_the_needed_key_says_why(tmp_path):
    from support import ServerThread

    env = memoqa_env(tmp_path, tmp_path / "m.json")
    with ServerThread(_rate_limited_api(require_key="k1")) as server:
        refused = run_cli(["bench", "--url", server.url], env)
        keyed = run_cli(["bench", "--url", server.url, "--key", "k1"], env)
    assert refused.returncode == 1 and "401" in refused.stderr and "API key" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert keyed.returncode == 0, keyed.stderr
