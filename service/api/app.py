"""The FastAPI application: models and index open in the lifespan, errors
become 4xx/503 with a reason (never a stack trace), every request is logged as
one JSON line with its request id."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from ingest.corpus import MAX_FILE_BYTES
from ingest.errors import (
    IndexMismatchError,
    IndexNotReadyError,
    IndexUnavailableError,
    MemoqaError,
    PassageNotFoundError,
)
from service.api.routes import ROUTERS
from service.api.security import BodyLimit, Guard, load_keys, retry_after_header
from service.conversations import Conversations, ConversationStore
from service.engine import Engine, build_engine
from service.errors import (
    AuthError,
    ConversationNotFound,
    DocumentNotFoundError,
    ForbiddenError,
    GenerationError,
    GeneratorBusy,
    RateLimited,
    StateUnavailableError,
)
from service.settings import Settings, get_settings
from service.state import Limits, SharedConversations, SharedLimits, SharedState

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("memoqa.service")

_STATUS = {
    PassageNotFoundError: 404,
    ConversationNotFound: 404,
    DocumentNotFoundError: 404,
    AuthError: 401,
    ForbiddenError: 403,
    RateLimited: 429,
    IndexNotReadyError: 503,
    IndexUnavailableError: 503,
    IndexMismatchError: 503,
    GeneratorBusy: 503,
    StateUnavailableError: 503,
    GenerationError: 503,
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; no traceback (only the exception's type)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[0] is not None:
            data["error"] = record.exc_info[0].__name__
        return json.dumps(data, ensure_ascii=False)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("memoqa")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def create_app(
    settings: Settings | None = None,
    *,
    engine_factory: Callable[[Settings], Engine] = build_engine,
) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="memoqa",
        version="1",
        summary="Answers questions over policy papers, citing passages and their endnote sources.",
        lifespan=_lifespan(settings, engine_factory),
    )
    app.state.engine = None
    app.state.settings = settings
    app.state.conversations, limits = _shared_state(settings)
    app.state.guard = _guard(settings, limits)
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The chat page for analysts (no build step, no asset from the internet)."""
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.middleware("http")(_request_log)
    app.exception_handler(MemoqaError)(_memoqa_error)
    app.exception_handler(httpx.TransportError)(_store_unreachable)
    # An upload may carry a few papers of up to the corpus's file limit each.
    uploads = {"/v1/admin/documents": 4 * MAX_FILE_BYTES}
    app.add_middleware(BodyLimit, max_bytes=settings.security.max_body_bytes, uploads=uploads)
    return app


def _shared_state(settings: Settings) -> tuple[Conversations, Limits | None]:
    """Where conversations and limits live: Redis (workers on several machines),
    a SQLite file (the workers of one machine) or this process."""
    if settings.api.state_url:
        from service.state_redis import RedisConversations, RedisLimits, RedisState

        redis_state = RedisState(settings.api.state_url)
        return RedisConversations(redis_state), RedisLimits(redis_state)
    if settings.api.state_path:
        state = SharedState(settings.api.state_path)
        return SharedConversations(state), SharedLimits(state)
    return ConversationStore(), None


def _guard(settings: Settings, shared: Limits | None) -> Guard:
    security = settings.security
    return Guard(
        load_keys(security.keys_file, security.keys),
        rate_per_minute=security.rate_per_minute,
        burst=security.burst,
        limit_loopback=security.limit_loopback,
        concurrent_answers=security.concurrent_answers,
        shared=shared,
    )


def _lifespan(
    settings: Settings, engine_factory: Callable[[Settings], Engine]
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A missing model or embedder fails here, at start, not at the first request.
        app.state.engine = engine_factory(settings)
        try:
            app.state.engine.retriever.snapshot()
        except MemoqaError as exc:
            # Serve anyway: /readyz says why, and the index is picked up once ingested.
            log.warning("index not ready", extra={"fields": {"reason": str(exc)}})
        yield
        app.state.engine = None

    return lifespan


async def _request_log(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Every request logged as one JSON line with its request id (echoed in
    `x-request-id`); an error no handler turned into a response becomes a 500
    that names the id, never a stack trace."""
    rid = request.headers.get("x-request-id", "")[:64]
    if not rid.replace("-", "").isalnum():
        rid = uuid.uuid4().hex[:16]
    request.state.request_id = rid
    started = time.perf_counter()
    try:
        response = await call_next(request)
    except Exception:  # anything a handler did not turn into a response
        log.error("unhandled error", exc_info=True, extra={"fields": {"request_id": rid}})
        response = JSONResponse({"detail": f"internal error (request id {rid})"}, status_code=500)
    response.headers["x-request-id"] = rid
    log.info(
        "request",
        extra={
            "fields": {
                "request_id": rid,
                "method": request.method,
                "path": request.url.path,
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 1),
                "caller": getattr(request.state, "caller", None),
            }
        },
    )
    return response


async def _memoqa_error(request: Request, exc: Exception) -> JSONResponse:
    status = next((s for t, s in _STATUS.items() if isinstance(exc, t)), 400)
    headers = {}
    if isinstance(exc, RateLimited):
        headers = retry_after_header(exc)
    elif isinstance(exc, AuthError):
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(exc, GeneratorBusy):
        headers = {"Retry-After": "5"}
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


async def _store_unreachable(request: Request, exc: Exception) -> JSONResponse:
    # The Chroma server went away mid-request: not ready, not a server bug.
    engine = getattr(request.app.state, "engine", None)
    if engine is not None:
        engine.index.invalidate()
    return JSONResponse(
        {"detail": "the index store is unreachable; retry shortly"},
        status_code=503,
        headers={"Retry-After": "2"},
    )


def app_from_env() -> FastAPI:
    """For `uvicorn --factory service.api.app:app_from_env` (several workers)."""
    configure_logging()
    return create_app()
