"""Server mode: the same code against a real `chroma run` server."""

import subprocess

import pytest
from support import BIN, free_port, stop, wait_until

from ingest.pipeline import run_ingest
from service.engine import build_engine

pytestmark = pytest.mark.slow


@pytest.fixture
def chroma_server(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "chroma"),
            "run",
            "--path",
            str(tmp_path / "chroma"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=60, process=process)
        yield port
    finally:
        stop(process)


def test_ingest_and_answer_against_a_chroma_server(settings, chroma_server, real_embedder):
    server_settings = settings.model_copy(
        update={
            "index": settings.index.model_copy(
                update={"chroma_host": "127.0.0.1", "chroma_port": chroma_server}
            )
        }
    )
    first = run_ingest(server_settings, embedder=real_embedder)
    assert first.changed
    assert not run_ingest(server_settings, embedder=real_embedder).changed
    engine = build_engine(server_settings, embedder=real_embedder)
    result = engine.ask("How many military personnel took part in Peace Mission 2021?")
    assert result.answered and "4,000" in result.answer
    assert any(n.number == 2 for n in result.citations[0].endnotes)
    assert not (settings.index.path).exists()  # nothing was written to the embedded path
