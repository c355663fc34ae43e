"""The probes: `/healthz` (the process is up) and `/readyz` (the index is open)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ingest.errors import MemoqaError
from service.api import schemas
from service.api.deps import EngineDep

router = APIRouter()


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
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
