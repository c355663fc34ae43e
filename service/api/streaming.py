"""Server-Sent Events for answers: the answer's verified pieces as they are
made, then the citations, then a final event with the whole response.

The answer is produced in a worker thread; when the client disconnects, the
generation is cancelled within a token.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from service.answer.types import AnswerResult, DoneEvent, TextEvent

Events = Iterator[TextEvent | DoneEvent]


def wants_stream(flag: bool, accept: str | None) -> bool:
    return flag or "text/event-stream" in (accept or "")


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def first_event(events: Events) -> TextEvent | DoneEvent:
    """Run the answer up to its first event before the response starts, so
    that a busy model or a missing index still gets a proper status code."""
    return await run_in_threadpool(next, events)


async def _drive(
    events: Events,
    first: TextEvent | DoneEvent,
    cancel: threading.Event,
    render: Callable[[TextEvent | DoneEvent], list[str]],
    end: list[str],
    on_close: Callable[[], None] | None = None,
) -> AsyncIterator[str]:
    try:
        event: TextEvent | DoneEvent | None = first
        while event is not None:
            if not (isinstance(event, TextEvent) and not event.text):
                for chunk in render(event):
                    yield chunk
            if isinstance(event, DoneEvent):
                break
            event = await run_in_threadpool(next, events, None)
        for chunk in end:
            yield chunk
    finally:
        cancel.set()  # a disconnected client stops the model
        if on_close is not None:
            on_close()


def answer_stream(
    events: Events,
    first: TextEvent | DoneEvent,
    cancel: threading.Event,
    to_body: Callable[[AnswerResult], dict[str, Any]],
    on_close: Callable[[], None] | None = None,
) -> StreamingResponse:
    """memoqa's own event stream: `token`, `citations`, `done`."""

    def render(event: TextEvent | DoneEvent) -> list[str]:
        if isinstance(event, TextEvent):
            return [sse("token", {"text": event.text})]
        body = to_body(event.result)
        return [sse("citations", {"citations": body["citations"]}), sse("done", body)]

    return StreamingResponse(
        _drive(events, first, cancel, render, [], on_close),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def openai_stream(
    events: Events,
    first: TextEvent | DoneEvent,
    cancel: threading.Event,
    chunk: Callable[[dict[str, Any], str | None, dict[str, Any] | None], dict[str, Any]],
    to_extra: Callable[[AnswerResult], tuple[str, dict[str, Any]]],
    on_close: Callable[[], None] | None = None,
) -> StreamingResponse:
    """The OpenAI chat-completions chunk stream, ending with `data: [DONE]`."""
    started = [False]

    def render(event: TextEvent | DoneEvent) -> list[str]:
        out = []
        if not started[0]:
            started[0] = True
            out.append(f"data: {json.dumps(chunk({'role': 'assistant', 'content': ''}, None, None))}\n\n")
        if isinstance(event, TextEvent):
            out.append(f"data: {json.dumps(chunk({'content': event.text}, None, None), ensure_ascii=False)}\n\n")
        else:
            tail, extra = to_extra(event.result)
            if tail:
                out.append(f"data: {json.dumps(chunk({'content': tail}, None, None), ensure_ascii=False)}\n\n")
            out.append(f"data: {json.dumps(chunk({}, 'stop', extra), ensure_ascii=False)}\n\n")
        return out

    return StreamingResponse(
        _drive(events, first, cancel, render, ["data: [DONE]\n\n"], on_close),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
