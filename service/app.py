"""The FastAPI application: models and index open in the lifespan, errors
become 4xx/503 with a reason, never a stack trace."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from ingest.errors import (
    IndexMismatchError,
    IndexNotReadyError,
    IndexUnavailableError,
    MemoqaError,
    PassageNotFoundError,
)
from service.generate import GenerationError, GeneratorBusy
from ingest.settings import Settings, get_settings
from service.chat import ConversationNotFound, ConversationStore
from service.engine import Engine, build_engine
from service.openai_api import router as openai_router
from service.routes import probes, router

STATIC = Path(__file__).parent / "static"

log = logging.getLogger("memoqa.service")

_STATUS = {
    PassageNotFoundError: 404,
    IndexNotReadyError: 503,
    IndexUnavailableError: 503,
    IndexMismatchError: 503,
    GeneratorBusy: 503,
    GenerationError: 503,
    ConversationNotFound: 404,
}


def create_app(
    settings: Settings | None = None,
    *,
    engine_factory: Callable[[Settings], Engine] = build_engine,
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = engine_factory(settings)
        try:
            app.state.engine.retriever.snapshot()
        except MemoqaError as exc:
            # Serve anyway: /readyz says why, and the index is picked up once ingested.
            log.warning("index not ready: %s", exc)
        yield
        app.state.engine = None

    app = FastAPI(
        title="memoqa",
        version="1",
        summary="Answers questions over policy papers, citing passages and their endnote sources.",
        lifespan=lifespan,
    )
    app.state.engine = None
    app.state.conversations = ConversationStore()
    app.include_router(router)
    app.include_router(openai_router)
    app.include_router(probes)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The chat page for analysts (no build step, no asset from the internet)."""
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request.headers.get("x-request-id", "")[:64] or uuid.uuid4().hex[:16]
        request.state.request_id = rid
        try:
            response = await call_next(request)
        except Exception:  # anything a handler did not turn into a response
            log.exception("unhandled error (request %s)", rid)
            response = JSONResponse(
                {"detail": f"internal error (request id {rid})"}, status_code=500
            )
        response.headers["x-request-id"] = rid
        return response

    @app.exception_handler(MemoqaError)
    async def memoqa_error(request: Request, exc: MemoqaError) -> JSONResponse:
        status = next((s for t, s in _STATUS.items() if isinstance(exc, t)), 400)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return app
