"""`POST /v1/ask`: a question answered from the indexed papers, with citations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.concurrency import run_in_threadpool

from service.api import schemas
from service.api.deps import CallerDep, EngineDep, GuardDep, reader
from service.api.limits import QuestionLimitDep, check_length
from service.api.mapping import to_response
from service.api.streaming import answer_stream, start_answer, wants_stream

router = APIRouter(prefix="/v1", dependencies=[Depends(reader)])


@router.post(
    "/ask",
    response_model=schemas.AskResponse,
    summary="Answer a question with citations",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or an event stream"}
    },
)
async def ask(
    body: schemas.AskRequest,
    engine: EngineDep,
    guard: GuardDep,
    who: CallerDep,
    limit: QuestionLimitDep,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Answer from the indexed papers; every claim cites a passage and its sources.
    With `"stream": true` (or `Accept: text/event-stream`) the answer streams as
    Server-Sent Events: `token` events, then `citations`, then `done` with the
    whole response."""
    check_length(body.question, limit, ("body", "question"))
    if not wants_stream(body.stream, accept):
        with guard.answering(who):
            result = await run_in_threadpool(
                engine.ask, body.question, body.top_k, None, body.documents
            )
        return to_response(result)
    started = await start_answer(
        engine, guard, who, body.question, body.top_k, None, body.documents
    )
    return answer_stream(started, lambda r: to_response(r).model_dump())
