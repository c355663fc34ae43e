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

from service.answer.question import analyse_question

ANSWERS_PROMPT = """You check whether sentences from a policy paper answer a question. Reply yes only if the sentences state the specific thing the question asks for. Reply no if they are about a related but different thing: another actor, another event, another year, a total instead of a bilateral figure, a rough period instead of an exact date, members instead of attendees, a plan instead of what happened, or if they only mention the subject without giving what is asked (no place for "where", no length for "how long", no conditions for "what criteria").

Examples:
Question: How many soldiers did France send to Mali in 2013?
Sentences: France contributed about 4,000 military personnel to the Mali operation in 2013.
Answer: yes
Question: What was the bilateral trade between Germany and Poland in 2020?
Sentences: Germany's total trade with all EU members reached €1.2 trillion in 2020.
Answer: no
Question: How many leaders attended the Vilnius summit?
Sentences: More than 2,000 delegates attended the Vilnius summit, where NATO confirmed it has 31 members.
Answer: no
Question: When exactly did the ministers meet?
Sentences: The ministers will meet in the spring.
Answer: no
Question: Why did Norway veto the plan?
Sentences: Sweden vetoed the plan because of its cost.
Answer: no
Question: Where is the new investment fund based?
Sentences: The summit also launched a new investment fund to support member economies.
Answer: no
Question: Nationals of which country carried out the bombing?
Sentences: Foreign nationals were involved in the bombing of the embassy on May 3, 2019.
Answer: no
Question: How long did the naval exercise last?
Sentences: The naval exercise was the first to include all ten navies.
Answer: no
Question: Which countries are observers of the council?
Sentences: Dialogue partners, a status that can lead to observer status, include Chile and Peru.
Answer: no
Question: Where is the agency based?
Sentences: The agency was set up in Vienna in 1957.
Answer: yes
Question: Why did Canada leave the pact?
Sentences: Canada left the pact because it rejected the new emissions targets.
Answer: yes
Question: Which countries joined the bank in 2016?
Sentences: In 2016, the bank admitted Chile and Peru as new members.
Answer: yes"""


class YesNoModel(t.Protocol):
    last_prompt_tokens: int

    def yes_probability(self, system: str, user: str) -> float: ...


class AnswerCheck:
    """Scores how surely sentences answer a question, 0..1."""

    def __init__(self, model: YesNoModel) -> None:
        self.model = model
        self.prompt_tokens = 0  # read by the model for verdicts, all told

    def score(self, question: str, sentences: list[str]) -> float:
        """How surely `sentences` answer `question`; the kind of answer the
        question wants is spelled out for the model ("asks for a place")."""
        joined = " ".join(s.strip() for s in sentences if s.strip())
        wanted = _WANTS.get(analyse_question(question).parts[0].asks, "a fact")
        verdict = self.model.yes_probability(
            ANSWERS_PROMPT,
            f"Question: {question.strip()} (asks for {wanted})\nSentences: {joined}\nAnswer:",
        )
        self.prompt_tokens += self.model.last_prompt_tokens
        return verdict


_WANTS = {
    "quantity": "a number",
    "duration": "a length of time",
    "date": "a date",
    "place": "a place",
    "name": "a name",
    "reason": "a reason",
    "yesno": "yes or no",
    "list": "a list",
}
