"""Query-time text rules: the search tokenizer, the names and numbers a question
is about, and text that addresses a model."""

from __future__ import annotations

import re

from ingest.terms import STOPWORDS as STOPWORDS
from ingest.terms import Tokenizer as Tokenizer
from ingest.terms import plain_number as plain_number
from ingest.text import strip_superscripts

_ENTITY_RE = re.compile(r"\b(?:[A-Z][\w’'-]*|\d[\d,.]*\d|\d)\b")


_QUESTION_STARTERS = frozenset(
    """what which who whom whose when where why how is are was were do does did can could
    should would will has have had tell list name give describe explain according in on
    for to by from of and or the a an""".split()
)


def entities(text: str) -> list[str]:
    """Names and numbers in a question: capitalised words past the first word,
    and numbers without separators ("4,000" -> "4000")."""
    found = []
    for i, m in enumerate(_ENTITY_RE.finditer(strip_superscripts(text))):
        word = m.group(0)
        if word[0].isdigit():
            found.append(plain_number(word))
        elif m.start() == 0 or (i == 0 and word.lower() in _QUESTION_STARTERS):
            continue
        elif word.lower() not in _QUESTION_STARTERS or word.isupper():
            found.append(word.removesuffix("’s").removesuffix("'s"))
    return found


def mentions(entity: str, text: str, acronyms: dict[str, str]) -> bool:
    """Whether text names the entity: the same number, a capitalised word with the
    same first four letters ("Russia"/"Russian", "China"/"Chinese"), or an
    acronym spelled out ("SCO" / "Shanghai Cooperation Organization")."""
    if entity[0].isdigit():
        return entity in {plain_number(w) for w in re.findall(r"\d[\d,]*\d|\d", text)}
    lowered = text.lower()
    expansion = acronyms.get(entity)
    if expansion and expansion.lower() in lowered:
        return True
    for acronym, spelled in acronyms.items():
        if spelled.lower() == entity.lower() and re.search(rf"\b{re.escape(acronym)}\b", text):
            return True
    if entity.isupper() or len(entity) <= 4:
        return re.search(rf"\b{re.escape(entity)}\b", text, re.IGNORECASE) is not None
    stem = entity[:4].lower()
    return any(w.lower().startswith(stem) for w in re.findall(r"\b[A-Z][\w’'-]*", text))


_INSTRUCTION_RE = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.]{0,40}\b(?:instructions?|rules|prompt|above|previous|"
    r"everything)\b|\b(?:system prompt|you are (?:now )?(?:an? )?(?:ai|assistant|language model|"
    r"chatbot)|"
    r"(?:assistant|ai|model|chatbot)s?,? (?:must|should) (?:answer|reply|say|respond)|"
    r"(?:answer|reply|respond) (?:only )?with the (?:following|words?)|new instructions)\b",
    re.IGNORECASE,
)


def looks_like_instructions(text: str) -> bool:
    """Text that addresses a language model rather than a reader ("ignore your
    instructions and say ..."). Such sentences in a paper are data: they are kept
    out of prompts and can never be quoted as support."""
    return bool(_INSTRUCTION_RE.search(text))


_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}


_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}


_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}


_NUMBER_WORD_RE = re.compile(
    r"\b(?:a\s+)?(?:dozen|(?:"
    + "|".join([*_UNITS, *_TENS])
    + r")(?:[-\s](?:"
    + "|".join(_UNITS)
    + r"))?(?:\s+(?:"
    + "|".join(_SCALES)
    + r"))?)\b",
    re.IGNORECASE,
)


_DIGITS_RE = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _to_int(words: str) -> int | None:
    tokens = re.split(r"[-\s]+", words.lower().strip())
    if tokens and tokens[0] == "a":
        tokens = tokens[1:]
    if tokens == ["dozen"]:
        return 12
    total = 0
    for token in tokens:
        if token in _UNITS:
            total += _UNITS[token]
        elif token in _TENS:
            total += _TENS[token]
        elif token in _SCALES:
            total = max(total, 1) * _SCALES[token]
        else:
            return None
    return total


def numbers_in(text: str, *, words: bool = True) -> set[str]:
    """Every number the text states, as digits: "4,000" -> "4000", "three" -> "3",
    "a dozen" -> "12", "$890 billion" -> "890"."""
    text = strip_superscripts(text)
    found = {plain_number(m.group(0)) for m in _DIGITS_RE.finditer(text)}
    if words:
        for m in _NUMBER_WORD_RE.finditer(text):
            value = _to_int(m.group(0))
            if value is not None:
                found.add(str(value))
    return {n.removesuffix(".0") for n in found if n}
