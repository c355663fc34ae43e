"""Paths of the real corpus and the library of real reports, what was counted
in those by hand, and real processes on loopback for end-to-end tests."""

from __future__ import annotations

import difflib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import Request

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
MEMO = ROOT / "corpus" / "weitz-2025-sino-russian-interactions-sco.md"
MANIFEST = ROOT / "corpus" / "manifest.json"
# The embedding model's ONNX export, made once and shared by every test's index.
ONNX = ROOT / ".memoqa" / "onnx"
# Real, public-domain reports (CRS and GAO) with what was counted in them by hand.
PAPERS = ROOT / "tests" / "papers"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memoqa_env(tmp: Path, manifest: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOQA_")}
    env.update(
        {
            "MEMOQA_CORPUS__MANIFEST": str(manifest),
            "MEMOQA_INDEX__PATH": str(tmp / "index"),
            "MEMOQA_INDEX__LOCK_PATH": str(tmp / "ingest.lock"),
            "MEMOQA_INDEX__ONNX_PATH": str(ONNX),
        }
    )
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "memoqa"), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def wait_until(
    url: str,
    *,
    status: int = 200,
    timeout: float = 180,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == status:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer {status} within {timeout}s (last: {last})")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class ServerThread:
    """Any ASGI app served by uvicorn on a loopback port, in a thread."""

    def __init__(self, app: object) -> None:
        import threading

        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        )  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class OpenAICompatibleServer(ServerThread):
    """A small OpenAI-compatible chat completions server on loopback, answering
    with `reply(messages)`; streams Server-Sent Events when asked to."""

    def __init__(self, reply: Callable[[list[dict[str, str]]], str]) -> None:
        import json

        from fastapi import FastAPI
        from fastapi.responses import JSONResponse, StreamingResponse

        app = FastAPI()
        self.requests: list[dict] = []

        @app.post("/v1/chat/completions")
        async def completions(request: Request):  # type: ignore[no-untyped-def]
            body = await request.json()
            self.requests.append(body)
            text = reply(body["messages"])
            if body.get("stream"):

                def events():  # type: ignore[no-untyped-def]
                    for word in text.split(" "):
                        chunk = {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
                        yield f"data: {json.dumps(chunk)}\n\n"
                    yield "data: [DONE]\n\n"

                return StreamingResponse(events(), media_type="text/event-stream")
            return JSONResponse(
                {
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ]
                }
            )

        super().__init__(app)
        self.url += "/v1"


def rate_limited_api(require_key: str | None = None) -> Any:
    """A stand-in for the service that answers every other request with 429."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI()
    calls = {"n": 0}
    asked = {"ask": 0, "chat": 0}  # requests answered, by route

    @app.middleware("http")
    async def limit(request: Request, call_next: Any) -> Any:
        if require_key and request.headers.get("authorization") != f"Bearer {require_key}":
            return JSONResponse({"detail": "a valid API key is required"}, status_code=401)
        calls["n"] += 1
        if calls["n"] % 2:
            return JSONResponse(
                {"detail": "rate limited"}, status_code=429, headers={"Retry-After": "0"}
            )
        return await call_next(request)

    @app.get("/v1/search")
    def search(q: str, k: int = 10) -> dict[str, Any]:
        return {"passages": []}

    @app.get("/v1/documents")
    def documents() -> dict[str, Any]:
        return {"documents": [{"id": "weitz-2025-sco", "title": "t", "author": None}]}

    @app.post("/v1/ask")
    def ask() -> dict[str, Any]:
        asked["ask"] += 1
        return {"answer": "x [1]", "answered": True, "timings_ms": {"total": 1.0}}

    @app.post("/v1/chat")
    def chat() -> dict[str, Any]:
        asked["chat"] += 1
        return {"answer": "y [1]", "answered": True, "timings_ms": {"total": 1.0}}

    app.state.asked = asked
    return app


def truth() -> list[dict[str, Any]]:
    """What was counted by hand in each paper of the library (tests/papers/truth.json)."""
    return json.loads((PAPERS / "truth.json").read_text())


def expected_markers(want: dict[str, Any]) -> list[int]:
    """The note each marker of a library paper cites, numbered as the reader
    numbers notes: one sequence keeps its printed numbers; where numbering
    restarts, later sequences are numbered on from the last note before them."""
    if not want["numbering_restarts"]:
        return list(want["marker_numbers"])
    keys: dict[tuple[int, int], int] = {}
    sequence = 0
    for number in want["note_numbers"]:
        sequence += number == 1
        keys[(sequence, number)] = len(keys) + 1
    cited, sequence = [], 0
    for number in want["marker_numbers"]:
        sequence += number == 1
        cited.append(keys[(sequence, number)])
    return cited


def in_order(found: list[Any], expected: list[Any]) -> int:
    """How many of `expected` are in `found` in the same order."""
    matcher = difflib.SequenceMatcher(None, found, expected, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks())


def memo_questions(folder: Path) -> Path:
    """The evaluation's questions about the memo alone, written to `folder`: what
    an index of the memo alone (MANIFEST) can be asked."""
    from eval.dataset import QUESTIONS
    from eval.runner import paper_of

    path = folder / "memo-questions.jsonl"
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and _about_memo(line, paper_of)]
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return path


def _about_memo(line: str, paper_of: Callable[[Any], str]) -> bool:
    from eval.dataset import EvalItem

    return paper_of(EvalItem.model_validate_json(line)) == "weitz-2025-sco"
