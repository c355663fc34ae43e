"""Several workers (`memoqa serve --workers 2`, real HTTP): a conversation
continues whichever worker takes the turn, and a caller's rate limit counts the
requests every worker served."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from support import BIN, MANIFEST, free_port, memoqa_env, run_cli, stop, wait_until

pytestmark = pytest.mark.slow


def test_workers_share_conversations_and_limits(tmp_path):
    env = memoqa_env(
        tmp_path,
        MANIFEST,
        MEMOQA_ANSWER__GENERATOR="extractive",
        MEMOQA_SECURITY__RATE_PER_MINUTE="1",
        MEMOQA_SECURITY__BURST="12",
        MEMOQA_SECURITY__LIMIT_LOOPBACK="true",
    )
    ingest = run_cli(["ingest"], env)
    assert ingest.returncode == 0, ingest.stderr
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "memoqa"), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(base + "/healthz", process=process)
        with httpx.Client(base_url=base, timeout=120) as client:
            opening = [{"role": "user", "content": "What is Peace Mission 2021?"}]
            first = client.post("/v1/chat", json={"messages": opening})
            assert first.status_code == 200, first.text
            cid = first.json()["conversation_id"]
            statuses = []
            for question in ["How many troops took part in it?", "Where was it held?"] * 3:
                message = [{"role": "user", "content": question}]
                turn = client.post("/v1/chat", json={"messages": message, "conversation_id": cid})
                statuses.append(turn.status_code)
            assert statuses == [200] * 6, statuses
            # 7 requests spent of a burst of 12: 5 more pass, whichever worker serves them.
            searches = [
                client.get("/v1/search", params={"q": "SCO drills"}).status_code for _ in range(8)
            ]
            assert searches == [200] * 5 + [429] * 3, searches
        assert (tmp_path / "state.sqlite").is_file()
    finally:
        stop(process)


def test_services_on_separate_machines_share_state_through_redis(tmp_path, redis_url):
    """Two `memoqa serve` processes (standing for two machines, each with its own
    state file) meet only in Redis: a conversation begun on one continues on the
    other, and a caller's limit counts the requests both served."""
    common = {
        "MEMOQA_ANSWER__GENERATOR": "extractive",
        "MEMOQA_SECURITY__RATE_PER_MINUTE": "1",
        "MEMOQA_SECURITY__BURST": "6",
        "MEMOQA_SECURITY__LIMIT_LOOPBACK": "true",
        "MEMOQA_API__STATE_URL": redis_url.removesuffix("/0") + "/1",
    }
    env = memoqa_env(tmp_path, MANIFEST, **common)
    ingest = run_cli(["ingest"], env)
    assert ingest.returncode == 0, ingest.stderr
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [str(BIN / "memoqa"), "serve", "--port", str(port)],
            env={**env, "MEMOQA_API__STATE_PATH": str(tmp_path / f"machine{n}.sqlite")},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n, port in enumerate(ports)
    ]
    a, b = (f"http://127.0.0.1:{port}" for port in ports)
    try:
        for base, process in zip((a, b), processes, strict=True):
            wait_until(base + "/healthz", process=process)
        opening = [{"role": "user", "content": "What is Peace Mission 2021?"}]
        first = httpx.post(a + "/v1/chat", json={"messages": opening}, timeout=120)
        assert first.status_code == 200, first.text
        cid = first.json()["conversation_id"]
        follow = [{"role": "user", "content": "Where was it held?"}]
        second = httpx.post(
            b + "/v1/chat", json={"messages": follow, "conversation_id": cid}, timeout=120
        )
        assert second.status_code == 200, second.text
        assert second.json()["conversation_id"] == cid
        # 2 of a burst of 6 spent: 4 more pass, alternating machines, then 429s.
        statuses = [
            httpx.get(base + "/v1/search", params={"q": "SCO drills"}, timeout=60).status_code
            for base in (a, b) * 3
        ]
        assert statuses == [200] * 4 + [429] * 2, statuses
        assert not any((tmp_path / f"machine{n}.sqlite").exists() for n in range(2))
    finally:
        for process in processes:
            stop(process)
