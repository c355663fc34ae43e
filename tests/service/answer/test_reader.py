"""The model as reader: the grammar allows only NONE or a run of one
candidate's consecutive words, and the reading names the sentence that holds
them. The grammar is checked by llama.cpp's own parser, the reading with a
stand-in model."""

from __future__ import annotations

import re

from service.answer.reader import NONE, SpanReader, span_grammar


def _accepts(grammar: str, text: str) -> bool:
    """Whether the grammar derives text: a start of the root, then each rule's
    word and, optionally, the rule it goes on to."""
    lines = grammar.splitlines()
    starts = lines[0].removeprefix("root ::= ").split(" | ")
    rules = {}
    for line in lines[1:]:
        name, body = line.split(" ::= ", 1)
        word = re.match(r'"((?:[^"\\]|\\.)*)"', body)
        after = re.search(r"\b(s\d+w\d+)\)\?$", body)
        assert word is not None
        rules[name] = (_unquote(word.group(1)), after.group(1) if after else None)
    words = text.split(" ")
    for start in starts:
        if start.startswith('"'):
            if text == _unquote(start.strip('"')):
                return True
            continue
        rule: str | None = start
        for i, word in enumerate(words):
            if rule is None or rules[rule][0] != word:
                break
            if i == len(words) - 1:
                return True
            rule = rules[rule][1]
    return False


def _unquote(text: str) -> str:
    return text.replace('\\"', '"').replace("\\\\", "\\")


def test_the_grammar_allows_only_runs_of_one_sentence_or_none():
    grammar = span_grammar([["About", "4,000", "troops", "took", "part."], ['"Peace', 'Mission"']])
    assert _accepts(grammar, NONE)
    assert _accepts(grammar, "4,000 troops")
    assert _accepts(grammar, "About 4,000 troops took part.")
    assert _accepts(grammar, '"Peace Mission"')
    assert not _accepts(grammar, "4,000 part.")  # not consecutive
    assert not _accepts(grammar, "part. Peace")  # across sentences
    assert not _accepts(grammar, "5,000 troops")


def test_the_grammar_is_one_llama_cpp_parses():
    from llama_cpp.llama_grammar import LlamaGrammar

    grammar = span_grammar([["In", "Vienna", "in", "1957."], ["It", "grew."]])
    assert LlamaGrammar.from_string(grammar, verbose=False) is not None


class _Model:
    last_prompt_tokens = 0

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.asked: list[str] = []

    def constrained(self, system: str, user: str, grammar: str, *, max_tokens: int = 64) -> str:
        self.asked.append(user)
        self.last_prompt_tokens = len(user.split())
        return self.reply


def test_a_reading_names_the_sentence_holding_the_words():
    reader = SpanReader(_Model("in Vienna."))
    reading = reader.read(
        "Where is it based?", "place", ["It grew fast.", "The agency was set up in Vienna."]
    )
    assert reading.sentence == 1 and reading.words == "in Vienna."
    assert "(asks for a place)" in reader.model.asked[0]  # type: ignore[attr-defined]
    none = SpanReader(_Model(NONE)).read("Where?", "place", ["It grew fast."])
    assert none.sentence is None and none.words == ""
