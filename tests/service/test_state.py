"""Conversations and limits that several workers share, through one SQLite
file (one machine) or a real Redis server (several): two instances over one
store stand for two worker processes."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from service.errors import ConversationNotFound, RateLimited, StateUnavailableError
from service.followup import Turn
from service.state import SharedConversations, SharedLimits, SharedState
from service.state_redis import RedisConversations, RedisLimits, RedisState


class Stores:
    """Makes conversation and limit stores over one shared store of a kind."""

    def __init__(self, kind: str, tmp_path: Any, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self.path = tmp_path / "state.sqlite"
        if kind == "redis":
            self.url = request.getfixturevalue("redis_url")
            self.prefix = f"test-{uuid.uuid4().hex[:8]}:"

    def state(self) -> Any:
        if self.kind == "redis":
            return RedisState(self.url, prefix=self.prefix)
        return SharedState(self.path)

    def conversations(self, state: Any = None, **kw: Any) -> Any:
        state = state or self.state()
        return (RedisConversations if self.kind == "redis" else SharedConversations)(state, **kw)

    def limits(self) -> Any:
        return (RedisLimits if self.kind == "redis" else SharedLimits)(self.state())


@pytest.fixture(
    params=["sqlite", pytest.param("redis", marks=pytest.mark.slow)],
)
def stores(request: pytest.FixtureRequest, tmp_path: Any) -> Stores:
    return Stores(request.param, tmp_path, request)


def test_a_conversation_started_on_one_worker_continues_on_another(stores):
    first = stores.conversations()
    second = stores.conversations(max_turns=4)
    cid = first.create()
    second.add(cid, Turn("user", "When was the SCO founded?"), Turn("assistant", "In 2001."))
    assert first.history(cid) == [
        Turn("user", "When was the SCO founded?"),
        Turn("assistant", "In 2001."),
    ]
    for n in range(3):
        second.add(cid, Turn("user", f"q{n}"), Turn("assistant", f"a{n}"))
    assert [t.content for t in first.history(cid)] == ["q1", "a1", "q2", "a2"]
    with pytest.raises(ConversationNotFound, match="no conversation 'nope'"):
        second.history("nope")


def test_conversations_expire_and_the_oldest_go_past_the_cap(stores):
    state = stores.state()
    expiring = stores.conversations(state, ttl_s=0.05)
    gone = expiring.create()
    time.sleep(0.2)
    with pytest.raises(ConversationNotFound):
        expiring.history(gone)
    capped = stores.conversations(state, capacity=3)
    made = [capped.create() for _ in range(5)]
    for cid in made[:2]:
        with pytest.raises(ConversationNotFound):
            capped.history(cid)
    assert all(capped.history(cid) == [] for cid in made[2:])


def test_a_callers_rate_limit_counts_every_workers_requests(stores):
    workers = [stores.limits() for _ in range(2)]
    for n in range(5):
        workers[n % 2].spend("key:ci", rate_per_minute=1, burst=5)
    with pytest.raises(RateLimited) as refused:
        workers[1].spend("key:ci", rate_per_minute=1, burst=5)
    assert 0 < refused.value.retry_after <= 60
    workers[0].spend("key:other", rate_per_minute=1, burst=5)  # another caller's own bucket


def test_concurrent_requests_from_many_threads_spend_exactly_the_burst(stores):
    limits = [stores.limits() for _ in range(2)]
    admitted, refused = [], []

    def request(n: int) -> None:
        try:
            limits[n % 2].spend("ip:127.0.0.1", rate_per_minute=1, burst=10)
            admitted.append(n)
        except RateLimited:
            refused.append(n)

    threads = [threading.Thread(target=request, args=(n,)) for n in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 10 and len(refused) == 20


def test_answer_slots_are_shared_and_given_back(stores):
    first, second = stores.limits(), stores.limits()
    with first.answering("key:ci", 1):
        with pytest.raises(RateLimited, match="at most 1 answers"):
            with second.answering("key:ci", 1):
                pass
    with second.answering("key:ci", 1):
        pass


@pytest.mark.slow
def test_a_conversation_keeps_its_last_turns_and_survives_only_while_used(redis_url):
    state = RedisState(redis_url, prefix=f"test-{uuid.uuid4().hex[:8]}:")
    store = RedisConversations(state, max_turns=2, ttl_s=0.5)
    cid = store.create()
    assert store.history(cid) == []
    store.add(cid, Turn("user", "q1"), Turn("assistant", "a1"), Turn("user", "q2"))
    assert [t.content for t in store.history(cid)] == ["a1", "q2"]
    for _ in range(3):  # each turn read keeps it alive past its idle time
        time.sleep(0.3)
        store.history(cid)
    time.sleep(0.7)
    with pytest.raises(ConversationNotFound):
        store.history(cid)
    store.add(cid, Turn("user", "late"))  # adding to an expired one brings nothing back
    with pytest.raises(ConversationNotFound):
        store.history(cid)


def test_an_unreachable_redis_is_a_503_reason_not_a_stack_trace():
    from support import free_port

    state = RedisState(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StateUnavailableError, match="shared state store .* is unreachable"):
        RedisLimits(state).spend("ip:127.0.0.1", rate_per_minute=60, burst=5)
    with pytest.raises(StateUnavailableError, match="unreachable"):
        RedisConversations(state).create()
    with pytest.raises(StateUnavailableError, match="bad state store URL"):
        RedisState("http://127.0.0.1:1/")
