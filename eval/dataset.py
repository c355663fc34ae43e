"""The curated question set and its validator.

Labels point at text, not passage ids: each evidence span must occur verbatim
in the plain text of a corpus document (markdown removed, endnote markers
removed, whitespace collapsed), so re-chunking never invalidates them.
Run `python -m eval.dataset [FILE ...]` to validate.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ingest.chunk import chunk_document
from ingest.corpus import ExtractionCache, load_corpus
from ingest.errors import CorpusError
from ingest.parse import parse_document
from ingest.settings import IngestSettings
from ingest.text import clean_inline, plain_text

Kind = Literal[
    "fact",
    "list",
    "multihop",
    "multipart",
    "source",
    "followup",
    "partial",
    "premise",
    "unanswerable",
    "nearmiss",
]
KINDS: tuple[str, ...] = get_args(Kind)
# Kinds the papers do not answer: the right response is a refusal.
UNANSWERABLE = ("unanswerable", "nearmiss")
QUESTIONS = Path(__file__).parent / "questions.jsonl"
# The library the questions are asked of: the memo and real reports, in one index.
LIBRARY = Path(__file__).parent / "library.json"
JUDGE_CASES = Path(__file__).parent / "judge_cases.jsonl"
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


class HistoryTurn(BaseModel):
    """An earlier turn of the conversation a follow-up question belongs to."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str = Field(min_length=1)


class GoldEvidence(BaseModel):
    """Where the answer is in the papers: a verbatim span of a document."""

    model_config = ConfigDict(extra="forbid")
    doc: str = Field(description="Document id from the manifest.")
    span: str = Field(min_length=3, description="Verbatim text of that document.")


class EvalItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*-\d{3}$")
    kind: Kind
    split: Literal["dev", "test"]
    question: str = Field(min_length=5)
    history: list[HistoryTurn] = Field(
        default_factory=list, description="Earlier turns (follow-ups)."
    )
    reference: str = Field(min_length=2, description="A correct answer, in full sentences.")
    key_facts: list[str] = Field(
        default_factory=list, description="What a correct answer must state."
    )
    evidence: list[GoldEvidence] = Field(default_factory=list)
    endnotes: list[int] = Field(default_factory=list, description="Endnote numbers involved.")
    missing: str | None = Field(
        None, description="partial: the part of the question the papers do not answer."
    )
    premise: str | None = Field(
        None, description="premise: what the question assumes that the papers contradict."
    )
    trap: list[GoldEvidence] = Field(
        default_factory=list,
        description="nearmiss: the neighbouring text that does NOT answer the question.",
    )
    paper: str | None = Field(
        None,
        description="The document a question without evidence (unanswerable) is about, "
        "for the report's rows per paper; never shown to the service.",
    )
    notes: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> EvalItem:
        if self.kind in UNANSWERABLE:
            if self.evidence or self.key_facts:
                raise ValueError("an unanswerable item has no evidence and no key facts")
            if self.kind == "nearmiss" and not self.trap:
                raise ValueError(
                    "a near miss names the neighbouring text it must not be answered from"
                )
        else:
            if not self.evidence:
                raise ValueError("an answerable item needs evidence spans")
            if not self.key_facts:
                raise ValueError("an answerable item needs key facts")
        if self.kind == "followup" and not self.history:
            raise ValueError("a follow-up needs the earlier turns in history")
        if self.kind == "source" and not self.endnotes:
            raise ValueError("a source question names the endnote(s) that answer it")
        if self.kind in ("multihop", "multipart") and len(self.evidence) < 2 and not self.endnotes:
            raise ValueError(f"a {self.kind} item needs two spans, or a span plus its endnote")
        if self.kind == "multipart" and len(self.key_facts) < 2:
            raise ValueError("a multipart item needs key facts for each part")
        if self.kind == "partial" and not self.missing:
            raise ValueError("a partial item names the part the papers do not answer (missing)")
        if self.kind == "premise" and not self.premise:
            raise ValueError("a premise item states the false assumption (premise)")
        if self.missing and self.kind != "partial":
            raise ValueError("only a partial item has a missing part")
        return self


@dataclass(frozen=True)
class CorpusText:
    """Each document's plain text, as the validator and the metrics match spans."""

    texts: dict[str, str]
    endnotes: dict[str, dict[int, str]]

    def contains(self, doc: str, span: str) -> bool:
        return normalise(span) in self.texts.get(doc, "")


def corpus_text(manifest: Path, cache: ExtractionCache | None = None) -> CorpusText:
    texts: dict[str, str] = {}
    notes: dict[str, dict[int, str]] = {}
    for source in load_corpus(manifest, cache):
        parsed = parse_document(source.text, name=str(source.path))
        passages = chunk_document(source.meta.id, parsed, max_chars=10**6, min_chars=0)
        whole = normalise(clean_inline(source.text, markers="strip"))
        repaired = " ".join(normalise(plain_text(p.text).replace("\n- ", " ")) for p in passages)
        texts[source.meta.id] = f"{whole} \x00 {repaired}"
        notes[source.meta.id] = {n: e.text for n, e in parsed.endnotes.items()}
    return CorpusText(texts, notes)


def load_items(path: Path = QUESTIONS) -> list[EvalItem]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(EvalItem.model_validate_json(line))
        except ValidationError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
    return items


def validate(items: list[EvalItem], corpus: CorpusText) -> list[str]:
    """Every problem found, as readable lines; empty when the set is sound."""
    problems = []
    ids = Counter(i.id for i in items)
    problems += [f"{i}: duplicate id" for i, n in ids.items() if n > 1]
    questions = Counter(normalise(i.question).lower() for i in items)
    problems += [f"duplicate question: {q}" for q, n in questions.items() if n > 1]
    for item in items:
        if item.paper is not None and item.paper not in corpus.texts:
            problems.append(f"{item.id}: unknown document {item.paper}")
        for ev in [*item.evidence, *item.trap]:
            if ev.doc not in corpus.texts:
                problems.append(f"{item.id}: unknown document {ev.doc}")
            elif not corpus.contains(ev.doc, ev.span):
                problems.append(f"{item.id}: span not in {ev.doc}: {ev.span!r}")
        docs = {ev.doc for ev in item.evidence} or set(corpus.endnotes)
        for number in item.endnotes:
            if not any(number in corpus.endnotes.get(d, {}) for d in docs):
                problems.append(f"{item.id}: endnote {number} does not exist")
    return problems


def summary(items: list[EvalItem]) -> str:
    counts = Counter((i.kind, i.split) for i in items)
    rows = [
        f"{k:13} dev {counts[(k, 'dev')]:3}  test {counts[(k, 'test')]:3}"
        for k in KINDS
        if counts[(k, "dev")] + counts[(k, "test")]
    ]
    return "\n".join([*rows, f"{'total':13} {len(items)}"])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eval.dataset", description="Validate question files against a corpus."
    )
    parser.add_argument("files", nargs="*", type=Path, help=f"question files (default {QUESTIONS})")
    parser.add_argument(
        "--manifest", type=Path, default=LIBRARY, help=f"the corpus asked (default {LIBRARY})"
    )
    args = parser.parse_args(argv)
    paths = args.files or [QUESTIONS]
    try:
        cache = ExtractionCache(IngestSettings().index.extracted_folder)
        corpus = corpus_text(args.manifest, cache)
    except CorpusError as exc:
        print(exc)
        return 1
    items: list[EvalItem] = []
    try:
        for path in paths:
            items += load_items(path)
    except ValueError as exc:
        print(exc)
        return 1
    problems = validate(items, corpus)
    for problem in problems:
        print(problem)
    print(summary(items))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
