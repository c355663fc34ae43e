"""State that the workers of one service share through a SQLite file:
conversations and per-caller limits. One process alone keeps them in memory
(`service/conversations.py`, `service/api/security.py`); several workers on one
machine point `api.state_path` at one file (`memoqa serve --workers N` does by
default), so a conversation continues on whichever worker takes the next turn
and a caller's limits count every worker's requests.

Every change is one short transaction (`BEGIN IMMEDIATE`: writers queue, no
lost update); times are wall-clock, since the workers share no monotonic clock.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from service.errors import ConversationNotFound, RateLimited
from service.followup import Turn

# An answer slot older than this is taken to belong to a worker that died.
STALE_SLOT_S = 600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, touched REAL NOT NULL, turns TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_touched ON conversations (touched);
CREATE TABLE IF NOT EXISTS buckets (
    caller TEXT PRIMARY KEY, tokens REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS answering (
    slot TEXT PRIMARY KEY, caller TEXT NOT NULL, started REAL NOT NULL);
"""


class SharedState:
    """The SQLite file, with one connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connection().executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


class SharedConversations:
    """`ConversationStore`'s behaviour (bounded history, expiry after idling, a
    cap on how many are kept) over the shared file."""

    def __init__(
        self,
        state: SharedState,
        *,
        max_turns: int = 20,
        ttl_s: float = 1800.0,
        capacity: int = 1000,
    ) -> None:
        self.state = state
        self.max_turns = max_turns
        self.ttl_s = ttl_s
        self.capacity = capacity

    def create(self) -> str:
        cid = secrets.token_urlsafe(12)
        now = time.time()
        with self.state.transaction() as db:
            db.execute("DELETE FROM conversations WHERE touched < ?", (now - self.ttl_s,))
            db.execute("INSERT INTO conversations VALUES (?, ?, '[]')", (cid, now))
            db.execute(
                "DELETE FROM conversations WHERE id IN (SELECT id FROM conversations "
                "ORDER BY touched DESC LIMIT -1 OFFSET ?)",
                (self.capacity,),
            )
        return cid

    def history(self, cid: str) -> list[Turn]:
        now = time.time()
        with self.state.transaction() as db:
            row = db.execute(
                "SELECT turns FROM conversations WHERE id = ? AND touched >= ?",
                (cid, now - self.ttl_s),
            ).fetchone()
            if row is not None:
                db.execute("UPDATE conversations SET touched = ? WHERE id = ?", (now, cid))
        if row is None:
            raise ConversationNotFound(
                f"no conversation '{cid[:40]}' (it may have expired after "
                f"{self.ttl_s / 60:.0f} idle minutes); start a new one without conversation_id"
            )
        return [Turn(t["role"], t["content"]) for t in json.loads(row[0])]

    def add(self, cid: str, *turns: Turn) -> None:
        with self.state.transaction() as db:
            row = db.execute("SELECT turns FROM conversations WHERE id = ?", (cid,)).fetchone()
            if row is None:
                return
            kept = json.loads(row[0]) + [{"role": t.role, "content": t.content} for t in turns]
            db.execute(
                "UPDATE conversations SET turns = ?, touched = ? WHERE id = ?",
                (json.dumps(kept[-self.max_turns :]), time.time(), cid),
            )


class Limits(Protocol):
    """Per-caller limits that several workers share: `SharedLimits` (one
    machine's file) or `service.state_redis.RedisLimits`."""

    def spend(self, caller: str, rate_per_minute: int, burst: int) -> None: ...

    def answering(self, caller: str, limit: int) -> AbstractContextManager[None]: ...


class SharedLimits:
    """Per-caller token buckets and answer slots over the shared file."""

    def __init__(self, state: SharedState) -> None:
        self.state = state

    def spend(self, caller: str, rate_per_minute: int, burst: int) -> None:
        """Spend one request from the caller's bucket, or raise RateLimited."""
        rate = rate_per_minute / 60.0
        now = time.time()
        with self.state.transaction() as db:
            row = db.execute(
                "SELECT tokens, updated FROM buckets WHERE caller = ?", (caller,)
            ).fetchone()
            tokens = (
                float(burst)
                if row is None
                else min(float(burst), row[0] + max(0.0, now - row[1]) * rate)
            )
            admitted = tokens >= 1.0
            left = tokens - 1.0 if admitted else tokens
            db.execute("INSERT OR REPLACE INTO buckets VALUES (?, ?, ?)", (caller, left, now))
        if not admitted:
            wait = (1.0 - tokens) / rate if rate > 0 else 60.0
            raise RateLimited(f"rate limit of {rate_per_minute} requests a minute reached", wait)

    @contextmanager
    def answering(self, caller: str, limit: int) -> Iterator[None]:
        """Hold one of the caller's concurrent-answer slots."""
        slot = uuid.uuid4().hex
        now = time.time()
        with self.state.transaction() as db:
            db.execute("DELETE FROM answering WHERE started < ?", (now - STALE_SLOT_S,))
            (held,) = db.execute(
                "SELECT COUNT(*) FROM answering WHERE caller = ?", (caller,)
            ).fetchone()
            if held < limit:
                db.execute("INSERT INTO answering VALUES (?, ?, ?)", (slot, caller, now))
        if held >= limit:
            raise RateLimited(f"at most {limit} answers at a time per caller", 1.0)
        try:
            yield
        finally:
            with self.state.transaction() as db:
                db.execute("DELETE FROM answering WHERE slot = ?", (slot,))
