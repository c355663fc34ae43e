"""Internal results mapped to the public /v1 schemas; the CLI and eval use the
same mappers, so every face of memoqa shows the same fields."""

from __future__ import annotations

from typing import Any

from ingest.index.reader import Snapshot
from ingest.index.records import DocumentRecord, StoredPassage
from service.answer.types import AnswerResult, EndnoteSource
from service.api import schemas
from service.engine import Engine


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
        generation=schemas.Generation.model_validate(result.stats) if result.stats else None,
        unanswered=result.unanswered,
        corrections=result.corrections,
        confidence=result.confidence,
    )


def search_response(
    engine: Engine, q: str, k: int, documents: list[str] | None = None
) -> schemas.SearchResponse:
    result = engine.search(q, k, documents)
    snapshot = engine.retriever.snapshot()
    wanted: dict[str, list[int]] = {}
    for hit in result.hits:
        wanted.setdefault(hit.passage.document_id, []).extend(hit.passage.endnotes)
    snapshot.load_endnotes(wanted)  # one read for every hit's notes
    passages = []
    for hit in result.hits:
        p = hit.passage
        passages.append(schemas.SearchPassage(**_passage_fields(p, snapshot), score=hit.score))
    return schemas.SearchResponse(passages=passages)


def _passage_fields(p: StoredPassage, snapshot: Snapshot) -> dict[str, Any]:
    """What a search hit and a passage's own page both say of a passage."""
    return {
        "passage_id": p.id,
        "document_id": p.document_id,
        "document_title": p.document_title,
        "section": p.section,
        "kind": p.kind,
        "text": p.text,
        "endnotes": _stored_endnotes(snapshot.endnotes(p.document_id, p.endnotes)),
        "endnote_number": p.endnote_number,
    }


def passage_detail(p: StoredPassage, snapshot: Snapshot) -> schemas.PassageDetail:
    return schemas.PassageDetail(
        **_passage_fields(p, snapshot),
        cited_by=list(p.cited_by),
        char_start=p.char_start,
        char_end=p.char_end,
        spans=[(a, b) for a, b in p.spans],
    )


def document_info(d: DocumentRecord) -> schemas.DocumentInfo:
    return schemas.DocumentInfo(
        id=d.id,
        title=d.title,
        author=d.author,
        publisher=d.publisher,
        date=d.date,
        url=d.url,
        passage_count=d.passage_count,
        ingested_at=d.ingested_at,
        parse=schemas.ParseSummary.model_validate(d.summary) if d.summary else None,
    )
