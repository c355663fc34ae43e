"""Reading a question the way an analyst means it: acronyms both ways (from the
papers' own abbreviations lists), numbers in any written form, quoted phrases
as phrases, and whether it asks for a source."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from service.text import Tokenizer

_SOURCE_QUESTION_RE = re.compile(
    r"\b(?:which|what|whose)\s+(?:\w+\s+){0,2}(?:outlet|source|sources|publication|newspaper|news|"
    r"agency|media|website|site|document|report|article|journal|magazine|think\s+tank|institute|"
    r"study|analysis|work|author|publisher)\b"
    r"|\bwho\s+(?:reported|published|wrote)\b|\baccording\s+to\s+(?:which|what|whom)\b"
    r"|\b(?:cite|cites|cited|endnote|footnote|published|reported\s+by)\b|\bsourced?\b"
    r"|\b(?:backs|supports|behind)\s+(?:the|its|this|that)\s+(?:memo's\s+)?(?:claim|statement|"
    r"observation|point|assertion|figure)\b",
    re.IGNORECASE,
)
# Words that ask for a source rather than name the claim ("which outlet reported ...").
SOURCE_WORDS = (
    "outlet source publication newspaper news agency media website site document report "
    "article journal magazine cite endnote footnote according publish"
)
_PHRASE_RE = re.compile(r"[\"“]([^\"”]{3,200})[\"”]")
_LIST_QUESTION_RE = re.compile(
    r"\b(?:list|enumerate|name (?:the|all)|what are|which are|what were|which (?:\w+ ){0,3}"
    r"(?:countries|members|states|tools|goals|objectives|means|aims|areas|forces|initiatives|"
    r"organizations|institutions|steps|activities|events|takeaways|points|partners))\b",
    re.IGNORECASE,
)


def is_list_question(question: str) -> bool:
    return bool(_LIST_QUESTION_RE.search(question))


def is_source_question(question: str) -> bool:
    return bool(_SOURCE_QUESTION_RE.search(question))


@dataclass(frozen=True)
class Concept:
    """One thing the question names, with its equivalent spellings as term sets
    ({"rats"} or {"region", "antiterror", "structur"})."""

    alternatives: tuple[frozenset[str], ...]

    def covered_by(self, terms: set[str]) -> bool:
        return any(alt <= terms for alt in self.alternatives)


@dataclass(frozen=True)
class Query:
    text: str
    dense_text: str  # with acronyms spelled out, for the embedding
    terms: list[str]  # for BM25, expansions included
    concepts: list[Concept]  # for coverage
    phrases: list[str] = field(default_factory=list)
    source: bool = False
    wants_list: bool = False


def analyse(question: str, tokenizer: Tokenizer, acronyms: dict[str, str]) -> Query:
    source = is_source_question(question)
    meta = set(tokenizer(SOURCE_WORDS)) if source else set()
    expansions: dict[str, str] = {}
    for acronym, spelled in acronyms.items():
        if re.search(rf"\b{re.escape(acronym)}s?\b", question):
            expansions[acronym] = spelled
        elif spelled.lower() in question.lower():
            expansions[acronym] = spelled
    dense_text = question
    extra = [f"{a} ({x})" for a, x in expansions.items()]
    if extra:
        dense_text = f"{question} [{'; '.join(extra)}]"

    words = tokenizer(question)
    concepts: list[Concept] = []
    consumed: set[str] = set()
    for acronym, spelled in expansions.items():
        short = frozenset(tokenizer(acronym, keep_stopwords=True))
        long = frozenset(tokenizer(spelled))
        concepts.append(Concept((short, long)))
        consumed |= short | long
    for word in words:
        if word in consumed or word in meta:
            continue
        consumed.add(word)
        concepts.append(Concept((frozenset([word]),)))
    terms = list(words)
    for acronym, spelled in expansions.items():
        terms += tokenizer(acronym, keep_stopwords=True) + tokenizer(spelled)
    phrases = [m.group(1).strip() for m in _PHRASE_RE.finditer(question)]
    return Query(question, dense_text, terms, concepts, phrases, source, is_list_question(question))
