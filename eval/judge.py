"""The evaluation judge: any OpenAI-compatible endpoint, or the packaged local
model by default, its replies constrained to the JSON schema the caller expects.

Every judgement is cached by its inputs (judge identity, messages, schema) in
SQLite, so a re-run only judges what changed. A judge that fails raises
JudgeError with the reason; callers record it per item.
"""

from __future__ import annotations

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
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS judgements (key TEXT PRIMARY KEY, reply TEXT)")
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT reply FROM judgements WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, reply: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO judgements VALUES (?, ?)", (key, reply))
            self._db.commit()


class Judge:
    """Chat completions with an optional JSON schema, cached."""

    def __init__(self, backend: _Backend, cache: JudgeCache | None, max_tokens: int) -> None:
        self.backend = backend
        self.cache = cache
        self.max_tokens = max_tokens
        self.calls = 0
        self.cached = 0
        self.seconds = 0.0

    @property
    def identity(self) -> str:
        return self.backend.identity

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None = None) -> str:
        key = hashlib.sha256(
            json.dumps([self.identity, messages, schema], sort_keys=True).encode()
        ).hexdigest()
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            self.cached += 1
            return hit
        started = time.perf_counter()
        reply = self.backend.complete(messages, schema, self.max_tokens)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        if schema is not None:
            try:
                json.loads(reply)
            except json.JSONDecodeError as exc:
                raise JudgeError(f"judge reply is not valid JSON: {reply[:200]!r}") from exc
        if self.cache is not None:
            self.cache.put(key, reply)
        return reply


class _Backend(t.Protocol):
    identity: str

    def complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int
    ) -> str: ...


class LocalBackend:
    """The packaged model in this process (llama.cpp, schema-constrained)."""

    def __init__(self, settings: LLMSettings) -> None:
        from service.llm.local import LocalLLM

        self.llm = LocalLLM(settings.model_path, n_ctx=settings.n_ctx, threads=settings.threads)
        size = settings.model_path.stat().st_size
        self.identity = f"local:{self.llm.name}:{size}"

    def complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any] | None, max_tokens: int
    ) -> str:
        try:
            # A mild repeat penalty stops the small model re-listing the same items.
            reply = self.llm.chat(
                messages, schema=schema, max_tokens=max_tokens, repeat_penalty=1.1
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


def build_judge(judge: JudgeSettings, llm: LLMSettings, *, cache: bool = True) -> Judge:
    backend: _Backend = OpenAIBackend(judge) if judge.base_url else LocalBackend(llm)
    return Judge(backend, JudgeCache(judge.cache_path) if cache else None, judge.max_tokens)


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


def ragas_llm(judge: Judge) -> Any:
    """The judge as a ragas LLM: every ragas prompt's reply is constrained to the
    schema ragas will parse it with, so no metric turns NaN on bad JSON."""
    from langchain_core.outputs import Generation, LLMResult
    from ragas.llms.base import BaseRagasLLM

    class JudgeRagasLLM(BaseRagasLLM):  # type: ignore[misc]
        def _reply(self, prompt: Any, n: int) -> LLMResult:
            text = prompt.to_string()
            schema = schema_of(text)
            reply = judge.complete(
                [{"role": "user", "content": text}], bounded(schema) if schema else None
            )
            return LLMResult(generations=[[Generation(text=reply) for _ in range(max(n, 1))]])

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
            return self._reply(prompt, n)

        def is_finished(self, response: LLMResult) -> bool:
            return True

    return JudgeRagasLLM()
