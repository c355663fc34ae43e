"""Judge calls from concurrent jobs are asked in batches; a failure or a cached
reply stays with its own request."""

import asyncio
import json

from eval.judge import Judge, JudgeBatcher, JudgeCache, JudgeError
from eval.runner import concurrently


class BatchBackend:
    identity = "fake:batch"

    def __init__(self):
        self.batches = []

    def complete(self, messages, schema, max_tokens):
        self.batches.append(1)
        return self._reply(messages)

    def complete_many(self, requests, max_tokens):
        self.batches.append(len(requests))
        return [self._reply(messages) for messages, _ in requests]

    @staticmethod
    def _reply(messages):
        text = messages[0]["content"]
        if "fail" in text:
            return JudgeError("judge timed out")
        return json.dumps({"echo": text})


def ask_all(judge, jobs):
    """Each job asks its prompts one after another; jobs run together."""
    batcher = JudgeBatcher(judge)
    out = {}

    async def job(prompts):
        replies = []
        for prompt in prompts:
            try:
                replies.append(await batcher.complete([{"role": "user", "content": prompt}], {}))
            except JudgeError as exc:
                replies.append(f"error: {exc}")
        out[prompts[0]] = replies

    asyncio.run(concurrently(jobs, job, batcher))
    return out


def test_concurrent_jobs_are_judged_in_batches(tmp_path):
    backend = BatchBackend()
    judge = Judge(backend, None, 100, batch=3)
    jobs = [[f"q{i}a", f"q{i}b"] for i in range(5)]
    out = ask_all(judge, jobs)
    assert out == {f"q{i}a": [json.dumps({"echo": p}) for p in job] for i, job in enumerate(jobs)}
    # Three jobs at a time: their first and second calls go together.
    assert max(backend.batches) == 3 and sum(backend.batches) == 10 and len(backend.batches) < 10
    assert judge.calls == 10


def test_a_failure_stays_with_its_request_and_cached_replies_are_not_asked(tmp_path):
    backend = BatchBackend()
    judge = Judge(backend, JudgeCache(tmp_path / "cache.sqlite"), 100, batch=4)
    jobs = [["ok-1"], ["fail-2"], ["ok-3"]]
    out = ask_all(judge, jobs)
    assert out["fail-2"] == ["error: judge timed out"]
    assert out["ok-1"] == [json.dumps({"echo": "ok-1"})]
    backend.batches.clear()
    again = ask_all(judge, jobs)
    assert again == out
    assert backend.batches == [1]  # only the failure is asked again
    assert judge.cached == 2


def test_endpoints_are_asked_concurrently_and_the_local_judge_one_at_a_time() -> None:
    from eval.settings import JudgeSettings

    assert JudgeSettings().concurrency() == 1
    assert JudgeSettings(base_url="http://127.0.0.1:9/v1").concurrency() == 4
    assert JudgeSettings(batch=3).concurrency() == 3
    assert JudgeSettings(base_url="http://127.0.0.1:9/v1", batch=1).concurrency() == 1


def test_a_job_waiting_on_another_does_not_stall_the_batch():
    """Job b cannot ask until job a's first reply is in: a's call is asked
    without waiting for b (which would never come)."""
    backend = BatchBackend()
    judge = Judge(backend, None, 100, batch=2)
    batcher = JudgeBatcher(judge)
    first_reply = asyncio.Event()
    out = []

    async def job(name):
        if name == "b":
            await first_reply.wait()
        reply = await batcher.complete([{"role": "user", "content": name}], {})
        out.append(reply)
        first_reply.set()

    async def run():
        await asyncio.wait_for(concurrently(["a", "b"], job, batcher), timeout=10)

    asyncio.run(run())
    assert out == [json.dumps({"echo": "a"}), json.dumps({"echo": "b"})]
    assert backend.batches == [1, 1]


def test_kept_judgements_are_read_first_and_a_run_keeps_what_it_used(tmp_path):
    import pytest

    from eval.judge import read_kept, write_kept
    from ingest.errors import MemoqaError

    first = Judge(BatchBackend(), JudgeCache(tmp_path / "one.sqlite"), 100)
    first.complete([{"role": "user", "content": "ok-1"}], {})
    first.complete([{"role": "user", "content": "ok-2"}], {})
    kept = tmp_path / "judgements.jsonl"
    write_kept(kept, first.cache.used)
    assert read_kept(kept) == first.cache.used and len(read_kept(kept)) == 2

    # A fresh clone: an empty local cache, the kept file beside the baseline.
    backend = BatchBackend()
    fresh = Judge(backend, JudgeCache(tmp_path / "two.sqlite", kept), 100)
    assert fresh.complete([{"role": "user", "content": "ok-2"}], {}) == json.dumps({"echo": "ok-2"})
    fresh.complete([{"role": "user", "content": "ok-3"}], {})
    assert backend.batches == [1] and fresh.cached == 1  # only the new one was asked
    assert len(fresh.cache.used) == 2  # what this run used: one kept, one new
    assert read_kept(tmp_path / "missing.jsonl") == {}
    kept.write_text('{"key": "k"}\n')
    with pytest.raises(MemoqaError, match="judgements.jsonl:1"):
        JudgeCache(tmp_path / "three.sqlite", kept)
