"""Conversations the service keeps for clients that send only their new turn:
bounded history, expiry after idling, and a cap on how many are kept."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

from service.errors import ConversationNotFound
from service.followup import Turn


class Conversations(Protocol):
    """Where conversations are kept: in the process (`ConversationStore`), in a
    file the workers of one machine share (`service.state.SharedConversations`)
    or in Redis (`service.state_redis.RedisConversations`)."""

    def create(self) -> str: ...

    def history(self, cid: str) -> list[Turn]: ...

    def add(self, cid: str, *turns: Turn) -> None: ...


@dataclass
class _Conversation:
    turns: list[Turn] = field(default_factory=list)
    touched: float = field(default_factory=time.monotonic)


class ConversationStore:
    def __init__(self, *, max_turns: int = 20, ttl_s: float = 1800.0, capacity: int = 1000) -> None:
        self.max_turns = max_turns
        self.ttl_s = ttl_s
        self.capacity = capacity
        self._items: OrderedDict[str, _Conversation] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        for cid in [c for c, conv in self._items.items() if now - conv.touched > self.ttl_s]:
            del self._items[cid]

    def create(self) -> str:
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            cid = secrets.token_urlsafe(12)
            self._items[cid] = _Conversation(touched=now)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)  # the least recently used goes
            return cid

    def history(self, cid: str) -> list[Turn]:
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            conv = self._items.get(cid)
            if conv is None:
                raise ConversationNotFound(
                    f"no conversation '{cid[:40]}' (it may have expired after "
                    f"{self.ttl_s / 60:.0f} idle minutes); start a new one without conversation_id"
                )
            conv.touched = now
            self._items.move_to_end(cid)
            return list(conv.turns)

    def add(self, cid: str, *turns: Turn) -> None:
        with self._lock:
            conv = self._items.get(cid)
            if conv is None:
                return
            conv.turns.extend(turns)
            del conv.turns[: max(0, len(conv.turns) - self.max_turns)]
            conv.touched = time.monotonic()
