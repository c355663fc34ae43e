"""Chat backends a generator writes through: the packaged model in-process, or any
OpenAI-compatible endpoint."""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass
from typing import Any

from service.errors import GenerationError


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: float = 0.0
    total_ms: float = 0.0
    waited_ms: float = 0.0


class ChatBackend(t.Protocol):
    name: str

    def count_tokens(self, messages: list[dict[str, str]]) -> int: ...

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, deadline: float
    ) -> t.Iterator[str]: ...


class LocalChat:
    """The packaged model in this process; one request at a time."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.name = f"local:{llm.name}"

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        text = "".join(m["content"] for m in messages)
        return len(self.llm.llama.tokenize(text.encode(), add_bos=False)) + 8 * len(messages)

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, deadline: float
    ) -> t.Iterator[str]:
        for chunk in self.llm.chat(messages, max_tokens=max_tokens, stream=True):
            delta = chunk["choices"][0].get("delta", {}).get("content")
            if delta:
                yield delta
            if time.monotonic() > deadline:
                raise GenerationError("the answer took longer than its time budget")


class OpenAIChat:
    """Any OpenAI-compatible chat completions endpoint, streamed."""

    def __init__(self, base_url: str, model: str, api_key: str | None, timeout_s: float) -> None:
        import httpx

        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout_s, headers=headers)
        self.name = f"openai:{model}"

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        return sum(len(m["content"]) for m in messages) // 4  # the endpoint's tokenizer is unknown

    def stream(
        self, messages: list[dict[str, str]], *, max_tokens: int, deadline: float
    ) -> t.Iterator[str]:
        import json

        import httpx

        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
        }
        try:
            with self.client.stream("POST", self.url, json=body) as response:
                if response.status_code >= 400:
                    raise GenerationError(f"model endpoint answered {response.status_code}")
                for line in response.iter_lines():
                    if time.monotonic() > deadline:
                        raise GenerationError("the answer took longer than its time budget")
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    delta = json.loads(data)["choices"][0].get("delta", {}).get("content")
                    if delta:
                        yield delta
        except httpx.HTTPError as exc:
            raise GenerationError(f"model endpoint unreachable: {exc}") from exc
