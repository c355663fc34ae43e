"""Does a sentence answer the question as asked? The language model's graded
verdict.

The model reads the question and the sentences an answer would rest on and
gives one token, yes or no; the probability it puts on "yes" is the score.
One decoding step over a short prompt (the fixed instructions stay in the
model's cache) costs well under a second on 2 cores. Code checks what code
can (`service.answer.checks`); this judges what it cannot: whether a sentence about
Peace Mission 2021 says when two countries joined.
"""

from __future__ import annotations

import typing as t

from service.answer.prompt import ANSWERS_PROMPT
from service.answer.question import analyse_question


class YesNoModel(t.Protocol):
    last_prompt_tokens: int

    def yes_probability(self, system: str, user: str, lead: str = "") -> float: ...


class AnswerCheck:
    """Scores how surely sentences answer a question, 0..1."""

    def __init__(self, model: YesNoModel) -> None:
        self.model = model
        self.prompt_tokens = 0  # read by the model for verdicts, all told

    def score(self, question: str, sentences: list[str]) -> float:
        """How surely `sentences` answer `question`; the kind of answer the
        question wants is spelled out for the model ("asks for a place")."""
        joined = " ".join(s.strip() for s in sentences if s.strip())
        wanted = WANTS.get(analyse_question(question).parts[0].asks, "a fact")
        # The question leads: the sentences asked about in turn share it.
        verdict = self.model.yes_probability(
            ANSWERS_PROMPT,
            f" {joined}\nAnswer:",
            lead=f"Question: {question.strip()} (asks for {wanted})\nSentences:",
        )
        self.prompt_tokens += self.model.last_prompt_tokens
        return verdict


WANTS = {
    "quantity": "a number",
    "duration": "a length of time",
    "date": "a date",
    "place": "a place",
    "name": "a name",
    "reason": "a reason",
    "yesno": "yes or no",
    "list": "a list",
}
