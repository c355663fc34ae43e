"""In a library of papers alike, the paper a question's names point to has its
best passages reranked, even when other papers' copies of the same passages
fill the dense candidates."""

from __future__ import annotations

import numpy as np
from fakes import fake_embedder

from ingest.index.lexical import LexicalIndex
from service.retrieve import PAPER_NEAREST, Lexicon, Retriever
from service.text import Tokenizer

QUESTION = ["harbour", "fee", "zorbanian"]


def lexicon(papers: int) -> Lexicon:
    triples = [
        (f"paper-{p}-{i}", f"paper-{p}", f"harbour fees rose in spring, part {i} of {p}")
        for p in range(papers)
        for i in range(12)
    ]
    triples.append(("paper-7-names", "paper-7", "the author Zorbanian studies harbour fees"))
    return Lexicon(LexicalIndex.build(triples, Tokenizer()), Tokenizer())


def retriever() -> Retriever:
    return Retriever(None, fake_embedder(), Tokenizer())  # type: ignore[arg-type]


def own(r: Retriever, lex: Lexicon, dense: dict[str, float]) -> list[str]:
    bm25 = lex.scores(Tokenizer()(" ".join(QUESTION)))
    first = lex.ids[int(np.argmax(bm25))]
    return r._lexical_papers_own(lex, bm25, dense, first)


def test_the_named_papers_passages_join_when_others_fill_the_dense_candidates():
    lex = lexicon(12)
    dense = {f"paper-{p}-0": 0.9 for p in range(12) if p != 7}
    got = own(retriever(), lex, dense)
    assert len(got) == PAPER_NEAREST
    assert got[0] == "paper-7-names"
    assert {lex.paper_of(pid) for pid in got} == {"paper-7"}


def test_nothing_joins_when_the_paper_already_holds_dense_candidates():
    lex = lexicon(12)
    dense = {f"paper-7-{i}": 0.9 for i in range(3)} | {"paper-1-0": 0.8}
    assert own(retriever(), lex, dense) == []


def test_one_paper_or_a_paper_outside_the_scope_adds_nothing():
    one = Lexicon(
        LexicalIndex.build(
            [("a-0", "a", "harbour fees"), ("a-1", "a", "Zorbanian harbour")], Tokenizer()
        ),
        Tokenizer(),
    )
    assert own(retriever(), one, {}) == []
    assert own(retriever().within(["paper-1"]), lexicon(12), {}) == []
