"""The evaluation judge: any OpenAI-compatible endpoint, or the packaged local
model by default, its replies constrained to the JSON schema the caller expects.

Every judgement is cached by its inputs (judge identity, messages, schema) in
SQLite, so a re-run only judges what changed. The judgements the baseline's run
used are also kept in the repository (`eval/judgements.jsonl`), so a fresh
clone's gate judges only the answers that changed since. A judge that fails raises
JudgeError with the reason; callers record it per item.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
import threading
import time
import typing as t
from pathlib import Path
from typing import Any

from eval.settings import JudgeSettings
from ingest.errors import MemoqaError
from service.settings import LLMSettings


class JudgeError(MemoqaError):
    """The judge could not give a valid judgement (timeout, bad reply, unreachable)."""


class JudgeCache:
    """Judgements by key: a local SQLite cache that every judgement is written to,
    and a kept file read first (JSON Lines of key and reply), written only on
    purpose. The keys of every judgement looked up are remembered (`used`), so the
    judgements of one run can be kept."""

    def __init__(self, path: Path, kept: Path | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS judgements (key TEXT PRIMARY KEY, reply TEXT)")
        self._lock = threading.Lock()
        self.kept = read_kept(kept) if kept is not None else {}
        self.used: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        reply = self.kept.get(key)
        if reply is None:
            with self._lock:
                row = self._db.execute(
                    "SELECT reply FROM judgements WHERE key = ?", (key,)
                ).fetchone()
            reply = None if row is None else str(row[0])
        if reply is not None:
            self.used[key] = reply
        return reply

    def put(self, key: str, reply: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO judgements VALUES (?, ?)", (key, reply))
            self._db.commit()
        self.used[key] = reply


def read_kept(path: Path) -> dict[str, str]:
    """Kept judgements (`write_kept`'s file); none where the file is missing. A
    damaged file is an error, not a silently empty cache."""
    if not path.is_file():
        return {}
    kept = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            kept[str(entry["key"])] = str(entry["reply"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MemoqaError(f"{path}:{number}: not a kept judgement ({exc})") from exc
    return kept


def write_kept(path: Path, judgements: dict[str, str]) -> None:
    """Keep `judgements` (key -> reply), one per line in key order, replacing the file."""
    lines = [
        json.dumps({"key": key, "reply": judgements[key]}, ensure_ascii=False)
        for key in sorted(judgements)
    ]
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


Request = tuple[list[dict[str, str]], dict[str, Any] | None]


class Judge:
    """Chat completions with an optional JSON schema, cached; several at once
    where the backend can decode them together (`batch` at a time)."""

    def __init__(
        self, backend: _Backend, cache: JudgeCache | None, max_tokens: int, batch: int = 1
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.max_tokens = max_tokens
        self.batch = batch
        self.calls = 0
        self.cached = 0
        self.seconds = 0.0

    @property
    def identity(self) -> str:
        return self.backend.identity

    def _key(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> str:
        return hashlib.sha256(
            json.dumps([self.identity, messages, schema], sort_keys=True).encode()
        ).hexdigest()

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None = None) -> str:
        reply = self.complete_many([(messages, schema)])[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def complete_many(self, requests: list[Request]) -> list[str | JudgeError]:
        """Each request's reply, or the JudgeError that stands for it; the ones
        not cached are asked in one batch where the backend allows."""
        replies: list[str | JudgeError | None] = [None] * len(requests)
        keys = [self._key(messages, schema) for messages, schema in requests]
        missing = []
        for i, key in enumerate(keys):
            if self.cache is not None and (hit := self.cache.get(key)) is not None:
                self.cached += 1
                replies[i] = hit
            else:
                missing.append(i)
        if missing:
            started = time.perf_counter()
            asked = [requests[i] for i in missing]
            many = getattr(self.backend, "complete_many", None)
            if len(asked) > 1 and many is not None:
                answers = many(asked, self.max_tokens)
            else:
                answers = [
                    _answer_or_error(self.backend, request, self.max_tokens) for request in asked
                ]
            self.seconds += time.perf_counter() - started
            self.calls += len(asked)
            for i, answer in zip(missing, answers, strict=True):
                replies[i] = self._checked(keys[i], requests[i][1], answer)
        return [r if r is not None else JudgeError("no reply") for r in replies]

    def _checked(
        self, key: str, schema: dict[str, Any] | None, reply: str | JudgeError
    ) -> str | JudgeError:
        if isinstance(reply, JudgeError):
            return reply
        if schema is not None:
            try:
                json.loads(reply)
            except json.JSONDecodeError:
                return JudgeError(f"judge reply is not valid JSON: {reply[:200]!r}")
        if self.cache is not None:
            self.cache.put(key, reply)
        return reply


class JudgeBatcher:
    """Judge calls from concurrent ragas jobs, gathered: once every running job
    waits on the judge, they are asked together in one batch."""

    # A job may await something other than the judge (a timeout, another job):
    # calls waiting this long are asked without it.
    MAX_WAIT_S = 0.1

    def __init__(self, judge: Judge) -> None:
        self.judge = judge
        self.active = 0
        self.pending: list[tuple[Request, asyncio.Future[str]]] = []
        self._timer: asyncio.TimerHandle | None = None

    def join(self, jobs: int = 1) -> None:
        """Jobs that will ask the judge, counted before any of them starts."""
        self.active += jobs

    def leave(self) -> None:
        """A job that will ask no more."""
        self.active -= 1
        self._flush_when_all_wait()

    async def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.pending.append(((messages, schema), future))
        self._flush_when_all_wait()
        if self.pending and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.MAX_WAIT_S, self._flush)
        return await future

    def _flush_when_all_wait(self) -> None:
        if self.pending and len(self.pending) >= self.active:
            self._flush()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        waiting = [(request, future) for request, future in batch if not future.done()]
        replies = self.judge.complete_many([request for request, _ in waiting])
        for (_, future), reply in zip(waiting, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)


class _Backend(t.Protocol):
    identity: str

    def complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int
    ) -> str: ...


def _answer_or_error(backend: _Backend, request: Request, max_tokens: int) -> str | JudgeError:
    """One request's reply, or the JudgeError that stands for it."""
    try:
        return backend.complete(request[0], request[1], max_tokens)
    except JudgeError as exc:
        return exc


class LocalBackend:
    """The packaged model in this process (llama.cpp, schema-constrained);
    several constrained judgements are decoded together (`batch` sequences)."""

    # A mild repeat penalty stops the small model re-listing the same items.
    REPEAT_PENALTY = 1.1

    def __init__(self, settings: LLMSettings, batch: int = 1) -> None:
        from service.llm.local import LocalLLM

        self.llm = LocalLLM(settings.model_path, n_ctx=settings.n_ctx, threads=settings.threads)
        size = settings.model_path.stat().st_size
        # Decoding several sequences at once can tip a verdict near a tie: a batched
        # judge keeps its own identity, so its judgements are cached and compared apart.
        self.identity = f"local:{self.llm.name}:{size}" + (f":batch{batch}" if batch > 1 else "")
        self.n_ctx = settings.n_ctx
        self.batch = batch
        self._batched: Any = None

    def complete_many(self, requests: list[Request], max_tokens: int) -> list[str | JudgeError]:
        """Constrained requests decoded together; the others one at a time."""
        from service.llm.batch import BatchedChat, ChatRequest

        replies: list[str | JudgeError | None] = [None] * len(requests)
        together = [i for i, (_, schema) in enumerate(requests) if schema is not None]
        if len(together) > 1 and self.batch > 1:
            if self._batched is None:
                self._batched = BatchedChat(
                    self.llm, max_sequences=self.batch, n_ctx_per_sequence=self.n_ctx
                )
            asked = [
                ChatRequest(requests[i][0], requests[i][1] or {}, max_tokens, self.REPEAT_PENALTY)
                for i in together
            ]
            try:
                answers = self._batched.complete(asked)
            except Exception as exc:
                failure = JudgeError(f"local judge failed: {exc}")
                for i in together:
                    replies[i] = failure
            else:
                for i, answer in zip(together, answers, strict=True):
                    replies[i] = (
                        JudgeError(f"judge reply cut at {max_tokens} tokens")
                        if answer.finish_reason == "length"
                        else answer.text
                    )
        for i, request in enumerate(requests):
            if replies[i] is None:
                replies[i] = _answer_or_error(self, request, max_tokens)
        return [r if r is not None else JudgeError("no reply") for r in replies]

    def complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int
    ) -> str:
        try:
            reply = self.llm.chat(
                messages, schema=schema, max_tokens=max_tokens, repeat_penalty=self.REPEAT_PENALTY
            )
        except Exception as exc:
            raise JudgeError(f"local judge failed: {exc}") from exc
        choice = reply["choices"][0]
        if choice.get("finish_reason") == "length":
            raise JudgeError(f"judge reply cut at {max_tokens} tokens")
        return str(choice["message"]["content"] or "")


