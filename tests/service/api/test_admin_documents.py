"""Papers uploaded and removed over HTTP (admin scope); the running service
answers from them at once, and a bad upload changes nothing."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from ingest.pipeline import run_ingest
from service.api.app import create_app
from service.api.security import add_key
from service.engine import build_engine

PAGE = b"""<html><head><title>CSTO Notes</title></head><body><article>
<h1>The CSTO in 2024</h1><h2>Forces</h2>
<p>The rapid reaction force of the Collective Security Treaty Organization numbers about
20,000 troops.<sup><a href="#fn1">1</a></sup></p></article>
<section class="footnotes"><ol><li id="fn1">CSTO,
<a href="https://en.odkb-csto.org/forces/">forces</a>.</li></ol></section></body></html>"""


@pytest.fixture
def admin(settings, hash_embedder, tmp_path):
    keys = tmp_path / "keys.jsonl"
    reader, operator = add_key(keys, "analyst", ("read",)), add_key(keys, "ops", ("admin",))
    configured = settings.model_copy(
        update={"security": settings.security.model_copy(update={"keys_file": keys})}
    )
    run_ingest(configured, embedder=hash_embedder)
    app = create_app(configured, engine_factory=lambda s: build_engine(s, embedder=hash_embedder))
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {operator}"}, {"Authorization": f"Bearer {reader}"}


def test_an_uploaded_paper_is_answerable_at_once_and_can_be_removed(admin, settings):
    client, ops, analyst = admin
    files = {"files": ("csto-notes.html", PAGE, "text/html")}
    denied = client.post("/v1/admin/documents", files=files, headers=analyst)
    assert denied.status_code == 403
    r = client.post("/v1/admin/documents", files=files, data={"id": "csto"}, headers=ops)
    assert r.status_code == 201, r.text
    assert r.json()["added"][0]["id"] == "csto" and r.json()["added"][0]["format"] == "html"
    ids = [d["id"] for d in client.get("/v1/documents", headers=analyst).json()["documents"]]
    assert "csto" in ids
    body = client.post(
        "/v1/ask",
        json={
            "question": "How many troops are in the rapid reaction force?",
            "documents": ["csto"],
        },
        headers=analyst,
    ).json()
    assert body["answered"] and body["citations"][0]["endnotes"][0]["urls"]
    again = client.post("/v1/admin/documents", files=files, headers=ops)
    assert again.status_code == 400 and "same file as paper 'csto'" in again.json()["detail"]
    gone = client.delete("/v1/admin/documents/csto", headers=ops)
    assert gone.status_code == 200 and gone.json()["removed"] == ["csto"]
    ids = [d["id"] for d in client.get("/v1/documents", headers=analyst).json()["documents"]]
    assert ids == ["weitz-2025-sco"]
    missing = client.delete("/v1/admin/documents/csto", headers=ops)
    assert missing.status_code == 400 and "no paper with id 'csto'" in missing.json()["detail"]


@pytest.mark.parametrize(
    "name,content,reason",
    [
        ("slides.pptx", b"PK\x03\x04", "unknown format"),
        ("scan.pdf", b"%PDF-1.4 broken", "not a readable PDF"),
        ("notes.docx", b"not a zip", "not a .docx file"),
        ("menu.html", b"<html><body><nav><p>Home</p></nav></body></html>", "no article body"),
    ],
)
def test_a_bad_upload_is_a_400_naming_it_and_changes_nothing(
    admin, settings, name, content, reason
):
    client, ops, _ = admin
    before = settings.corpus.manifest.read_bytes()
    r = client.post("/v1/admin/documents", files={"files": (name, content)}, headers=ops)
    assert r.status_code == 400 and reason in r.json()["detail"] and name in r.json()["detail"]
    assert settings.corpus.manifest.read_bytes() == before
    assert json.loads(before)["documents"][0]["id"] == "weitz-2025-sco"


def test_a_dry_run_upload_reports_the_parse_and_adds_nothing(admin, settings):
    """What was read comes back before anything is added; an added paper's parse
    is in the upload's reply and in the document list (for the chat page)."""
    client, ops, analyst = admin
    before = settings.corpus.manifest.read_bytes()
    files = {"files": ("csto-notes.html", PAGE, "text/html")}
    r = client.post("/v1/admin/documents", files=files, data={"dry_run": "true"}, headers=ops)
    assert r.status_code == 200, r.text
    (paper,) = r.json()["papers"]
    assert paper["file"] == "csto-notes.html" and paper["format"] == "html"
    assert paper["title"] == "CSTO Notes"
    assert paper["summary"]["notes"] == 1 and paper["summary"]["markers"] == 1
    assert paper["summary"]["markers_without_note"] == []
    assert paper["summary"]["passages"] >= 1 and paper["summary"]["sections"]
    assert settings.corpus.manifest.read_bytes() == before
    added = client.post("/v1/admin/documents", files=files, data={"id": "csto"}, headers=ops)
    assert added.status_code == 201, added.text
    (report,) = [d for d in added.json()["documents"] if d["id"] == "csto"]
    assert report["parse"]["notes"] == 1 and report["parse"]["notes_without_marker"] == []
    listed = client.get("/v1/documents", headers=analyst).json()["documents"]
    parse = {d["id"]: d["parse"] for d in listed}
    assert parse["csto"]["notes"] == 1 and parse["csto"]["passages"] >= 1
    assert parse["weitz-2025-sco"]["notes"] == 73
    assert parse["weitz-2025-sco"]["markers_without_note"] == []
