"""`/v1/admin`: the routes that change the index (admin scope)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from service.api.deps import EngineDep, admin

router = APIRouter(prefix="/v1/admin", dependencies=[Depends(admin)])


@router.post("/ingest", summary="Re-ingest the corpus (admin)")
async def admin_ingest(engine: EngineDep, force: bool = False) -> dict[str, Any]:
    """Bring the index in line with the corpus manifest, as `memoqa ingest` does;
    running services pick the new index up without a restart."""
    from ingest.pipeline import run_ingest

    report = await run_in_threadpool(
        run_ingest, engine.settings, embedder=engine.embedder, force=force
    )
    return {
        "changed": report.changed,
        "collection": report.collection,
        "passages": report.passages,
        "embedded": report.embedded,
        "reused": report.reused,
        "seconds": round(report.seconds, 2),
        "documents": [
            {"id": d.id, "status": d.status, "passages": d.passages} for d in report.documents
        ],
        "warnings": report.warnings,
    }
