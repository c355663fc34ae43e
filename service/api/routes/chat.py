"""`POST /v1/chat`: the last turn of a conversation answered, follow-ups resolved."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.concurrency import run_in_threadpool

from service.answer.types import AnswerResult
from service.api import schemas
from service.api.deps import CallerDep, ConversationsDep, EngineDep, GuardDep, reader
from service.api.limits import QuestionLimitDep, check_length
from service.api.mapping import to_response
from service.api.streaming import answer_stream, start_answer, wants_stream
from service.followup import Turn

router = APIRouter(prefix="/v1", dependencies=[Depends(reader)])


@router.post(
    "/chat",
    response_model=schemas.AskResponse,
    summary="Answer the last turn of a conversation",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or an event stream"},
        404: {"description": "Unknown or expired conversation_id"},
    },
)
async def chat(
    body: schemas.ChatRequest,
    engine: EngineDep,
    conversations: ConversationsDep,
    guard: GuardDep,
    who: CallerDep,
    limit: QuestionLimitDep,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Answer the last user message; follow-ups are resolved against the earlier
    turns (sent by the client, kept by the service under `conversation_id`, or
    both). Citations belong to the message they come with: `[n]` always means
    this response's citation n."""
    for i, message in enumerate(body.messages):
        check_length(message.content, limit, ("body", "messages", i, "content"))
    *earlier, last = body.messages
    cid = body.conversation_id
    history = conversations.history(cid) if cid else []
    history += [Turn(m.role, m.content) for m in earlier]
    cid = cid or conversations.create()
    question = last.content.strip()

    def remember(result: AnswerResult) -> schemas.AskResponse:
        conversations.add(cid, Turn("user", question), Turn("assistant", result.answer))
        response = to_response(result)
        response.conversation_id = cid
        return response

    if not wants_stream(body.stream, accept):
        with guard.answering(who):
            result = await run_in_threadpool(
                engine.ask, question, body.top_k, history, body.documents
            )
        return remember(result)
    started = await start_answer(engine, guard, who, question, body.top_k, history, body.documents)
    return answer_stream(started, lambda r: remember(r).model_dump())
