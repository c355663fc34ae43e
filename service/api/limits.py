"""The longest question the service accepts (`api.max_question_chars`), checked
the same way on every route that takes one; the request schemas state only the
ceiling no setting may pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError

from service.settings import Settings


def question_limit(request: Request) -> int:
    settings: Settings = request.app.state.settings
    return settings.api.max_question_chars


QuestionLimitDep = Annotated[int, Depends(question_limit)]


def check_length(text: str, limit: int, loc: Sequence[str | int]) -> None:
    """A 422 in the shape of FastAPI's own validation errors when `text` is too long."""
    if len(text) > limit:
        raise RequestValidationError(
            [
                {
                    "type": "string_too_long",
                    "loc": tuple(loc),
                    "msg": f"String should have at most {limit} characters",
                    "input": text,
                    "ctx": {"max_length": limit},
                }
            ]
        )
