"""Questions and searches restricted to some papers; every citation names its paper."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from ingest.pipeline import run_ingest
from service.api.app import create_app
from service.engine import build_engine

CSTO = """# The CSTO in 2024

## Forces

The rapid reaction force of the Collective Security Treaty Organization numbers about
20,000 troops.<sup>1</sup>

## Endnotes

- 1 CSTO, "Collective Rapid Reaction Forces," <https://en.odkb-csto.org/forces/>.
"""


@pytest.fixture
def client(settings, hash_embedder, corpus_dir):
    (corpus_dir / "csto.md").write_text(CSTO, encoding="utf-8")
    manifest = corpus_dir / "manifest.json"
    data = json.loads(manifest.read_text())
    data["documents"].append({"id": "csto", "file": "csto.md", "title": "CSTO Notes"})
    manifest.write_text(json.dumps(data))
    run_ingest(settings, embedder=hash_embedder)
    app = create_app(settings, engine_factory=lambda s: build_engine(s, embedder=hash_embedder))
    with TestClient(app) as c:
        yield c


def test_search_within_one_paper(client):
    params = {"q": "rapid reaction force troops", "documents": ["weitz-2025-sco"]}
    passages = client.get("/v1/search", params=params).json()["passages"]
    assert passages and {p["document_id"] for p in passages} == {"weitz-2025-sco"}
    params["documents"] = ["csto"]
    passages = client.get("/v1/search", params=params).json()["passages"]
    assert passages and {p["document_id"] for p in passages} == {"csto"}


@pytest.mark.parametrize("stream", [False, True])
def test_ask_within_one_paper_cites_only_it(client, stream):
    payload = {
        "question": "How many troops does the CSTO rapid reaction force have?",
        "documents": ["csto"],
        "stream": stream,
    }
    r = client.post("/v1/ask", json=payload)
    assert r.status_code == 200
    body = json.loads(r.text.split("event: done\ndata: ")[1]) if stream else r.json()
    assert body["answered"], body
    assert {c["document_id"] for c in body["citations"]} == {"csto"}
    assert all(c["document_title"] == "CSTO Notes" for c in body["citations"])


def test_chat_within_one_paper(client):
    payload = {
        "messages": [{"role": "user", "content": "How large is the rapid reaction force?"}],
        "documents": ["csto"],
    }
    body = client.post("/v1/chat", json=payload).json()
    assert {c["document_id"] for c in body["citations"]} <= {"csto"}


@pytest.mark.parametrize(
    "method,path,kwargs",
    [
        ("POST", "/v1/ask", {"json": {"question": "Troops?", "documents": ["nope"]}}),
        ("GET", "/v1/search", {"params": {"q": "troops", "documents": ["nope"]}}),
    ],
)
def test_an_unknown_paper_is_a_404_naming_it(client, method, path, kwargs):
    r = client.request(method, path, **kwargs)
    assert r.status_code == 404 and "'nope'" in r.json()["detail"]
