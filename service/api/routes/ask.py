"""The /v1 routes and the health probes."""

from __future__ import annotations

import re
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ingest.errors import MemoqaError, PassageNotFoundError
from ingest.index.store import StoredPassage
from service.api import schemas
from collections.abc import Callable

from service.answer.types import AnswerResult, EndnoteSource
from service.api.security import Guard
from service.api.streaming import answer_stream, first_event, wants_stream
from service.api.deps import CallerDep, ConversationsDep, EngineDep, GuardDep, admin, reader
from service.followup import Turn
from service.engine import Engine

router = APIRouter(prefix="/v1", dependencies=[Depends(reader)])
admin_router = APIRouter(prefix="/v1/admin", dependencies=[Depends(admin)])
probes = APIRouter()

_PASSAGE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _endnote(note: EndnoteSource) -> schemas.Endnote:
    return schemas.Endnote(number=note.number, text=note.text, urls=list(note.urls))


def _stored_endnotes(notes: list[StoredPassage]) -> list[schemas.Endnote]:
    return [
        schemas.Endnote(number=n.endnote_number or 0, text=n.text, urls=list(n.urls)) for n in notes
    ]


def to_response(result: AnswerResult) -> schemas.AskResponse:
    return schemas.AskResponse(
        answer=result.answer,
        answered=result.answered,
        citations=[
            schemas.Citation(
                ref=c.ref,
                passage_id=c.passage.id,
                document_id=c.passage.document_id,
                document_title=c.passage.document_title,
                section=c.passage.section,
                text=c.passage.text,
                quote=c.quote,
                score=c.score,
                endnotes=[_endnote(n) for n in c.endnotes],
            )
            for c in result.citations
        ],
        timings_ms=schemas.Timings(**result.timings_ms),
        generator=result.generator,
        reason=result.reason,
        generation=schemas.Generation(**result.stats) if result.stats else None,
        unanswered=result.unanswered,
        corrections=result.corrections,
        confidence=result.confidence,
    )


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


def _blank(name: str, where: str = "query") -> HTTPException:
    return HTTPException(
        422,
        detail=[{"loc": [where, name], "msg": f"{name} must not be empty", "type": "value_error"}],
    )


