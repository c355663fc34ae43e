"""Faults: a missing model, a corrupt index, a full disk, an ingest killed at
random points, a Chroma server that dies and comes back, two services on one
Chroma server while the corpus is re-ingested."""

from __future__ import annotations

import errno
import json
import random
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from fakes import fake_embedder
from support import (
    BIN,
    MANIFEST,
    ROOT,
    ServerThread,
    free_port,
    memoqa_env,
    run_cli,
    stop,
    wait_until,
)

from ingest.errors import IndexUnavailableError, MemoqaError
from ingest.index.reader import IndexReader
from ingest.index.store import IndexStore, connect
from ingest.pipeline import run_ingest
from service.api.app import create_app
from service.engine import build_engine

pytestmark = pytest.mark.slow


def test_a_missing_model_fails_at_start(tmp_path):
    env = memoqa_env(tmp_path, MANIFEST, MEMOQA_LLM__MODEL_PATH=str(tmp_path / "missing.gguf"))
    started = time.monotonic()
    result = run_cli(["serve", "--port", str(free_port())], env, timeout=60)
    assert result.returncode == 1 and time.monotonic() - started < 30
    assert "missing.gguf not found" in result.stderr and "Traceback" not in result.stderr


def test_a_corrupt_index_is_reported_and_repaired(settings):
    embedder = fake_embedder()
    run_ingest(settings, embedder=embedder)
    (settings.index.path / "chroma.sqlite3").write_bytes(b"not a database" * 100)
    with pytest.raises(IndexUnavailableError, match="cannot"):
        IndexReader(settings.index, embedder.ref, embedder.dim).snapshot()
    report = run_ingest(settings, embedder=embedder)
    assert report.changed and any("moved it to" in w for w in report.warnings)
    snapshot = IndexReader(settings.index, embedder.ref, embedder.dim).snapshot()
    assert len(snapshot.passages()) == snapshot.info.passage_count
    assert list(settings.index.path.parent.glob("index.broken-*"))  # kept, not deleted


def test_a_full_disk_during_ingest_leaves_the_index_in_use(settings, monkeypatch):
    embedder = fake_embedder()
    first = run_ingest(settings, embedder=embedder)
    import ingest.pipeline as pipeline

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "_write_units", full)
    with pytest.raises(MemoqaError, match="No space left on device"):
        run_ingest(settings, embedder=embedder, force=True)
    store = IndexStore(connect(settings.index), settings.index.collection_prefix)
    assert store.active_name() == first.collection and store.generations() == [first.collection]
    assert store.segments() == list(store.info(first.collection).segments)  # the new one dropped


INGEST_FOREVER = """
import sys
sys.path.insert(0, {tests!r})
from fakes import fake_embedder
from ingest.pipeline import run_ingest
from service.settings import Settings
settings = Settings.model_validate({settings!r})
embedder = fake_embedder()
while True:
    run_ingest(settings, embedder=embedder, force=True)
"""


def test_ingest_killed_at_random_points_never_leaves_a_partial_index(settings):
    embedder = fake_embedder()
    run_ingest(settings, embedder=embedder)
    data = json.loads(settings.model_dump_json())
    script = INGEST_FOREVER.format(tests=str(ROOT / "tests"), settings=data)
    rng = random.Random(7)
    for _ in range(6):
        process = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(1.0, 6.0))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        snapshot = IndexReader(settings.index, embedder.ref, embedder.dim).snapshot()
        assert len(snapshot.passages()) == snapshot.info.passage_count
        assert set(snapshot.documents) == {"weitz-2025-sco"}
    # The next ingest clears what the killed ones left half-written.
    run_ingest(settings, embedder=embedder, force=True)
    store = IndexStore(connect(settings.index), settings.index.collection_prefix)
    assert len(store.generations()) <= settings.index.keep_generations
    read = {s for g in store.generations() for s in store.info(g).segments}
    assert set(store.segments()) == read


