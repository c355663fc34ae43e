"""Follow-up questions made standalone before retrieval, offline and without a
language model: "And when did it open?" after a question about the RATS
becomes "And when did it open? (RATS ...)".

A question is a follow-up when it leans on the conversation: it opens with a
connective ("and", "what about"), uses a pronoun without naming anything, or
is too short to stand alone. It then carries the names and content words of
the previous user turn (and of the answer's first sentence), so both the
lexical and the dense retriever see what "it" refers to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.text import STOPWORDS, entities

_CONNECTIVE_RE = re.compile(
    r"^\s*(?:and|but|so|also|then|what about|how about|and what about|what else|why|how come)\b",
    re.IGNORECASE,
)
_PRONOUN_RE = re.compile(
    r"\b(?:it|its|it's|they|them|their|theirs|this|that|these|those|there|he|she|his|her|"
    r"the same|such|the former|the latter|the organization|the group|the drill|the summit)\b",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[A-Za-z][\w’'-]*")


@dataclass(frozen=True)
class Turn:
    role: str  # user | assistant
    content: str


def is_follow_up(question: str) -> bool:
    content = [w for w in _WORD_RE.findall(question) if w.lower() not in STOPWORDS]
    named = entities(question)
    if _CONNECTIVE_RE.search(question):
        return True
    if _PRONOUN_RE.search(question) and not named:
        return True
    return len(content) <= 2 and not named


def _keywords(text: str, limit: int) -> list[str]:
    words = []
    for w in _WORD_RE.findall(text):
        if w.lower() in STOPWORDS or len(w) < 3:
            continue
        if w not in words:
            words.append(w)
    return words[:limit]


def standalone_question(question: str, history: list[Turn]) -> str:
    """The question to retrieve with: as asked when it stands alone, otherwise
    followed by what the conversation was about."""
    users = [t.content for t in history if t.role == "user"]
    if not users or not is_follow_up(question):
        return question
    previous = users[-1]
    answers = [t.content for t in history if t.role == "assistant"]
    context = entities(previous) + _keywords(previous, 8)
    if answers:
        first = re.split(r"(?<=[.!?])\s", re.sub(r"\[\d+\]", "", answers[-1]).strip())[0]
        context += entities(first)[:4]
    seen: list[str] = []
    for word in context:
        if word.lower() not in {s.lower() for s in seen} and word.lower() not in question.lower():
            seen.append(word)
    return f"{question} ({' '.join(seen)})" if seen else question
