"""An OpenAI-compatible face: `POST /v1/chat/completions` (streaming or not) and
`GET /v1/models`, so tools that speak the OpenAI Chat Completions protocol work
unchanged. The answer keeps its `[n]` markers and ends with a "Sources" list;
the citations also travel as a `citations` field, which such clients ignore.
System messages are accepted but cannot change how answers are grounded."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.answer.types import AnswerResult
from service.api.deps import CallerDep, EngineDep, GuardDep, reader
from service.api.limits import QuestionLimitDep, check_length
from service.api.mapping import to_response
from service.api.schemas import MAX_CHAT_MESSAGES
from service.api.streaming import openai_stream, start_answer
from service.followup import Turn

router = APIRouter(prefix="/v1", dependencies=[Depends(reader)])
MODEL_ID = "memoqa"


class ContentPart(BaseModel):
    type: str
    text: str | None = None


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    # Sampling options (temperature, max_tokens, ...) are accepted and ignored:
    # answers are grounded and checked the same way whatever the client asks.
    model_config = ConfigDict(extra="allow")

    model: str = MODEL_ID
    messages: Annotated[list[OpenAIMessage], Field(min_length=1, max_length=MAX_CHAT_MESSAGES)]
    stream: bool = False

    @field_validator("messages")
    @classmethod
    def _has_question(cls, value: list[OpenAIMessage]) -> list[OpenAIMessage]:
        users = [m for m in value if m.role == "user"]
        if not users or not users[-1].text().strip():
            raise ValueError("the conversation needs a user message with a question")
        return value


def sources_block(result: AnswerResult) -> str:
    if not result.citations:
        return ""
    lines = ["", "", "Sources:"]
    for c in result.citations:
        where = c.passage.section or "front matter"
        lines.append(f"[{c.ref}] {c.passage.document_title} — {where} ({c.passage.id})")
        for note in c.endnotes:
            lines.append(f"    note {note.number}: {note.text}")
    return "\n".join(lines)


def _conversation(body: ChatCompletionRequest) -> tuple[str, list[Turn]]:
    last_user = max(i for i, m in enumerate(body.messages) if m.role == "user")
    history = [
        Turn(m.role, m.text())
        for m in body.messages[:last_user]
        if m.role in ("user", "assistant") and m.text().strip()
    ]
    return body.messages[last_user].text().strip(), history


@router.get("/models", summary="Models (OpenAI-compatible)")
def models() -> dict[str, Any]:
    """The one model this service offers: answers grounded in the indexed papers."""
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "memoqa"}],
    }


@router.post("/chat/completions", summary="Chat completions (OpenAI-compatible)")
async def chat_completions(
    body: ChatCompletionRequest,
    engine: EngineDep,
    guard: GuardDep,
    who: CallerDep,
    limit: QuestionLimitDep,
) -> Any:
    """Answer the last user message of an OpenAI-style conversation."""
    question, history = _conversation(body)
    check_length(question, limit, ("body", "messages"))
    envelope = _Envelope(f"chatcmpl-{secrets.token_hex(12)}", int(time.time()))
    if not body.stream:
        with guard.answering(who):
            result = await run_in_threadpool(engine.ask, question, None, history)
        return envelope.completion(result)
    started = await start_answer(engine, guard, who, question, None, history)
    return openai_stream(started, envelope.chunk, envelope.tail)


@dataclass(frozen=True)
class _Envelope:
    """The OpenAI shapes one completion is sent in, whole or as chunks."""

    completion_id: str
    created: int

    def completion(self, result: AnswerResult) -> dict[str, Any]:
        content = result.answer + sources_block(result)
        stats = result.stats or {}
        prompt = int(stats.get("prompt_tokens", 0))
        completion = int(stats.get("completion_tokens", 0))
        return {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": MODEL_ID,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": int(
                    stats.get("prompt_tokens", 0) + stats.get("completion_tokens", 0)
                ),
            },
            **_extra(result),
        }

    def chunk(
        self, delta: dict[str, Any], finish: str | None, more: dict[str, Any] | None
    ) -> dict[str, Any]:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **(more or {}),
        }

    def tail(self, result: AnswerResult) -> tuple[str, dict[str, Any]]:
        # A refusal was never streamed as tokens: send its text now.
        text = sources_block(result) if result.answered else result.answer
        return text, _extra(result)


def _extra(result: AnswerResult) -> dict[str, Any]:
    """The citations, and memoqa's own response, beside the OpenAI fields."""
    response = to_response(result).model_dump()
    return {"citations": response["citations"], "memoqa": response}
