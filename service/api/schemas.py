"""The public /v1 HTTP contract: request and response bodies.

Fields may be added; none may be removed or change meaning.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from service.settings import MAX_QUESTION_CEILING

MAX_CHAT_MESSAGES = 40


def question_problem(text: str) -> str | None:
    """What makes a question unaskable (blank, or control characters), or None.
    Its length is checked against the settings by the route (`service.api.limits`)."""
    if not text.strip():
        return "must not be empty or whitespace"
    if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        return "must not contain control characters"
    return None


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: StrictStr = Field(
        min_length=1,
        max_length=MAX_QUESTION_CEILING,
        description="The question, in natural language (1 to `api.max_question_chars` "
        "characters, 2,000 by default).",
        examples=["How many troops took part in Peace Mission 2021?"],
    )
    top_k: StrictInt | None = Field(
        default=None, ge=1, le=20, description="Passages to retrieve for the answer (1..20)."
    )
    stream: StrictBool = Field(
        default=False,
        description="Stream the answer as Server-Sent Events (also: Accept: text/event-stream).",
    )

    documents: list[StrictStr] | None = Field(
        default=None,
        max_length=100,
        description="Answer from these papers only (ids from /v1/documents); all when unset.",
    )

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        problem = question_problem(value)
        if problem:
            raise ValueError(f"question {problem}")
        return value.strip()


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: StrictStr = Field(min_length=1, max_length=MAX_QUESTION_CEILING)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] = Field(
        min_length=1,
        max_length=MAX_CHAT_MESSAGES,
        description="The conversation so far, oldest first; the last message is the user's "
        "question.",
    )
    top_k: StrictInt | None = Field(
        default=None, ge=1, le=20, description="Passages to retrieve (1..20)."
    )
    stream: StrictBool = Field(
        default=False, description="Stream the answer as Server-Sent Events."
    )
    conversation_id: StrictStr | None = Field(
        default=None,
        max_length=64,
        description="A conversation the service keeps: send only the new turn(s); the "
        "earlier ones are taken from it. Returned by every /v1/chat response.",
    )

    documents: list[StrictStr] | None = Field(
        default=None,
        max_length=100,
        description="Answer from these papers only (ids from /v1/documents); all when unset.",
    )

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, value: list[ChatMessage]) -> list[ChatMessage]:
        if value[-1].role != "user":
            raise ValueError("the last message must be the user's question")
        problem = question_problem(value[-1].content)
        if problem:
            raise ValueError(f"the question {problem}")
        return value


class Endnote(BaseModel):
    number: int = Field(description="The endnote's number in its document.")
    text: str = Field(description="The endnote as printed, markdown removed.")
    urls: list[str] = Field(description="Links in the endnote.")


class Citation(BaseModel):
    ref: int = Field(description="The marker [ref] in the answer; runs 1..n in order of first use.")
    passage_id: str
    document_id: str
    document_title: str
    section: str = Field(description="Heading path of the passage, ' > ' separated.")
    text: str = Field(description="The passage as stored (endnote markers as superscripts).")
    quote: str | None = Field(description="The sentence(s) of the passage that support the claim.")
    score: float = Field(description="Relevance of the passage to the question, 0..1.")
    endnotes: list[Endnote] = Field(description="The sources the passage cites.")


class Timings(BaseModel):
    retrieve: float
    answer: float
    total: float


class Generation(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    ttft_ms: float = Field(description="Time to the first generated token.")
    generate_ms: float = Field(description="Time from the request to the model to its last token.")
    queue_ms: float = Field(description="Time spent waiting for the model.")


class AskResponse(BaseModel):
    answer: str = Field(
        description="The answer; each claim carries markers [n] matching citations."
    )
    answered: bool = Field(description="False when the corpus does not support an answer.")
    citations: list[Citation]
    timings_ms: Timings
    generator: str = Field(default="extractive", description="Which generator wrote the answer.")
    reason: str | None = Field(default=None, description="Why the question was not answered.")
    generation: Generation | None = Field(
        default=None, description="Language-model figures, when a model wrote the answer."
    )
    conversation_id: str | None = Field(
        default=None, description="For /v1/chat: the conversation this turn belongs to."
    )
    unanswered: list[str] = Field(
        default_factory=list,
        description="Parts of the question the papers do not answer, as the service read them "
        "(the answer covers the other parts and says which it cannot). Empty when every part is "
        "answered, and when the whole question is refused (see answered and reason).",
    )
    corrections: list[str] = Field(
        default_factory=list,
        description="Assumptions in the question that the papers contradict, each with why; the "
        "answer then gives what the papers say instead, cited, rather than answering as asked.",
    )
    confidence: float | None = Field(
        default=None,
        description="How surely the answer's sentences answer the question as asked, 0..1: the "
        "language model's least sure verdict over the parts it answers (for a refusal, its best "
        "verdict on sentences it did not accept), when a model checked it.",
    )


class SearchPassage(BaseModel):
    passage_id: str
    document_id: str
    document_title: str
    section: str
    kind: str = Field(
        description="paragraph, list, figure, front_matter, abbreviations or endnote."
    )
    text: str
    score: float = Field(description="Relevance to the query, 0..1; results are best first.")
    endnotes: list[Endnote]
    endnote_number: int | None = Field(
        default=None, description="For an endnote passage, its number."
    )


class SearchResponse(BaseModel):
    passages: list[SearchPassage]


class PassageDetail(BaseModel):
    passage_id: str
    document_id: str
    document_title: str
    section: str
    kind: str
    text: str
    endnotes: list[Endnote]
    endnote_number: int | None
    cited_by: list[str] = Field(description="For an endnote, the passages that cite it.")
    char_start: int = Field(
        description="Offset of the passage's first character in the source file."
    )
    char_end: int = Field(description="Offset just past its last character.")
    spans: list[tuple[int, int]] = Field(
        description="Exact source ranges (a repaired page break gives several)."
    )


class ParseSummary(BaseModel):
    """What was read from a paper: check it before trusting the answers."""

    sections: list[str] = Field(description="The top-level headings, in order.")
    passages: int
    notes: int = Field(description="Notes (endnotes or footnotes) found.")
    markers: int = Field(description="Distinct note numbers the text cites.")
    markers_without_note: list[int]
    notes_without_marker: list[int]
    warnings: list[str]


class DocumentInfo(BaseModel):
    id: str
    title: str
    author: str | None
    publisher: str | None
    date: str | None
    url: str | None
    passage_count: int
    ingested_at: str
    parse: ParseSummary | None = Field(
        default=None, description="What was read from the file (absent for older indexes)."
    )


class DocumentsResponse(BaseModel):
    documents: list[DocumentInfo]


class Readiness(BaseModel):
    ready: bool
    detail: str
    index: str | None = None
    passages: int | None = None
