"""Server-Sent Events for answers: the answer's verified pieces as they are
made, then the citations, then a final event with the whole response.

The answer is produced in a worker thread; when the client disconnects, the
generation is cancelled within a token.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from service.answer.types import AnswerResult, DoneEvent, TextEvent
from service.api.security import Guard
from service.engine import Engine
from service.followup import Turn

Events = Iterator[TextEvent | DoneEvent]


def wants_stream(flag: bool, accept: str | None) -> bool:
    return flag or "text/event-stream" in (accept or "")


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def hold(guard: Guard, who: str) -> Callable[[], None]:
    """Take one of the caller's answer slots for a streamed answer; the returned
    function gives it back (once) when the stream ends."""
    slot = guard.answering(who)
    slot.__enter__()
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            slot.__exit__(None, None, None)

    return release


@dataclass
class StartedAnswer:
    """An answer run up to its first event, holding one of the caller's answer slots."""

    events: Events
    first: TextEvent | DoneEvent
    cancel: threading.Event  # set when the stream ends: a disconnected client stops the model
    release: Callable[[], None]  # gives the answer slot back


async def start_answer(
    engine: Engine,
    guard: Guard,
    who: str,
    question: str,
    top_k: int | None,
    history: list[Turn] | None,
    documents: list[str] | None = None,
) -> StartedAnswer:
    """Take an answer slot and run the answer up to its first event before the
    response starts, so that a busy model or a missing index still gets a proper
    status code (the slot is given back if it fails)."""
    release = hold(guard, who)
    cancel = threading.Event()
    try:
        events = engine.ask_events(question, top_k, history, cancel, documents)
        first = await run_in_threadpool(next, events)
    except BaseException:
        release()
        raise
    return StartedAnswer(events, first, cancel, release)


async def _drive(
    started: StartedAnswer,
    render: Callable[[TextEvent | DoneEvent], list[str]],
    end: list[str],
) -> AsyncIterator[str]:
    try:
        event: TextEvent | DoneEvent | None = started.first
        while event is not None:
            if not (isinstance(event, TextEvent) and not event.text):
                for chunk in render(event):
                    yield chunk
            if isinstance(event, DoneEvent):
                break
            event = await run_in_threadpool(next, started.events, None)
        for chunk in end:
            yield chunk
    finally:
        started.cancel.set()  # a disconnected client stops the model
        started.release()


def answer_stream(
    started: StartedAnswer, to_body: Callable[[AnswerResult], dict[str, Any]]
) -> StreamingResponse:
    """memoqa's own event stream: `token`, `citations`, `done`."""

    def render(event: TextEvent | DoneEvent) -> list[str]:
        if isinstance(event, TextEvent):
            return [sse("token", {"text": event.text})]
        body = to_body(event.result)
        return [sse("citations", {"citations": body["citations"]}), sse("done", body)]

    return StreamingResponse(
        _drive(started, render, []),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def openai_stream(
    started: StartedAnswer,
    chunk: Callable[[dict[str, Any], str | None, dict[str, Any] | None], dict[str, Any]],
    to_extra: Callable[[AnswerResult], tuple[str, dict[str, Any]]],
) -> StreamingResponse:
    """The OpenAI chat-completions chunk stream, ending with `data: [DONE]`."""
    role_sent = [False]

    def data(delta: dict[str, Any], finish: str | None = None, extra: Any = None) -> str:
        return f"data: {json.dumps(chunk(delta, finish, extra), ensure_ascii=False)}\n\n"

    def render(event: TextEvent | DoneEvent) -> list[str]:
        out = []
        if not role_sent[0]:
            role_sent[0] = True
            out.append(data({"role": "assistant", "content": ""}))
        if isinstance(event, TextEvent):
            out.append(data({"content": event.text}))
        else:
            tail, extra = to_extra(event.result)
            if tail:
                out.append(data({"content": tail}))
            out.append(data({}, "stop", extra))
        return out

    return StreamingResponse(
        _drive(started, render, ["data: [DONE]\n\n"]),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
