"""Retrieval in stages, each of which can be switched off:

1. candidates: dense (the packaged embedder; Chroma's nearest neighbours, ids and distances) and
   lexical (BM25 over the same passages' search text), fused by reciprocal rank;
2. rerank: each candidate scored by its best-matching sentence (sentence
   embeddings stored at ingest), its own similarity, the rarity-weighted share
   of the question's concepts it names (acronyms count in either spelling),
   and quoted phrases it contains; the score is a relevance in [0, 1];
3. diversity: a passage nearly identical to a better one is dropped;
4. companions: for a source question, an endnote and the passage that cites it
   come back together.
"""

from __future__ import annotations

import copy
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from ingest.embed import Embedder
from ingest.index.lexical import LexicalIndex, open_generation
from ingest.index.reader import IndexReader, Snapshot
from ingest.index.records import StoredPassage
from service.query import Concept, Query, analyse
from service.text import Tokenizer

RRF_K = 60
# The passages whose terms a lexicon keeps at most.
TERMS_CACHE = 4096
# The terms whose rarity a lexicon keeps at most.
IDF_CACHE = 200_000
# A paper the lexical ranking puts first, holding fewer dense candidates than
# this, has this many of its lexically best passages reranked too.
PAPER_FLOOR = 3
PAPER_NEAREST = 10


@dataclass(frozen=True)
class RetrievalOptions:
    dense: bool = True
    lexical: bool = True
    rerank: bool = True
    diversity: float = 0.8  # token Jaccard at or above which a passage is a near-duplicate
    companions: bool = True
    # The paper a question's names point to has its lexically best passages reranked.
    paper_scope: bool = True
    # An endnote matched by the claim it supports lends its score to the passage
    # that makes the claim, and ranks a little below it unless a source is asked for.
    endnote_discount: float = 0.9
    candidates: int = 30
    # Rerank weights: best sentence, whole passage, concept coverage; phrase bonus.
    w_sentence: float = 0.45
    w_passage: float = 0.15
    w_coverage: float = 0.40
    w_phrase: float = 0.10
    w_list: float = 0.05  # a bullet list, when the question asks for several items


@dataclass
class _Pool:
    """The candidates of one search, with the signals they were found by."""

    ids: list[str]
    passages: dict[str, StoredPassage]
    dense: dict[str, float]  # passage id -> cosine similarity to the query
    bm25: np.ndarray  # BM25 score of every passage, in the lexical index's order
    fused: dict[str, float]  # passage id -> reciprocal-rank fusion score


def _rerank_score(
    opt: RetrievalOptions,
    query: Query,
    passage: StoredPassage,
    cosine: float,
    best_sentence: float,
    cover: float,
) -> float:
    """A passage's relevance in [0, 1]: its best sentence, itself, the concepts it
    names and the quoted phrases it holds, weighted."""
    phrase = 0.0
    if query.phrases:
        text = re.sub(r"\s+", " ", passage.text.lower())
        phrase = sum(p.lower() in text for p in query.phrases) / len(query.phrases)
    score = (
        opt.w_sentence * max(best_sentence, cosine, 0.0)
        + opt.w_passage * max(cosine, 0.0)
        + opt.w_coverage * cover
        + opt.w_phrase * phrase
        + (opt.w_list if query.wants_list and passage.kind == "list" else 0.0)
    )
    return min(score, 1.0)


def _diverse(hits: list[Hit], lexical: Lexicon, threshold: float, k: int) -> list[Hit]:
    """The first `k` hits in order, without those nearly identical to a better one."""
    kept: list[Hit] = []
    for hit in hits:
        if len(kept) >= k:
            break
        terms = lexical.shown(hit.passage)
        if any(_jaccard(terms, lexical.shown(h.passage)) >= threshold for h in kept):
            continue
        kept.append(hit)
    return kept


@dataclass(frozen=True)
class Hit:
    passage: StoredPassage
    score: float  # relevance in [0, 1]; results are ordered by it
    dense: float  # cosine similarity of the passage
    coverage: float  # weighted share of the question's concepts the passage names
    sentence: float = 0.0  # cosine similarity of its best sentence


