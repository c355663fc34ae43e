"""Dependencies the routes receive; tests swap them with `app.dependency_overrides`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from ingest.errors import IndexNotReadyError
from service.api.security import ApiKey, Guard
from service.conversations import Conversations
from service.engine import Engine


def get_engine(request: Request) -> Engine:
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        raise IndexNotReadyError("the service is still starting")
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def get_conversations(request: Request) -> Conversations:
    store: Conversations = request.app.state.conversations
    return store


ConversationsDep = Annotated[Conversations, Depends(get_conversations)]


def get_guard(request: Request) -> Guard:
    guard: Guard = request.app.state.guard
    return guard


GuardDep = Annotated[Guard, Depends(get_guard)]


def caller(
    request: Request, guard: GuardDep, authorization: Annotated[str | None, Header()] = None
) -> str:
    """Authenticate (when keys are configured) and spend one request of the
    caller's rate limit; the caller is the key's name, or the client address."""
    key = guard.authenticate(authorization)
    request.state.key = key
    name = key.name if key else f"ip:{request.client.host if request.client else 'unknown'}"
    request.state.caller = name
    guard.admit(name)
    return name


def reader(request: Request, guard: GuardDep, who: Annotated[str, Depends(caller)]) -> str:
    key: ApiKey | None = request.state.key
    guard.require(key, "read")
    return who


def admin(request: Request, guard: GuardDep, who: Annotated[str, Depends(caller)]) -> str:
    key: ApiKey | None = request.state.key
    guard.require(key, "admin")
    return who


CallerDep = Annotated[str, Depends(reader)]
