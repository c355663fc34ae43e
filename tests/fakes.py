"""Deterministic fakes for unit tests (no model weights, no randomness)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding

from ingest.embed import Embedder, ModelRef
from service.text import Tokenizer

DIM = 256


class HashEmbedding(BaseEmbedding):
    """Bag of stemmed words hashed into a fixed-size unit vector: texts that share
    words are similar, and the same text always gets the same vector."""

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * DIM
        for word in Tokenizer()(text):
            digest = hashlib.sha256(word.encode()).digest()
            vector[int.from_bytes(digest[:4], "big") % DIM] += 1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]


def fake_embedder(name: str = "fake-hash", fingerprint: str = "fake0001") -> Embedder:
    return Embedder(ModelRef(name, Path("."), fingerprint), HashEmbedding(), DIM)


class FailingEmbedder(Embedder):
    """Embeds `fail_after` batches, then raises (a crash in the middle of ingest)."""

    def __init__(self, fail_after: int = 1) -> None:
        base = fake_embedder()
        super().__init__(base.ref, base.model, base.dim)
        self.calls = 0
        self.fail_after = fail_after

    def embed_texts(self, texts: list[str]) -> Any:
        self.calls += 1
        if self.calls > self.fail_after:
            raise RuntimeError("embedding failed")
        return super().embed_texts(texts)


def value_from_schema(schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """The simplest JSON value that satisfies a JSON schema (for a fake judge)."""
    root = root or schema
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        return value_from_schema(root["$defs"][name], root)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: value_from_schema(props[k], root) for k in schema.get("required", props)}
    if kind == "array":
        return [value_from_schema(schema.get("items", {"type": "string"}), root)]
    if kind == "integer":
        return (
            max(1, schema.get("minimum", 1))
            if schema.get("maximum", 1) >= 1
            else schema.get("minimum", 0)
        )
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    return "A statement."


class SchemaJudge:
    """A deterministic judge: answers every prompt with the simplest reply its
    schema allows; fails on prompts containing `fail_on`."""

    identity = "fake:schema"

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on
        self.calls = 0
        self.cached = 0

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None = None) -> str:
        import json

        from eval.judge import JudgeError

        self.calls += 1
        if self.fail_on and self.fail_on in messages[0]["content"]:
            raise JudgeError("judge timed out")
        return json.dumps(value_from_schema(schema or {"type": "string"}))


class FakeClient:
    """Answers like the API would, from a fixed table; counts calls."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.asked = 0

    def search(self, q: str, k: int) -> dict[str, Any]:
        text = self.answers.get(q, "nothing relevant")
        return {
            "passages": [
                {
                    "passage_id": "d-1",
                    "kind": "paragraph",
                    "section": "S",
                    "score": 0.9,
                    "text": text,
                }
            ]
        }

    def ask(self, question: str, top_k: int | None = None, history: Any = None) -> dict[str, Any]:
        self.asked += 1
        text = self.answers.get(question)
        if text is None:
            return {
                "answer": "No.",
                "answered": False,
                "citations": [],
                "reason": "not relevant",
                "generator": "fake",
                "timings_ms": {"retrieve": 1.0, "answer": 1.0, "total": 2.0},
            }
        citation = {
            "ref": 1,
            "passage_id": "d-1",
            "section": "S",
            "text": text,
            "quote": text,
            "endnotes": [],
            "score": 0.9,
        }
        return {
            "answer": f"{text} [1]",
            "answered": True,
            "citations": [citation],
            "reason": None,
            "generator": "fake",
            "timings_ms": {"retrieve": 1.0, "answer": 1.0, "total": 2.0},
        }

    def describe(self) -> dict[str, Any]:
        return {"mode": "fake", "index": "fake-index"}


class ScriptedChat:
    """A chat backend that streams queued replies word by word (or raises a
    queued exception), records its prompts and how many ran at once."""

    name = "fake:scripted"

    def __init__(self, replies: list[Any], delay: float = 0.0, token_delay: float = 0.0) -> None:
        self.replies = list(replies)
        self.prompts: list[list[dict[str, str]]] = []
        self.delay = delay
        self.token_delay = token_delay
        self.tokens_sent = 0
        self.running = 0
        self.max_concurrent = 0

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        return sum(len(m["content"].split()) for m in messages)

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, deadline: float) -> Any:
        import time

        self.prompts.append(messages)
        reply = self.replies.pop(0)
        self.running += 1
        self.max_concurrent = max(self.max_concurrent, self.running)
        try:
            time.sleep(self.delay)
            if isinstance(reply, Exception):
                raise reply
            for word in reply.split(" "):
                time.sleep(self.token_delay)
                self.tokens_sent += 1
                yield word + " "
        finally:
            self.running -= 1


class KeywordVerdicts:
    """A yes/no model for answer checks: "yes" (0.9) when the sentences hold one
    of the question's keywords from a fixed table, "no" (0.1) otherwise."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table  # question substring -> word the sentence must hold
        self.asked: list[str] = []
        self.last_prompt_tokens = 0

    def yes_probability(self, system: str, user: str, lead: str = "") -> float:
        user = lead + user
        self.asked.append(user)
        self.last_prompt_tokens = len(user.split())
        question, _, rest = user.partition("\n")
        for key, word in self.table.items():
            if key in question:
                return 0.9 if word.lower() in rest.lower() else 0.1
        return 0.1