@dataclass
class SearchResult:
    hits: list[Hit]
    query_vector: np.ndarray
    query: Query

    @property
    def query_terms(self) -> list[str]:
        return self.query.terms


class Lexicon:
    """A generation's lexical index (BM25, saved at ingest and read memory-mapped)
    with what a query weighs besides: the rarity of terms and the terms of the
    passages it ranks, tokenized when first needed (the latest kept)."""

    def __init__(self, index: LexicalIndex, tokenizer: Tokenizer) -> None:
        self.index = index
        self.tokenizer = tokenizer
        self._terms: OrderedDict[str, tuple[set[str], set[str]]] = OrderedDict()
        self._idf: dict[str, float] = {}  # fixed for the generation
        self._weights: dict[Concept, float] = {}  # likewise
        self._lock = threading.Lock()

    @property
    def ids(self) -> list[str]:
        return self.index.ids

    @property
    def position(self) -> dict[str, int]:
        return self.index.position

    def idf(self, term: str) -> float:
        found = self._idf.get(term)
        if found is None:
            found = self.index.idf(term)
            if len(self._idf) < IDF_CACHE:
                self._idf[term] = found
        return found

    def terms(self, passage: StoredPassage) -> set[str]:
        """The terms a passage is found by (its search text)."""
        return self._tokens(passage)[0]

    def shown(self, passage: StoredPassage) -> set[str]:
        """The terms of what a passage shows (an endnote's search text also holds
        the claim it supports, which would make it look like a copy of the citing
        passage)."""
        return self._tokens(passage)[1]

    def _tokens(self, passage: StoredPassage) -> tuple[set[str], set[str]]:
        # A hit takes no lock: every search reads dozens of passages, and a lock
        # taken for each of them is where concurrent searches queued. The oldest
        # entries go first when the cache is full.
        found = self._terms.get(passage.id)
        if found is not None:
            return found
        found = (set(self.tokenizer(passage.search_text())), set(self.tokenizer(passage.text)))
        with self._lock:
            self._terms[passage.id] = found
            while len(self._terms) > TERMS_CACHE:
                self._terms.popitem(last=False)
        return found

    def coverage(self, query: Query | list[str], terms: set[str]) -> float:
        """Share of the question's concepts (weighted by rarity) that `terms` names."""
        if isinstance(query, list):
            concepts = [Concept((frozenset([t]),)) for t in dict.fromkeys(query)]
        else:
            concepts = query.concepts
        total = covered = 0.0
        for concept in concepts:
            weight = self._weight(concept)
            total += weight
            if concept.covered_by(terms):
                covered += weight
        return covered / total if total > 0 else 0.0

    def _weight(self, concept: Concept) -> float:
        """A concept's rarity: that of its rarest spelling (fixed for the generation,
        and asked for every passage a search ranks)."""
        found = self._weights.get(concept)
        if found is None:
            found = max(
                sum(self.idf(t) for t in alt) / max(len(alt), 1) for alt in concept.alternatives
            )
            if len(self._weights) < IDF_CACHE:
                self._weights[concept] = found
        return found

    def in_documents(self, documents: frozenset[str]) -> np.ndarray:
        return self.index.in_documents(documents)

    @property
    def papers(self) -> int:
        return len(self.index.documents)

    def paper_of(self, passage_id: str) -> str | None:
        i = self.index.position.get(passage_id)
        return None if i is None else self.index.documents[int(self.index.document_of[i])]

    def scores(self, terms: list[str]) -> np.ndarray:
        return self.index.scores(terms)


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class Retriever:
    """Retrieval over the active index generation."""

    def __init__(
        self,
        index: IndexReader,
        embedder: Embedder,
        tokenizer: Tokenizer,
        *,
        options: RetrievalOptions | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.options = options or RetrievalOptions()
        self.documents: frozenset[str] | None = None  # the papers searched; None: all
        self._state_cache: tuple[str, Lexicon, dict[str, str]] | None = None
        self._lock = threading.Lock()

    def within(self, documents: Iterable[str] | None) -> Retriever:
        """This retriever restricted to some papers (all, when none are named)."""
        if not documents:
            return self
        scoped = copy.copy(self)
        scoped.documents = frozenset(documents)
        return scoped

    def _state(self) -> tuple[Snapshot, Lexicon, dict[str, str]]:
        snapshot = self.index.snapshot()
        with self._lock:
            if self._state_cache is None or self._state_cache[0] != snapshot.info.collection:
                index = open_generation(
                    self.index.settings.lexical_folder,
                    snapshot.info.collection,
                    snapshot.passages,
                    self.tokenizer,
                )
                lexical = Lexicon(index, self.tokenizer)
                acronyms = {
                    a: x for d in snapshot.documents.values() for a, x in d.abbreviations.items()
                }
                self._state_cache = (snapshot.info.collection, lexical, acronyms)
            return snapshot, self._state_cache[1], self._state_cache[2]

    def snapshot(self) -> Snapshot:
        return self._state()[0]

    def lexical(self) -> Lexicon:
        return self._state()[1]

    def acronyms(self) -> dict[str, str]:
        return self._state()[2]

    def analyse(self, question: str) -> Query:
        return analyse(question, self.tokenizer, self.acronyms())

    def search(
        self, question: str, k: int, options: RetrievalOptions | None = None
    ) -> SearchResult:
        try:
            return self._search(question, k, options or self.options)
        except Exception as exc:
            # The generation may have been pruned between the registry read and the
            # query; reopen once before giving up.
            if "does not exist" not in str(exc) and "NotFound" not in type(exc).__name__:
                raise
            self.index.invalidate()
            return self._search(question, k, options or self.options)

    def _dense(self, snapshot: Snapshot, vector: np.ndarray, n: int) -> dict[str, float]:
        return snapshot.query(vector.tolist(), n, self.documents)

    def _search(self, question: str, k: int, opt: RetrievalOptions) -> SearchResult:
        snapshot, lexical, _ = self._state()
        query = self.analyse(question)
        vector = np.asarray(self.embedder.embed_query(query.dense_text), dtype=np.float32)
        pool = self._candidates(snapshot, lexical, query, vector, max(opt.candidates, k), opt)
        sentences = snapshot.sentence_vectors(pool.ids) if opt.rerank else None
        hits = []
        for pid in pool.ids:
            i = lexical.position.get(pid)
            passage = pool.passages.get(pid)
            if i is None or passage is None:
                continue
            if self.documents is not None and passage.document_id not in self.documents:
                continue
            cover = lexical.coverage(query, lexical.terms(passage))
            cosine = pool.dense.get(pid, 0.0)
            best_sentence = 0.0
            if sentences is not None and pid in sentences:
                best_sentence = float(np.max(sentences[pid] @ vector))
            if opt.rerank:
                score = _rerank_score(opt, query, passage, cosine, best_sentence, cover)
            elif opt.dense and opt.lexical:
                score = pool.fused[pid] / max(pool.fused.values(), default=1.0)
            elif opt.dense:
                score = max(cosine, 0.0)
            else:
                score = float(pool.bm25[i] / (pool.bm25.max() or 1.0))
            hits.append(
                Hit(passage, score, round(cosine, 4), round(cover, 4), round(best_sentence, 4))
            )
        if opt.rerank:
            hits = self._fold_endnotes(hits, query)
        hits.sort(key=lambda h: h.score, reverse=True)
        if opt.diversity < 1.0:
            hits = _diverse(hits, lexical, opt.diversity, k)
        if opt.companions and query.source:
            hits = self._with_companions(hits, k, snapshot)
        return SearchResult(hits[:k], vector, query)

    def _candidates(
        self,
        snapshot: Snapshot,
        lexical: Lexicon,
        query: Query,
        vector: np.ndarray,
        n: int,
        opt: RetrievalOptions,
    ) -> _Pool:
        """Dense and lexical candidates fused by reciprocal rank; when reranking,
        an endnote brings the passages that cite it; every candidate gets its
        dense similarity."""
        dense = self._dense(snapshot, vector, n) if opt.dense else {}
        bm25 = lexical.scores(query.terms) if opt.lexical else np.zeros(len(lexical.ids))
        if self.documents is not None:
            bm25 = bm25 * lexical.in_documents(self.documents)
        lexical_top = [lexical.ids[i] for i in np.argsort(-bm25)[:n] if bm25[i] > 0]
        fused: dict[str, float] = {}
        for ranking in (list(dense), lexical_top):
            for rank, pid in enumerate(ranking):
                fused[pid] = fused.get(pid, 0.0) + 1.0 / (RRF_K + rank + 1)
        candidates = sorted(fused, key=fused.__getitem__, reverse=True)[:n]
        if opt.paper_scope and opt.rerank and opt.dense and lexical_top:
            own = self._lexical_papers_own(lexical, bm25, dense, lexical_top[0])
            candidates += [pid for pid in own if pid not in candidates]
        passages = {p.id: p for p in snapshot.get(candidates)}
        if opt.rerank:
            citing = [
                c
                for pid in candidates
                if pid in passages and passages[pid].kind == "endnote"
                for c in passages[pid].cited_by
            ]
            extra = [c for c in dict.fromkeys(citing) if c not in candidates]
            candidates += extra
            passages.update({p.id: p for p in snapshot.get(extra)})
        missing = [pid for pid in candidates if pid not in dense]
        if missing:
            for pid, emb in snapshot.embeddings(missing).items():
                dense[pid] = float(np.dot(np.asarray(emb, dtype=np.float32), vector))
        return _Pool(candidates, passages, dense, bm25, fused)

    def _lexical_papers_own(
        self, lexical: Lexicon, bm25: np.ndarray, dense: dict[str, float], lexical_first: str
    ) -> list[str]:
        """The lexically best passages of the paper the lexical ranking puts first,
        when the dense candidates hold few of its passages: in a library of papers
        alike (editions, translations, a series on one subject), other papers'
        copies of the same passages can fill the dense candidates, while the
        question's names say which paper it asks about."""
        paper = lexical.paper_of(lexical_first)
        if paper is None or lexical.papers < 2:
            return []
        if self.documents is not None and paper not in self.documents:
            return []
        held = sum(1 for pid in dense if lexical.paper_of(pid) == paper)
        if held >= PAPER_FLOOR:
            return []
        mine = bm25 * lexical.in_documents(frozenset({paper}))
        return [lexical.ids[i] for i in np.argsort(-mine)[:PAPER_NEAREST] if mine[i] > 0]

    def _fold_endnotes(self, hits: list[Hit], query: Query) -> list[Hit]:
        by_id = {h.passage.id: h for h in hits}
        lifted: dict[str, float] = {}
        for hit in hits:
            if hit.passage.kind != "endnote":
                continue
            for pid in hit.passage.cited_by:
                if pid in by_id:
                    lifted[pid] = max(lifted.get(pid, 0.0), hit.score)
        discount = 1.0 if query.source else self.options.endnote_discount
        out = []
        for hit in hits:
            score = hit.score * discount if hit.passage.kind == "endnote" else hit.score
            score = max(score, lifted.get(hit.passage.id, 0.0))
            out.append(replace(hit, score=round(min(score, 1.0), 4)))
        return out

    def _with_companions(self, hits: list[Hit], k: int, snapshot: Snapshot) -> list[Hit]:
        """For a source question: the best endnote brings its citing passage, the
        best passage brings the endnotes it cites, right after it."""
        top = hits[: max(k, 1)]
        present = {h.passage.id for h in top}
        out: list[Hit] = []
        for hit in top[:2]:
            out.append(hit)
            p = hit.passage
            partners = (
                snapshot.get(list(p.cited_by)[:1])
                if p.kind == "endnote"
                else snapshot.endnotes(p.document_id, p.endnotes)[:2]
            )
            for partner in partners:
                if partner.id not in present:
                    out.append(replace(hit, passage=partner))
                    present.add(partner.id)
        out += [h for h in top[2:] if h not in out]
        return out
