"""The lexical index of a generation: BM25 over its passages' search text, with
each term's document frequency. Ingest builds it and saves it beside the index
(one folder per generation); a service reads the saved one memory-mapped, so
neither its start nor its memory grows with the corpus. A service that finds
none (an index ingested elsewhere, or by an older memoqa) builds and saves it
once."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ingest import terms
from ingest.index.records import StoredPassage

# Bumped when what is saved changes.
LEXICAL_FORMAT = "1"
_META = "lexical.json"


def fingerprint(generation: str) -> str:
    """What a saved index must match to be used: the generation, the saved
    format and the tokenizer's rules."""
    source = Path(terms.__file__).read_bytes()
    tokenizer = hashlib.sha256(source).hexdigest()[:12]
    return f"{generation}:{LEXICAL_FORMAT}:{tokenizer}"


@dataclass
class LexicalIndex:
    """BM25 over passages in a fixed order, with the paper of each."""

    ids: list[str]
    documents: list[str]  # the papers, each once
    document_of: np.ndarray  # per passage: its paper's place in `documents`
    bm25: Any
    position: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.position = {pid: i for i, pid in enumerate(self.ids)}

    @classmethod
    def build(
        cls, passages: Iterable[tuple[str, str, str]], tokenizer: Callable[[str], list[str]]
    ) -> LexicalIndex:
        """From (passage id, paper id, search text) triples."""
        import bm25s

        ids: list[str] = []
        papers: dict[str, int] = {}
        document_of: list[int] = []
        tokens: list[list[str]] = []
        for pid, paper, text in passages:
            ids.append(pid)
            document_of.append(papers.setdefault(paper, len(papers)))
            tokens.append(tokenizer(text))
        bm25 = bm25s.BM25()
        bm25.index(tokens, show_progress=False)
        return cls(ids, list(papers), np.asarray(document_of, dtype=np.int32), bm25)

    def save(self, folder: Path, stamp: str) -> None:
        """Written whole into `folder` (replacing it) or not at all."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
        try:
            self.bm25.save(str(work), show_progress=False)
            np.save(work / "document_of.npy", self.document_of)
            meta = {"fingerprint": stamp, "ids": self.ids, "documents": self.documents}
            (work / _META).write_text(json.dumps(meta), encoding="utf-8")
            shutil.rmtree(folder, ignore_errors=True)
            work.rename(folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path, stamp: str) -> LexicalIndex | None:
        """The index saved in `folder`, memory-mapped; None when there is none or
        it was saved for another generation or tokenizer."""
        import bm25s

        try:
            meta = json.loads((folder / _META).read_text(encoding="utf-8"))
            if meta.get("fingerprint") != stamp:
                return None
            bm25 = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
            document_of = np.asarray(np.load(folder / "document_of.npy", mmap_mode="r"))
            # Plain arrays over the same mapped memory: a numpy memmap makes
            # every slice an object of its own, which scoring does per term.
            bm25.scores = {
                k: np.asarray(v) if isinstance(v, np.memmap) else v for k, v in bm25.scores.items()
            }
        except (OSError, ValueError, KeyError):
            return None
        return cls(list(meta["ids"]), list(meta["documents"]), document_of, bm25)

    def __len__(self) -> int:
        return len(self.ids)

    def df(self, term: str) -> int:
        """How many passages hold the term."""
        column = self.bm25.vocab_dict.get(term)
        if column is None:
            return 0
        indptr = self.bm25.scores["indptr"]
        return int(indptr[column + 1] - indptr[column])

    def idf(self, term: str) -> float:
        n, df = len(self.ids), self.df(term)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def in_documents(self, documents: frozenset[str]) -> np.ndarray:
        """1 for each passage of these papers, 0 for the others."""
        wanted = [i for i, d in enumerate(self.documents) if d in documents]
        return np.isin(self.document_of, wanted).astype(float)

    def scores(self, query_terms: list[str]) -> np.ndarray:
        """The BM25 score of every passage, in `ids` order."""
        known = [t for t in query_terms if t in self.bm25.vocab_dict]
        if not known:
            return np.zeros(len(self.ids))
        return np.asarray(self.bm25.get_scores(known))


def _triples(passages: Iterable[StoredPassage]) -> Iterator[tuple[str, str, str]]:
    for p in passages:
        yield p.id, p.document_id, p.search_text()


def save_generation(folder: Path, generation: str, passages: Iterable[StoredPassage]) -> None:
    """Build and save the lexical index of a generation just written; a folder
    that cannot be written only means the service builds it itself."""
    index = LexicalIndex.build(_triples(passages), terms.Tokenizer())
    try:
        index.save(folder / generation, fingerprint(generation))
    except OSError:
        return


def remove_generations(folder: Path, generations: Iterable[str]) -> None:
    for name in generations:
        shutil.rmtree(folder / name, ignore_errors=True)


def open_generation(
    folder: Path,
    generation: str,
    passages: Callable[[], Iterable[StoredPassage]],
    tokenizer: Callable[[str], list[str]],
) -> LexicalIndex:
    """The saved lexical index of a generation, or one built from its passages
    (and saved, for the next process) when none is saved."""
    stamp = fingerprint(generation)
    found = LexicalIndex.load(folder / generation, stamp)
    if found is not None:
        return found
    built = LexicalIndex.build(_triples(passages()), tokenizer)
    try:
        built.save(folder / generation, stamp)
    except OSError:
        pass
    return built
