"""`GET /v1/search`: retrieval only, the passages most relevant to a query."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from service.api import schemas
from service.api.deps import EngineDep, reader
from service.api.limits import QuestionLimitDep, check_length
from service.api.mapping import search_response
from service.settings import MAX_QUESTION_CEILING

router = APIRouter(prefix="/v1", dependencies=[Depends(reader)])


@router.get("/search", response_model=schemas.SearchResponse, summary="Retrieve passages")
def search(
    engine: EngineDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUESTION_CEILING)],
    limit: QuestionLimitDep,
    k: Annotated[int, Query(ge=1, le=50)] = 10,
    documents: Annotated[
        list[str] | None,
        Query(description="Search these papers only (repeat the parameter); all when unset."),
    ] = None,
) -> schemas.SearchResponse:
    """Passages most relevant to `q`, best first: retrieval only, no answer."""
    check_length(q, limit, ("query", "q"))
    if not q.strip():
        raise HTTPException(
            422,
            detail=[{"loc": ["query", "q"], "msg": "q must not be empty", "type": "value_error"}],
        )
    return search_response(engine, q.strip(), k, documents)
