"""The HTTP routes, one module per resource; `ROUTERS` in the order they are mounted."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.routes import admin, ask, chat, documents, health, openai, passages, search

ROUTERS: tuple[APIRouter, ...] = (
    ask.router,
    chat.router,
    search.router,
    passages.router,
    documents.router,
    openai.router,
    admin.router,
    health.router,
)
