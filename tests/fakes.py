"""Deterministic fakes for unit tests (no model weights, no randomness)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding

from ingest.embed import Embedder, ModelRef
from ingest.text import Tokenizer

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
