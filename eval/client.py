"""How eval reaches the system under test: in-process through the functions the
API calls, or a running deployment over HTTP. Both return the API's JSON."""

from __future__ import annotations

import typing as t
from typing import Any

from service.settings import Settings


class Client(t.Protocol):
    def search(self, q: str, k: int) -> dict[str, Any]: ...

    def ask(
        self, question: str, top_k: int | None = None, history: list[dict[str, str]] | None = None
    ) -> dict[str, Any]: ...

    def describe(self) -> dict[str, Any]: ...


class InProcessClient:
    def __init__(self, settings: Settings) -> None:
        from service.engine import build_engine

        self.engine = build_engine(settings)

    def search(self, q: str, k: int) -> dict[str, Any]:
        from service.api.mapping import search_response

        return search_response(self.engine, q, k).model_dump()

    def ask(
        self, question: str, top_k: int | None = None, history: list[dict[str, str]] | None = None
    ) -> dict[str, Any]:
        from service.api.mapping import to_response
        from service.followup import Turn

        turns = [Turn(t["role"], t["content"]) for t in history or []]
        return to_response(self.engine.ask(question, top_k, turns)).model_dump()

    def describe(self) -> dict[str, Any]:
        snapshot = self.engine.retriever.snapshot()
        info = snapshot.info
        return {
            "mode": "in-process",
            "index": info.collection,
            "embed_model": info.embed_model,
            "embed_fingerprint": info.embed_fingerprint,
            "chunker": info.chunker,
            "corpus_fingerprint": info.corpus_fingerprint,
            "config_fingerprint": info.config_fingerprint,
            "passages": info.passage_count,
            "generator": self.engine.generator.name,
            "min_relevance": self.engine.settings.answer.min_relevance,
        }


class HttpClient:
    def __init__(self, url: str, timeout: float = 300) -> None:
        import httpx

        self.base = url.rstrip("/")
        self.http = httpx.Client(timeout=timeout)

    def _json(self, response: Any) -> dict[str, Any]:
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def search(self, q: str, k: int) -> dict[str, Any]:
        return self._json(self.http.get(self.base + "/v1/search", params={"q": q, "k": k}))

    def ask(
        self, question: str, top_k: int | None = None, history: list[dict[str, str]] | None = None
    ) -> dict[str, Any]:
        extra: dict[str, Any] = {} if top_k is None else {"top_k": top_k}
        if history:
            messages = [*history, {"role": "user", "content": question}]
            return self._json(
                self.http.post(self.base + "/v1/chat", json={"messages": messages, **extra})
            )
        return self._json(
            self.http.post(self.base + "/v1/ask", json={"question": question, **extra})
        )

    def describe(self) -> dict[str, Any]:
        ready = self.http.get(self.base + "/readyz").json()
        return {
            "mode": "http",
            "url": self.base,
            "index": ready.get("index"),
            "passages": ready.get("passages"),
        }
