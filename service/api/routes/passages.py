"""`GET /v1/passages/{id}`: one passage by its stable id."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends

from ingest.errors import PassageNotFoundError
from service.api import schemas
from service.api.deps import EngineDep, reader
from service.api.mapping import passage_detail

router = APIRouter(prefix="/v1", dependencies=[Depends(reader)])

_PASSAGE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


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
    return passage_detail(snapshot.passage(passage_id), snapshot)