@router.post(
    "/ask",
    response_model=schemas.AskResponse,
    summary="Answer a question with citations",
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or an event stream"}},
)
async def ask(
    body: schemas.AskRequest,
    engine: EngineDep,
    guard: GuardDep,
    who: CallerDep,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Answer from the indexed papers; every claim cites a passage and its sources.
    With `"stream": true` (or `Accept: text/event-stream`) the answer streams as
    Server-Sent Events: `token` events, then `citations`, then `done` with the
    whole response."""
    if not wants_stream(body.stream, accept):
        with guard.answering(who):
            result = await run_in_threadpool(engine.ask, body.question, body.top_k)
        return to_response(result)
    release = hold(guard, who)
    cancel = threading.Event()
    try:
        events = engine.ask_events(body.question, body.top_k, None, cancel)
        first = await first_event(events)
    except BaseException:
        release()
        raise
    return answer_stream(events, first, cancel, lambda r: to_response(r).model_dump(), release)


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
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Answer the last user message; follow-ups are resolved against the earlier
    turns (sent by the client, kept by the service under `conversation_id`, or
    both). Citations belong to the message they come with: `[n]` always means
    this response's citation n."""
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
            result = await run_in_threadpool(engine.ask, question, body.top_k, history)
        return remember(result)
    release = hold(guard, who)
    cancel = threading.Event()
    try:
        events = engine.ask_events(question, body.top_k, history, cancel)
        first = await first_event(events)
    except BaseException:
        release()
        raise
    return answer_stream(events, first, cancel, lambda r: remember(r).model_dump(), release)


@router.get("/search", response_model=schemas.SearchResponse, summary="Retrieve passages")
def search(
    engine: EngineDep,
    q: Annotated[str, Query(min_length=1, max_length=schemas.MAX_QUESTION_CHARS)],
    k: Annotated[int, Query(ge=1, le=50)] = 10,
) -> schemas.SearchResponse:
    """Passages most relevant to `q`, best first: retrieval only, no answer."""
    if not q.strip():
        raise _blank("q")
    return search_response(engine, q.strip(), k)


def search_response(engine: Engine, q: str, k: int) -> schemas.SearchResponse:
    result = engine.search(q, k)
    snapshot = engine.retriever.snapshot()
    passages = []
    for hit in result.hits:
        p = hit.passage
        passages.append(
            schemas.SearchPassage(
                passage_id=p.id,
                document_id=p.document_id,
                document_title=p.document_title,
                section=p.section,
                kind=p.kind,
                text=p.text,
                score=hit.score,
                endnotes=_stored_endnotes(snapshot.endnotes(p.document_id, p.endnotes)),
                endnote_number=p.endnote_number,
            )
        )
    return schemas.SearchResponse(passages=passages)


@router.get(
    "/passages/{passage_id}",
    response_model=schemas.PassageDetail,
    summary="One passage",
    responses={404: {"description": "No passage has this id"}},
)
def passage(passage_id: str, engine: EngineDep) -> schemas.PassageDetail:
    """A passage by its stable id, with its sources and where it sits in the source file."""
    if not _PASSAGE_ID_RE.match(passage_id):
        raise PassageNotFoundError(f"no passage with id '{passage_id[:80]}'")
    snapshot = engine.retriever.snapshot()
    p = snapshot.passage(passage_id)
    return schemas.PassageDetail(
        passage_id=p.id,
        document_id=p.document_id,
        document_title=p.document_title,
        section=p.section,
        kind=p.kind,
        text=p.text,
        endnotes=_stored_endnotes(snapshot.endnotes(p.document_id, p.endnotes)),
        endnote_number=p.endnote_number,
        cited_by=list(p.cited_by),
        char_start=p.char_start,
        char_end=p.char_end,
        spans=[(a, b) for a, b in p.spans],
    )


@router.get("/documents", response_model=schemas.DocumentsResponse, summary="Indexed documents")
def documents(engine: EngineDep) -> schemas.DocumentsResponse:
    """The documents in the active index, with their passage counts."""
    snapshot = engine.retriever.snapshot()
    return schemas.DocumentsResponse(
        documents=[
            schemas.DocumentInfo(
                id=d.id,
                title=d.title,
                author=d.author,
                publisher=d.publisher,
                date=d.date,
                url=d.url,
                passage_count=d.passage_count,
                ingested_at=d.ingested_at,
            )
            for d in snapshot.documents.values()
        ]
    )


@probes.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@probes.get(
    "/readyz",
    response_model=schemas.Readiness,
    summary="Readiness",
    responses={503: {"model": schemas.Readiness}},
)
def readyz(engine: EngineDep) -> JSONResponse:
    """200 when the index is open and non-empty; 503 with the reason otherwise."""
    try:
        snapshot = engine.retriever.snapshot()
    except MemoqaError as exc:
        body = schemas.Readiness(ready=False, detail=str(exc))
        return JSONResponse(body.model_dump(), status_code=503)
    body = schemas.Readiness(
        ready=True,
        detail="ready",
        index=snapshot.info.collection,
        passages=snapshot.info.passage_count,
    )
    return JSONResponse(body.model_dump())


@admin_router.post("/ingest", summary="Re-ingest the corpus (admin)")
async def admin_ingest(engine: EngineDep, force: bool = False) -> dict[str, Any]:
    """Bring the index in line with the corpus manifest, as `memoqa ingest` does;
    running services pick the new index up without a restart."""
    from ingest.pipeline import run_ingest

    report = await run_in_threadpool(run_ingest, engine.settings, embedder=engine.embedder, force=force)
    return {
        "changed": report.changed,
        "collection": report.collection,
        "passages": report.passages,
        "embedded": report.embedded,
        "reused": report.reused,
        "seconds": round(report.seconds, 2),
        "documents": [{"id": d.id, "status": d.status, "passages": d.passages} for d in report.documents],
        "warnings": report.warnings,
    }
