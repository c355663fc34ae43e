"""Conversations and per-caller limits in Redis, for workers on several
machines: the same behaviour as the SQLite file of `service/state.py`, which
serves the workers of one machine.

Every change is atomic in Redis (a Lua script or a MULTI block) and every time
is Redis's own clock, so machines whose clocks disagree still share one bucket.
Keys start with a prefix (`memoqa:` by default), so several deployments can
share a server.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from service.errors import ConversationNotFound, RateLimited, StateUnavailableError
from service.followup import Turn
from service.state import STALE_SLOT_S

# Spend one request from a token bucket: KEYS[1] the bucket; ARGV rate per
# second, burst, ttl. Returns {admitted, tokens left or held} as strings.
_SPEND = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1e6
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = burst
if held[1] then
  tokens = math.min(burst, tonumber(held[1]) + math.max(0, t - tonumber(held[2])) * rate)
end
local admitted = 0
if tokens >= 1 then
  tokens = tokens - 1
  admitted = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(t))
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {admitted, tostring(tokens)}
"""

# Take an answer slot: KEYS[1] the caller's slots; ARGV slot id, limit, stale
# seconds. Slots older than that belonged to a worker that died.
_TAKE_SLOT = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1e6
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t - tonumber(ARGV[3]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], t, ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])))
return 1
"""

# Append turns to a conversation that still exists, keep the last max_turns,
# and touch it: KEYS[1] its turns, KEYS[2] the index by last use; ARGV ttl in
# milliseconds, max turns, id, then the turns as JSON. A new conversation holds
# one empty placeholder (Redis keeps no empty list); its first turns replace it.
_ADD_TURNS = """
if redis.call('EXISTS', KEYS[1]) == 0 or #ARGV < 4 then
  return 0
end
redis.call('LREM', KEYS[1], 1, '')
for i = 4, #ARGV do
  redis.call('RPUSH', KEYS[1], ARGV[i])
end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local now = redis.call('TIME')
redis.call('ZADD', KEYS[2], tonumber(now[1]) + tonumber(now[2]) / 1e6, ARGV[3])
return 1
"""

# Read a conversation's turns and, if it exists, touch it: KEYS[1] its turns,
# KEYS[2] the index by last use; ARGV ttl in milliseconds, id.
_READ_TURNS = """
local turns = redis.call('LRANGE', KEYS[1], 0, -1)
if #turns > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  local now = redis.call('TIME')
  redis.call('ZADD', KEYS[2], tonumber(now[1]) + tonumber(now[2]) / 1e6, ARGV[2])
end
return turns
"""


class RedisState:
    """A connection pool to the Redis server at `url` (redis://host:port/db)."""

    def __init__(self, url: str, prefix: str = "memoqa:") -> None:
        import redis

        self.url = url
        self.prefix = prefix
        try:
            self.client: Any = redis.Redis.from_url(
                url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
            )
        except ValueError as exc:
            raise StateUnavailableError(f"bad state store URL '{url}': {exc}") from exc
        self._spend = self.client.register_script(_SPEND)
        self._take_slot = self.client.register_script(_TAKE_SLOT)
        self._add_turns = self.client.register_script(_ADD_TURNS)
        self._read_turns = self.client.register_script(_READ_TURNS)

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @contextmanager
    def reachable(self) -> Iterator[None]:
        """Redis errors as a 503 with the reason, never a stack trace."""
        import redis

        try:
            yield
        except redis.RedisError as exc:
            raise StateUnavailableError(
                f"the shared state store ({self.url}) is unreachable: {exc}"
            ) from exc


class RedisConversations:
    """`ConversationStore`'s behaviour (bounded history, expiry after idling, a
    cap on how many are kept) over Redis: a list of turns per conversation that
    expires after `ttl_s` idle, and a sorted set of ids by last use for the cap."""

    def __init__(
        self,
        state: RedisState,
        *,
        max_turns: int = 20,
        ttl_s: float = 1800.0,
        capacity: int = 1000,
    ) -> None:
        self.state = state
        self.max_turns = max_turns
        self.ttl_s = ttl_s
        self.capacity = capacity
        self._index = state.key("conversations")

    def _turns_key(self, cid: str) -> str:
        return self.state.key("conversation", cid)

    def _ttl_ms(self) -> int:
        # Redis refuses an expiry of 0: a conversation that may not idle at all
        # lives a millisecond.
        return max(1, int(self.ttl_s * 1000))

    def create(self) -> str:
        cid = secrets.token_urlsafe(12)
        client = self.state.client
        with self.state.reachable():
            (seconds, micros) = client.time()
            now = seconds + micros / 1e6
            pipe = client.pipeline(transaction=True)
            # Redis keeps no empty list: a new conversation is one empty
            # placeholder, which history() leaves out and the first turns replace.
            pipe.rpush(self._turns_key(cid), "")
            pipe.pexpire(self._turns_key(cid), self._ttl_ms())
            pipe.zadd(self._index, {cid: now})
            pipe.zremrangebyscore(self._index, "-inf", now - self.ttl_s)
            pipe.execute()
            excess = client.zcard(self._index) - self.capacity
            if excess > 0:
                oldest = [m.decode() for m, _ in client.zpopmin(self._index, excess)]
                client.delete(*(self._turns_key(old) for old in oldest))
        return cid

    def history(self, cid: str) -> list[Turn]:
        with self.state.reachable():
            raw = self.state._read_turns(
                keys=[self._turns_key(cid), self._index], args=[self._ttl_ms(), cid]
            )
        if not raw:
            raise ConversationNotFound(
                f"no conversation '{cid[:40]}' (it may have expired after "
                f"{self.ttl_s / 60:.0f} idle minutes); start a new one without conversation_id"
            )
        turns = [json.loads(item) for item in raw if item]
        return [Turn(t["role"], t["content"]) for t in turns]

    def add(self, cid: str, *turns: Turn) -> None:
        encoded = [json.dumps({"role": t.role, "content": t.content}) for t in turns]
        with self.state.reachable():
            self.state._add_turns(
                keys=[self._turns_key(cid), self._index],
                args=[self._ttl_ms(), self.max_turns, cid, *encoded],
            )


class RedisLimits:
    """Per-caller token buckets and answer slots in Redis."""

    def __init__(self, state: RedisState) -> None:
        self.state = state

    def spend(self, caller: str, rate_per_minute: int, burst: int) -> None:
        """Spend one request from the caller's bucket, or raise RateLimited."""
        rate = rate_per_minute / 60.0
        # A bucket untouched for long enough to refill is a full bucket: let it go.
        ttl = int(burst / rate) + 60 if rate > 0 else 86400
        with self.state.reachable():
            admitted, tokens = self.state._spend(
                keys=[self.state.key("bucket", caller)], args=[rate, burst, ttl]
            )
        if not int(admitted):
            wait = (1.0 - float(tokens)) / rate if rate > 0 else 60.0
            raise RateLimited(f"rate limit of {rate_per_minute} requests a minute reached", wait)

    @contextmanager
    def answering(self, caller: str, limit: int) -> Iterator[None]:
        """Hold one of the caller's concurrent-answer slots."""
        slot = uuid.uuid4().hex
        key = self.state.key("answering", caller)
        with self.state.reachable():
            taken = self.state._take_slot(keys=[key], args=[slot, limit, STALE_SLOT_S])
        if not int(taken):
            raise RateLimited(f"at most {limit} answers at a time per caller", 1.0)
        try:
            yield
        finally:
            with self.state.reachable():
                self.state.client.zrem(key, slot)
