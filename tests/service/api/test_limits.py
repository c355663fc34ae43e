"""The question limit comes from `api.max_question_chars`, on every route that takes one."""

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient

from ingest.pipeline import run_ingest
from service.api.app import create_app
from service.engine import build_engine

LIMIT = 60


@pytest.fixture
def client(tmp_path, corpus_dir, hash_embedder):
    settings = make_settings(
        tmp_path, corpus_dir / "manifest.json", api={"max_question_chars": LIMIT}
    )
    run_ingest(settings, embedder=hash_embedder)
    app = create_app(settings, engine_factory=lambda s: build_engine(s, embedder=hash_embedder))
    with TestClient(app) as c:
        yield c


def requests(question: str) -> list[tuple[str, str, dict[str, object]]]:
    return [
        ("POST", "/v1/ask", {"json": {"question": question}}),
        ("POST", "/v1/chat", {"json": {"messages": [{"role": "user", "content": question}]}}),
        ("GET", "/v1/search", {"params": {"q": question}}),
        (
            "POST",
            "/v1/chat/completions",
            {"json": {"messages": [{"role": "user", "content": question}]}},
        ),
    ]


@pytest.mark.parametrize("method,path,kwargs", requests("x" * (LIMIT + 1)))
def test_a_question_over_the_configured_limit_is_refused_with_422(client, method, path, kwargs):
    r = client.request(method, path, **kwargs)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail[0]["type"] == "string_too_long"
    assert f"at most {LIMIT} characters" in detail[0]["msg"]


@pytest.mark.parametrize(
    "method,path,kwargs", requests("How many troops took part in Peace Mission 2021?")
)
def test_a_question_within_the_limit_is_answered(client, method, path, kwargs):
    assert client.request(method, path, **kwargs).status_code == 200
