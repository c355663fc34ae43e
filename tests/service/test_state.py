"""Conversations and limits that several workers share through one SQLite file:
two instances over one file stand for two worker processes."""

from __future__ import annotations

import threading

import pytest

from service.errors import ConversationNotFound, RateLimited
from service.followup import Turn
from service.state import SharedConversations, SharedLimits, SharedState


def test_a_conversation_started_on_one_worker_continues_on_another(tmp_path):
    first = SharedConversations(SharedState(tmp_path / "state.sqlite"))
    second = SharedConversations(SharedState(tmp_path / "state.sqlite"), max_turns=4)
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


def test_conversations_expire_and_the_oldest_go_past_the_cap(tmp_path):
    state = SharedState(tmp_path / "state.sqlite")
    expiring = SharedConversations(state, ttl_s=0.0)
    gone = expiring.create()
    with pytest.raises(ConversationNotFound):
        expiring.history(gone)
    capped = SharedConversations(state, capacity=3)
    made = [capped.create() for _ in range(5)]
    for cid in made[:2]:
        with pytest.raises(ConversationNotFound):
            capped.history(cid)
    assert all(capped.history(cid) == [] for cid in made[2:])


def test_a_callers_rate_limit_counts_every_workers_requests(tmp_path):
    workers = [SharedLimits(SharedState(tmp_path / "state.sqlite")) for _ in range(2)]
    for n in range(5):
        workers[n % 2].spend("key:ci", rate_per_minute=1, burst=5)
    with pytest.raises(RateLimited) as refused:
        workers[1].spend("key:ci", rate_per_minute=1, burst=5)
    assert 0 < refused.value.retry_after <= 60
    workers[0].spend("key:other", rate_per_minute=1, burst=5)  # another caller's own bucket


def test_concurrent_requests_from_many_threads_spend_exactly_the_burst(tmp_path):
    limits = [SharedLimits(SharedState(tmp_path / "state.sqlite")) for _ in range(2)]
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


def test_answer_slots_are_shared_and_given_back(tmp_path):
    first = SharedLimits(SharedState(tmp_path / "state.sqlite"))
    second = SharedLimits(SharedState(tmp_path / "state.sqlite"))
    with first.answering("key:ci", 1):
        with pytest.raises(RateLimited, match="at most 1 answers"):
            with second.answering("key:ci", 1):
                pass
    with second.answering("key:ci", 1):
        pass
