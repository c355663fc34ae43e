"""Shared fixtures. Every test runs with the network cut except loopback: a
connection anywhere else fails the test (`make test` also runs the suite in a
network namespace with only loopback)."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import fake_embedder
from support import MEMO, ONNX, ROOT

from ingest.embed import Embedder
from service.settings import Settings

_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: object) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        host = str(address[0])
        if not (host.startswith("127.") or host in ("::1", "localhost")):
            raise OSError(f"network access outside loopback is not allowed in tests: {address}")
    _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def memo_text() -> str:
    return MEMO.read_text(encoding="utf-8")


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A writable copy of the real corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", target)
    return target


def make_settings(tmp_path: Path, manifest: Path, **sections: dict[str, object]) -> Settings:
    data: dict[str, dict[str, object]] = {
        "corpus": {"manifest": manifest},
        "index": {
            "path": tmp_path / "index",
            "lock_path": tmp_path / "ingest.lock",
            "onnx_path": ONNX,
        },
        # Unit and integration tests answer without the language model; the
        # end-to-end tests run the configured default (the packaged model).
        "answer": {"generator": "extractive"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return Settings.model_validate(data)


@pytest.fixture
def settings(tmp_path: Path, corpus_dir: Path) -> Settings:
    return make_settings(tmp_path, corpus_dir / "manifest.json")


@pytest.fixture(scope="session")
def hash_embedder() -> Embedder:
    return fake_embedder()


@pytest.fixture(scope="session")
def real_embedder() -> Embedder:
    """The packaged model as the product runs it (its ONNX export)."""
    from ingest.embed import load_embedder

    return load_embedder("all-MiniLM-L6-v2", onnx_folder=ONNX)


@pytest.fixture(scope="session")
def torch_embedder() -> Embedder:
    """The packaged model on torch, what the ONNX export is checked against."""
    from ingest.embed import load_embedder

    return load_embedder("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis server on a loopback port, for the session (Debian's
    redis-server: missing, the test is skipped here and fails in CI)."""
    import subprocess
    import time

    from formats import require
    from support import free_port

    server = require("redis-server")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