class OpenAIBackend:
    """Any OpenAI-compatible chat completions endpoint."""

    def __init__(self, settings: JudgeSettings) -> None:
        import httpx

        if not settings.model:
            raise MemoqaError("a judge endpoint needs a model: set MEMOQA_JUDGE__MODEL")
        self.url = settings.base_url.rstrip("/") + "/chat/completions"  # type: ignore[union-attr]
        self.model = settings.model
        headers = {}
        if settings.api_key is not None:
            headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        self.client = httpx.Client(timeout=settings.timeout_s, headers=headers)
        self.identity = f"openai:{settings.base_url}#{settings.model}"

    def check(self) -> None:
        """Raise MemoqaError when the endpoint cannot be reached or refuses the key."""
        import httpx

        base = self.url.removesuffix("/chat/completions")
        try:
            response = self.client.get(base + "/models", timeout=10)
        except httpx.HTTPError as exc:
            raise MemoqaError(f"the judge endpoint {base} cannot be reached: {exc}") from exc
        if response.status_code in (401, 403):
            raise MemoqaError(
                f"the judge endpoint {base} refused the key (HTTP {response.status_code}): "
                "set --judge-key or MEMOQA_JUDGE__API_KEY"
            )

    def complete_many(self, requests: list[Request], max_tokens: int) -> list[str | JudgeError]:
        """The requests sent at once: a serving endpoint batches them itself."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            return list(
                pool.map(lambda request: _answer_or_error(self, request, max_tokens), requests)
            )

    def complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int
    ) -> str:
        import httpx

        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": max_tokens,
        }
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "judgement", "schema": schema},
            }
        try:
            response = self.client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise JudgeError(f"judge endpoint unreachable: {exc}") from exc
        if response.status_code >= 400:
            raise JudgeError(
                f"judge endpoint answered {response.status_code}: {response.text[:200]}"
            )
        try:
            return str(response.json()["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError) as exc:
            raise JudgeError(f"unexpected judge reply: {response.text[:200]}") from exc


def check_endpoint(settings: JudgeSettings) -> None:
    """Fail at once, with the reason, when the judge endpoint cannot be reached
    or refuses the key, rather than on every judgement of a long run."""
    OpenAIBackend(settings).check()


def build_judge(judge: JudgeSettings, llm: LLMSettings, *, cache: bool = True) -> Judge:
    batch = judge.concurrency()
    backend: _Backend = OpenAIBackend(judge) if judge.base_url else LocalBackend(llm, batch=batch)
    store = JudgeCache(judge.cache_path, judge.kept_path) if cache else None
    return Judge(backend, store, judge.max_tokens, batch)


# --- ragas adapter -------------------------------------------------------------

_SCHEMA_RE = re.compile(r"JSON Schema:\n(\{.*?\})Do not use single quotes", re.S)


def schema_of(prompt: str) -> dict[str, Any] | None:
    """The JSON schema a ragas prompt asks for (ragas prints it in the prompt)."""
    match = _SCHEMA_RE.search(prompt)
    if match is None:
        return None
    try:
        schema: dict[str, Any] = json.loads(match.group(1))
    except json.JSONDecodeError:
        return None
    return schema


# Free-text fields a judge writes beside its verdicts: a statement it echoes
# back and its reason. Both are capped to a short phrase; the scores read only
# the verdicts, and on 2 CPU cores every generated token costs 40 to 70 ms.
TEXT_LIMITS = {"reason": 80, "statement": 60}


def bounded(schema: Any, max_items: int = 10, limits: dict[str, int] | None = None) -> Any:
    """The schema with every array holding 1 to `max_items` items (a small
    model under a grammar otherwise sometimes answers [] or repeats items until
    its token limit) and the free-text properties in `limits` capped in length."""
    limits = TEXT_LIMITS if limits is None else limits
    if isinstance(schema, dict):
        out = {k: bounded(v, max_items, limits) for k, v in schema.items()}
        if out.get("type") == "array":
            out.setdefault("minItems", 1)
            out.setdefault("maxItems", max_items)
        for name, prop in (out.get("properties") or {}).items():
            if name in limits and isinstance(prop, dict) and prop.get("type") == "string":
                prop.setdefault("maxLength", limits[name])
        return out
    if isinstance(schema, list):
        return [bounded(v, max_items, limits) for v in schema]
    return schema


def ragas_llm(judge: Judge, batcher: JudgeBatcher | None = None, timeout_s: float = 120) -> Any:
    """The judge as a ragas LLM: every ragas prompt's reply is constrained to the
    schema ragas will parse it with, so no metric turns NaN on bad JSON. With a
    batcher, calls from concurrent jobs are judged together. A judge's reply or
    its JudgeError is final (a backend keeps its own timeout), so ragas asks once."""
    from langchain_core.outputs import Generation, LLMResult
    from ragas.llms.base import BaseRagasLLM

    def request(prompt: Any) -> Request:
        text = prompt.to_string()
        schema = schema_of(text)
        return [{"role": "user", "content": text}], bounded(schema) if schema else None

    def result(reply: str, n: int) -> LLMResult:
        return LLMResult(generations=[[Generation(text=reply) for _ in range(max(n, 1))]])

    class JudgeRagasLLM(BaseRagasLLM):  # type: ignore[misc]
        def _reply(self, prompt: Any, n: int) -> LLMResult:
            return result(judge.complete(*request(prompt)), n)

        def generate_text(
            self,
            prompt: Any,
            n: int = 1,
            temperature: float = 0.01,
            stop: Any = None,
            callbacks: Any = None,
        ) -> LLMResult:
            return self._reply(prompt, n)

        async def agenerate_text(
            self,
            prompt: Any,
            n: int = 1,
            temperature: float | None = 0.01,
            stop: Any = None,
            callbacks: Any = None,
        ) -> LLMResult:
            if batcher is None:
                return self._reply(prompt, n)
            return result(await batcher.complete(*request(prompt)), n)

        def is_finished(self, response: LLMResult) -> bool:
            return True

    return JudgeRagasLLM(run_config=judge_run_config(timeout_s))


def judge_run_config(timeout_s: float) -> Any:
    """ragas's settings for judge calls: one attempt each, `timeout_s` at most."""
    from ragas.run_config import RunConfig

    return RunConfig(timeout=int(timeout_s), max_retries=1, max_wait=1)
