"""The model as reader: it copies the words that answer a question from the
candidate sentences, under a grammar that allows only a run of consecutive
words of one of them, or NONE. Code then checks the words against the kind of
answer asked (a number for "how many", a date for "when", ...) and quotes the
sentence that holds them; the model never writes a word of its own.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from service.answer.answerability import WANTS
from service.answer.prompt import READ_PROMPT

NONE = "NONE"


class GrammarModel(t.Protocol):
    last_prompt_tokens: int

    def constrained(self, system: str, user: str, grammar: str, *, max_tokens: int = 64) -> str: ...


@dataclass(frozen=True)
class Reading:
    sentence: int | None  # which candidate holds the words; None when the model found none
    words: str
    prompt_tokens: int


def _literal(word: str) -> str:
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def span_grammar(sentences: list[list[str]]) -> str:
    """GBNF for NONE or any run of consecutive words of one sentence: each word
    may start the run, and each may end it or go on to the next word."""
    rules = []
    starts = [_literal(NONE)]
    for i, words in enumerate(sentences):
        for k, word in enumerate(words):
            name = f"s{i}w{k}"
            starts.append(name)
            nxt = f' (" " s{i}w{k + 1})?' if k + 1 < len(words) else ""
            rules.append(f"{name} ::= {_literal(word)}{nxt}")
    return "\n".join([f"root ::= {' | '.join(starts)}", *rules])


class SpanReader:
    """Asks the model for the words that answer a question part."""

    def __init__(self, model: GrammarModel, *, max_words: int = 40) -> None:
        self.model = model
        self.max_words = max_words
        self.prompt_tokens = 0

    def read(self, question: str, asks: str, sentences: list[str]) -> Reading:
        split = [s.split()[: self.max_words] for s in sentences]
        listed = "\n".join(f"{i + 1}. {' '.join(words)}" for i, words in enumerate(split))
        wanted = WANTS.get(asks, "a fact")
        user = f"Question: {question.strip()} (asks for {wanted})\nSentences:\n{listed}\nAnswer:"
        reply = self.model.constrained(READ_PROMPT, user, span_grammar(split)).strip()
        self.prompt_tokens += self.model.last_prompt_tokens
        if not reply or reply == NONE:
            return Reading(None, "", self.model.last_prompt_tokens)
        holder = next(
            (i for i, words in enumerate(split) if f" {reply} " in f" {' '.join(words)} "), None
        )
        return Reading(holder, reply, self.model.last_prompt_tokens)
