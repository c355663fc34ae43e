"""Dependencies the routes receive; tests swap them with `app.dependency_overrides`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ingest.errors import IndexNotReadyError
from service.chat import ConversationStore
from service.engine import Engine


def get_engine(request: Request) -> Engine:
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        raise IndexNotReadyError("the service is still starting")
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def get_conversations(request: Request) -> ConversationStore:
    store: ConversationStore = request.app.state.conversations
    return store


ConversationsDep = Annotated[ConversationStore, Depends(get_conversations)]