def start_chroma(path, port):
    process = subprocess.Popen(
        [
            str(BIN / "chroma"),
            "run",
            "--path",
            str(path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=60, process=process)
    return process


def on_server(settings, port):
    return settings.model_copy(
        update={
            "index": settings.index.model_copy(
                update={"chroma_host": "127.0.0.1", "chroma_port": port}
            )
        }
    )


def test_the_service_survives_a_chroma_server_restart(settings, tmp_path):
    port = free_port()
    chroma = start_chroma(tmp_path / "chroma", port)
    embedder = fake_embedder()
    served = on_server(settings, port)
    served = served.model_copy(
        update={
            "security": served.security.model_copy(
                update={"rate_per_minute": 100000, "burst": 100000}
            )
        }
    )
    run_ingest(served, embedder=embedder)
    app = create_app(served, engine_factory=lambda s: build_engine(s, embedder=embedder))
    statuses: list[int] = []
    stop_load = threading.Event()
    try:
        with ServerThread(app) as server:
            wait_until(server.url + "/readyz", timeout=30)

            def hammer():
                with httpx.Client(timeout=30) as client:
                    while not stop_load.is_set():
                        statuses.append(
                            client.get(server.url + "/v1/search", params={"q": "RATS"}).status_code
                        )

            load = threading.Thread(target=hammer)
            load.start()
            time.sleep(1)
            stop(chroma)
            wait_until(server.url + "/readyz", status=503, timeout=30)
            chroma = start_chroma(tmp_path / "chroma", port)
            wait_until(server.url + "/readyz", status=200, timeout=60)
            time.sleep(1)
            stop_load.set()
            load.join(timeout=30)
    finally:
        stop_load.set()
        stop(chroma)
    assert 200 in statuses and 503 in statuses
    assert set(statuses) <= {200, 503}, set(statuses)
    assert statuses[-1] == 200


def test_two_services_on_one_chroma_server_keep_serving_through_a_reingest(tmp_path):
    port = free_port()
    chroma = start_chroma(tmp_path / "chroma", port)
    env = memoqa_env(
        tmp_path,
        MANIFEST,
        MEMOQA_INDEX__CHROMA_HOST="127.0.0.1",
        MEMOQA_INDEX__CHROMA_PORT=str(port),
        MEMOQA_ANSWER__GENERATOR="extractive",
    )
    services = []
    try:
        assert run_cli(["ingest"], env).returncode == 0
        for _ in range(2):
            service_port = free_port()
            process = subprocess.Popen(
                [str(BIN / "memoqa"), "serve", "--port", str(service_port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            services.append((process, f"http://127.0.0.1:{service_port}"))
        for process, url in services:
            wait_until(url + "/readyz", process=process)
        before = {url: httpx.get(url + "/readyz").json()["index"] for _, url in services}
        statuses: list[int] = []
        reingest = subprocess.Popen(
            [str(BIN / "memoqa"), "ingest", "--force"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with httpx.Client(timeout=60) as client:
            while reingest.poll() is None:
                for _, url in services:
                    statuses.append(
                        client.post(
                            url + "/v1/ask", json={"question": "When did the RATS officially open?"}
                        ).status_code
                    )
            for _, url in services:
                statuses.append(client.get(url + "/v1/search", params={"q": "RATS"}).status_code)
        assert reingest.returncode == 0, reingest.stderr.read()
        assert set(statuses) == {200}
        # Both follow the new generation within index.follow_s (1 s).
        deadline = time.monotonic() + 10
        after = before
        while time.monotonic() < deadline and any(after[u] == before[u] for u in after):
            time.sleep(0.2)
            after = {url: httpx.get(url + "/readyz").json()["index"] for _, url in services}
        assert all(after[u] != before[u] for u in after)
    finally:
        for process, _ in services:
            stop(process)
        stop(chroma)
