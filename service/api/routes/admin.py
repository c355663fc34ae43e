"""`/v1/admin`: the routes that change the index (admin scope)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ingest.corpus import EXTENSIONS, MAX_FILE_BYTES
from ingest.errors import CorpusError
from ingest.pipeline import IngestReport
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
    return _report(report)


def _report(report: IngestReport) -> dict[str, Any]:
    return {
        "changed": report.changed,
        "collection": report.collection,
        "passages": report.passages,
        "embedded": report.embedded,
        "reused": report.reused,
        "seconds": round(report.seconds, 2),
        "documents": [
            {
                "id": d.id,
                "status": d.status,
                "passages": d.passages,
                **({"parse": d.summary.to_dict()} if d.summary else {}),
            }
            for d in report.documents
        ],
        "warnings": report.warnings,
    }


@router.post("/documents", summary="Add papers (admin)", status_code=201)
async def add_documents(
    engine: EngineDep,
    files: Annotated[list[UploadFile], File(description="PDF, .docx, HTML, markdown or text.")],
    title: Annotated[str | None, Form()] = None,
    author: Annotated[str | None, Form()] = None,
    publisher: Annotated[str | None, Form()] = None,
    date: Annotated[str | None, Form()] = None,
    url: Annotated[str | None, Form()] = None,
    id: Annotated[str | None, Form()] = None,
    dry_run: Annotated[bool, Form(description="Read the files and report; add nothing.")] = False,
) -> Any:
    """Add papers as `memoqa add` does, all or none: each is read in its format,
    copied into the corpus with its manifest entry, and indexed; running services
    answer from them without a restart. Each document's `parse` tells what was
    read (sections, passages, notes, markers without a note, notes without a
    marker, warnings). With `dry_run`, the files are read and their parse
    returned (200), and nothing is added. A bad file is a 400 naming it."""
    from ingest.library import NewPaper, add_papers
    from ingest.summary import inspect_file

    if len(files) > 1 and (id or title):
        raise CorpusError("id and title name one paper: upload the files one at a time")
    with tempfile.TemporaryDirectory(prefix="memoqa-upload-") as folder:
        papers = []
        for i, upload in enumerate(files):
            path = Path(folder) / str(i) / _safe_name(upload.filename or "")
            path.parent.mkdir()
            await _save(upload, path)
            papers.append(NewPaper(path, id, title, author, publisher, date, url))
        if dry_run:
            found = [
                await run_in_threadpool(inspect_file, p.path, engine.settings.chunking)
                for p in papers
            ]
            return JSONResponse(
                {
                    "dry_run": True,
                    "papers": [
                        {**i.to_dict(), "file": upload.filename}
                        for i, upload in zip(found, files, strict=True)
                    ],
                }
            )
        change = await run_in_threadpool(
            add_papers, engine.settings, papers, embedder=engine.embedder
        )
    engine.index.invalidate()
    return {
        "added": [m.model_dump(exclude_none=True) for m in change.added],
        **(_report(change.report) if change.report else {}),
    }


@router.delete("/documents/{document_id}", summary="Remove a paper (admin)")
async def remove_document(engine: EngineDep, document_id: str) -> dict[str, Any]:
    """Take a paper out of the corpus and the index, as `memoqa remove` does."""
    from ingest.library import remove_paper

    change = await run_in_threadpool(
        remove_paper, engine.settings, document_id, embedder=engine.embedder
    )
    engine.index.invalidate()
    return {"removed": change.removed, **(_report(change.report) if change.report else {})}


def _safe_name(name: str) -> str:
    """The upload's own file name without any folder, refused when its format is unknown."""
    base = re.sub(r"[^\w.-]+", "-", Path(name.replace("\\", "/")).name).strip(".-")
    if not base or Path(base).suffix.lower() not in EXTENSIONS:
        known = ", ".join(sorted(EXTENSIONS))
        raise CorpusError(f"{name or 'the upload'}: unknown format (known: {known})")
    return base


async def _save(upload: UploadFile, path: Path) -> None:
    """The upload written to `path`, refused past the file size limit."""
    size = 0
    with path.open("wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise CorpusError(
                    f"{upload.filename}: over the {MAX_FILE_BYTES:,}-byte limit for one paper"
                )
            out.write(chunk)
