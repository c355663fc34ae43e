"""Retrieval: dense (Chroma through llama-index) and lexical (BM25) candidates,
fused by reciprocal rank, each scored with a relevance in [0, 1].

Relevance = mean of the passage's cosine similarity to the question and the
share of the question's content terms (weighted by rarity) that the passage
contains. It orders the results and tells the answerer whether the corpus
speaks to the question at all.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass
import numpy as np

from ingest.embed import Embedder
from ingest.index import IndexReader, Snapshot, StoredPassage
from ingest.text import Tokenizer

RRF_K = 60


@dataclass(frozen=True)
class Hit:
    passage: StoredPassage
    score: float  # relevance in [0, 1]
    dense: float  # cosine similarity
    coverage: float  # weighted share of question terms present


@dataclass
class SearchResult:
    hits: list[Hit]
    query_vector: np.ndarray
    query_terms: list[str]


class LexicalIndex:
    """BM25 and term statistics over one snapshot's passages."""

    def __init__(self, passages: list[StoredPassage], tokenizer: Tokenizer) -> None:
        import bm25s

        self.passages = passages
        self.ids = [p.id for p in passages]
        self.position = {pid: i for i, pid in enumerate(self.ids)}
        tokens = [tokenizer(p.search_text()) for p in passages]
        self.terms = [set(t) for t in tokens]
        self.df = Counter(t for terms in self.terms for t in terms)
        self.bm25 = bm25s.BM25()
        self.bm25.index(tokens, show_progress=False)

    def idf(self, term: str) -> float:
        n, df = len(self.ids), self.df.get(term, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def coverage(self, query_terms: list[str], terms: set[str]) -> float:
        unique = set(query_terms)
        total = sum(self.idf(t) for t in unique)
        if total <= 0:
            return 0.0
        return sum(self.idf(t) for t in unique if t in terms) / total

    def top(self, query_terms: list[str], n: int) -> list[tuple[str, float]]:
        if not query_terms:
            return []
        scores = self.bm25.get_scores(query_terms)
        order = np.argsort(-scores)[:n]
        return [(self.ids[i], float(scores[i])) for i in order if scores[i] > 0]


class Retriever:
    """Hybrid retrieval over the active index generation."""

    def __init__(
        self, index: IndexReader, embedder: Embedder, tokenizer: Tokenizer, *, candidates: int = 30
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.candidates = candidates
        self._lexical: tuple[str, LexicalIndex] | None = None
        self._lock = threading.Lock()

    def _state(self) -> tuple[Snapshot, LexicalIndex]:
        snapshot = self.index.snapshot()
        with self._lock:
            if self._lexical is None or self._lexical[0] != snapshot.info.collection:
                lexical = LexicalIndex(snapshot.passages(), self.tokenizer)
                self._lexical = (snapshot.info.collection, lexical)
            return snapshot, self._lexical[1]

    def snapshot(self) -> Snapshot:
        return self._state()[0]

    def lexical(self) -> LexicalIndex:
        return self._state()[1]

    def search(self, query: str, k: int) -> SearchResult:
        try:
            return self._search(query, k)
        except Exception as exc:
            # The generation may have been pruned between the registry read and the
            # query; reopen once before giving up.
            if "does not exist" not in str(exc) and "NotFound" not in type(exc).__name__:
                raise
            self.index.invalidate()
            return self._search(query, k)

    def _search(self, query: str, k: int) -> SearchResult:
        from llama_index.core.vector_stores.types import VectorStoreQuery
        from llama_index.vector_stores.chroma import ChromaVectorStore

        snapshot, lexical = self._state()
        vector = np.asarray(self.embedder.embed_query(query), dtype=np.float32)
        terms = self.tokenizer(query)
        n = max(self.candidates, k)

        store = ChromaVectorStore(chroma_collection=snapshot.collection)
        result = store.query(VectorStoreQuery(query_embedding=vector.tolist(), similarity_top_k=n))
        # ChromaVectorStore reports exp(-distance); with cosine distance that is exp(cos - 1).
        dense = {
            node.node_id: 1.0 + math.log(max(sim, 1e-12))
            for node, sim in zip(result.nodes or [], result.similarities or [], strict=True)
        }
        lexical_top = lexical.top(terms, n)

        fused: dict[str, float] = {}
        for ranking in (list(dense), [pid for pid, _ in lexical_top]):
            for rank, pid in enumerate(ranking):
                fused[pid] = fused.get(pid, 0.0) + 1.0 / (RRF_K + rank + 1)
        candidates = sorted(fused, key=fused.__getitem__, reverse=True)[:n]

        missing = [pid for pid in candidates if pid not in dense]
        if missing:
            got = snapshot.collection.get(ids=missing, include=["embeddings"])
            for pid, emb in zip(got["ids"], got["embeddings"], strict=True):
                dense[pid] = float(np.dot(np.asarray(emb, dtype=np.float32), vector))

        hits = []
        for pid in candidates:
            i = lexical.position.get(pid)
            if i is None:
                continue
            cover = lexical.coverage(terms, lexical.terms[i])
            cosine = dense.get(pid, 0.0)
            score = 0.5 * max(cosine, 0.0) + 0.5 * cover
            hits.append(Hit(lexical.passages[i], round(score, 4), round(cosine, 4), round(cover, 4)))
        hits.sort(key=lambda h: h.score, reverse=True)
        return SearchResult(hits[:k], vector, terms)
