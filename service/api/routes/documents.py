"""`GET /v1/documents`: the papers in the active index."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.api import schemas
from service.api.deps import EngineDep, reader
from service.api.mapping import document_info

router = APIRouter(prefix="/v1", dependencies=[Depends(reader)])


@router.get("/documents", response_model=schemas.DocumentsResponse, summary="Indexed documents")
def documents(engine: EngineDep) -> schemas.DocumentsResponse:
    """The documents in the active index, with their passage counts."""
    snapshot = engine.retriever.snapshot()
    return schemas.DocumentsResponse(
        documents=[document_info(d) for d in snapshot.documents.values()]
    )
