"""`memoqa serve`: the HTTP API, loopback-only until keys exist."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from ingest.errors import MemoqaError
from service.cli.app import app, err, fail, settings_with
from service.settings import Settings

if TYPE_CHECKING:
    from service.api.security import ApiKey


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (each loads its own models).")
    ] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from service.api.app import configure_logging, create_app
    from service.engine import preflight

    settings = settings_with(api={"host": host, "port": port})
    keys = _check_keys(settings)

    try:
        preflight(settings)
    except MemoqaError as exc:
        raise fail(str(exc)) from exc
    if not keys:
        err.print(
            "memoqa: no API keys configured: serving on loopback only, without authentication"
        )
    err.print(f"memoqa: serving on http://{settings.api.host}:{settings.api.port} (docs at /docs)")
    configure_logging()
    if workers > 1:
        # Each worker builds the app from the same environment; point them at one
        # Chroma server (MEMOQA_INDEX__CHROMA_HOST) or they share an embedded folder.
        # Conversations and limits go to one file they all use.
        if settings.api.state_path is None and settings.api.state_url is None:
            state = settings.index.lock_path.parent / "state.sqlite"
            os.environ["MEMOQA_API__STATE_PATH"] = str(state)
        uvicorn.run(
            "service.api.app:app_from_env",
            factory=True,
            host=settings.api.host,
            port=settings.api.port,
            workers=workers,
            log_level="warning",
            access_log=False,
        )
        return
    try:
        app_ = create_app(settings)
    except MemoqaError as exc:
        raise fail(str(exc)) from exc
    uvicorn.run(
        app_,
        host=settings.api.host,
        port=settings.api.port,
        log_level="warning",
        access_log=False,
    )


def _check_keys(settings: Settings) -> list[ApiKey]:
    """The configured API keys; with none, only a loopback interface may be served."""
    from service.api.security import LOOPBACK, load_keys

    try:
        keys = load_keys(settings.security.keys_file, settings.security.keys)
    except MemoqaError as exc:
        raise fail(str(exc), 2) from exc
    if not keys and settings.api.host not in LOOPBACK:
        raise fail(
            f"no API keys are configured, so memoqa serves only on loopback, not on "
            f"{settings.api.host}; create a key with `memoqa keys create NAME` and set "
            "MEMOQA_SECURITY__KEYS_FILE",
            2,
        )
    return keys
