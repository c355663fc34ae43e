"""How eval reaches the system under test: in-process through the functions the
API calls, or a running deployment over HTTP. Both return the API's JSON."""

from __future__ import annotations

import time
import typing as t
from typing import Any

from ingest.errors import MemoqaError
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
    """A running deployment, with an API key when it needs one. A 429 is waited
    out (its `Retry-After`) and retried; any other error ends the run with the
    server's reason."""

    def __init__(self, url: str, timeout: float = 300, key: str | None = None) -> None:
        import httpx

        self.base = url.rstrip("/")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(timeout=timeout, headers=headers)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        from service.cli.http import MAX_RETRIES, error_detail, retry_wait

        url = self.base + path
        for _ in range(MAX_RETRIES):
            try:
                response = self.http.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                raise MemoqaError(f"cannot reach {url}: {exc}") from exc
            if response.status_code != 429:
                break
            time.sleep(retry_wait(response))
        else:
            raise MemoqaError(
                f"{url} kept answering 429 (rate limited); raise its limits or pass --key"
            )
        if response.status_code >= 400:
            raise MemoqaError(f"{response.status_code} from {url}: {error_detail(response)}")
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self._request(method, path, **kwargs).json()
        return body

    def search(self, q: str, k: int) -> dict[str, Any]:
        return self._json("GET", "/v1/search", params={"q": q, "k": k})

    def ask(
        self, question: str, top_k: int | None = None, history: list[dict[str, str]] | None = None
    ) -> dict[str, Any]:
        extra: dict[str, Any] = {} if top_k is None else {"top_k": top_k}
        if history:
            messages = [*history, {"role": "user", "content": question}]
            return self._json("POST", "/v1/chat", json={"messages": messages, **extra})
        return self._json("POST", "/v1/ask", json={"question": question, **extra})

    def describe(self) -> dict[str, Any]:
        ready = self._request("GET", "/readyz").json()
        return {
            "mode": "http",
            "url": self.base,
            "index": ready.get("index"),
            "passages": ready.get("passages"),
        }
