"""The support judgement: does a premise support a statement? Names and numbers
are checked in code first; the judge answers the rest through `SupportPrompt`."""

from __future__ import annotations

import typing as t

from pydantic import BaseModel, Field
from ragas.prompt import PydanticPrompt


class SupportInput(BaseModel):
    premise: str = Field(description="Passages the statement cites.")
    statement: str


class SupportOutput(BaseModel):
    verdict: int = Field(description="1 if supported, 0 if not.", ge=0, le=1)


class SupportPrompt(PydanticPrompt[SupportInput, SupportOutput]):
    """A ragas prompt: does the premise support the statement? (0 or 1)."""

    instruction = (
        "Decide whether the premise supports the statement. Answer verdict 1 only if "
        "everything the statement claims (every number, date, name, place, and who did "
        "what to whom) is stated in the premise or follows directly from it; otherwise 0."
    )
    input_model = SupportInput
    output_model = SupportOutput
    examples = [
        (
            SupportInput(
                premise="Eight members contributed approximately 4,000 personnel to the drill.",
                statement="About 4,000 troops from eight members took part in the drill.",
            ),
            SupportOutput(verdict=1),
        ),
        (
            SupportInput(
                premise="Russia used the unanimity rule to block Chinese proposals.",
                statement="China blocked Russian proposals.",
            ),
            SupportOutput(verdict=0),
        ),
    ]


def support_prompt() -> SupportPrompt:
    """A fresh support prompt."""
    return SupportPrompt()


def names_and_numbers_present(premise: str, statement: str) -> bool:
    """Every number and name the statement states occurs in the premise (in any
    written form). A statement that fails this is not supported, whatever a
    judge says; checked in code before the judge is asked."""
    from service.text import entities, mentions, numbers_in

    if numbers_in(statement) - numbers_in(premise):
        return False
    return all(mentions(name, premise, {}) for name in entities(statement))


async def supported(prompt: t.Any, llm: t.Any, premise: str, statement: str) -> bool:
    """Whether `premise` supports `statement`: the names and numbers check, then the judge."""
    if not names_and_numbers_present(premise, statement):
        return False
    result = await prompt.generate(
        llm=llm, data=prompt.input_model(premise=premise, statement=statement)
    )
    return bool(result.verdict)
