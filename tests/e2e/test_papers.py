"""`memoqa add` from the command line: the memo as a PDF, a Word file and a web
page (made with real tools) beside a small paper of our own; each is answerable
with endnote-linked citations, and a question that needs two papers cites both."""

from __future__ import annotations

import json

import pytest
from formats import memo_as
from support import MEMO, memoqa_env, run_cli

pytestmark = pytest.mark.slow

CSTO = """# The CSTO in 2024

## Forces

The rapid reaction force of the Collective Security Treaty Organization numbers about
20,000 troops.<sup>1</sup>

## Endnotes

- 1 CSTO, "Collective Rapid Reaction Forces," <https://en.odkb-csto.org/forces/>.
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("papers")
    corpus = tmp / "corpus"
    corpus.mkdir()
    (corpus / "csto.md").write_text(CSTO, encoding="utf-8")
    manifest = corpus / "manifest.json"
    manifest.write_text(
        json.dumps({"documents": [{"id": "csto", "file": "csto.md", "title": "CSTO Notes"}]})
    )
    env = memoqa_env(tmp, manifest, MEMOQA_ANSWER__GENERATOR="extractive")
    made = tmp / "made"
    made.mkdir()
    result = run_cli(["ingest"], env)
    assert result.returncode == 0, result.stderr
    for fmt in ("pdf", "docx", "html"):
        path = memo_as(fmt, MEMO, made)
        result = run_cli(["add", str(path), "--id", f"memo-{fmt}"], env)
        assert result.returncode == 0, result.stderr
        assert f"added     memo-{fmt} ({fmt})" in result.stdout
    return env, manifest


def _ask(env, question: str, *options: str) -> dict:
    result = run_cli(["ask", "--json", question, *options], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("fmt", ["pdf", "docx", "html"])
def test_each_format_is_answerable_with_endnote_linked_citations(library, fmt):
    env, _ = library
    question = "How many military personnel took part in Peace Mission 2021?"
    body = _ask(env, question, "--document", f"memo-{fmt}")
    assert body["answered"], body
    assert {c["document_id"] for c in body["citations"]} == {f"memo-{fmt}"}
    notes = [n for c in body["citations"] for n in c["endnotes"]]
    assert notes and all(n["urls"] for n in notes), body["citations"]


def test_a_question_that_needs_two_papers_cites_both(library):
    env, _ = library
    body = _ask(
        env,
        "How many troops are in the CSTO rapid reaction force, and how many military "
        "personnel took part in Peace Mission 2021?",
    )
    documents = {c["document_id"] for c in body["citations"]}
    assert "csto" in documents and any(d.startswith("memo-") for d in documents), body


def test_adding_the_same_file_again_fails_and_changes_nothing(library, tmp_path):
    env, manifest = library
    before = manifest.read_bytes()
    pdf = manifest.parent / "memo-pdf.pdf"
    result = run_cli(["add", str(pdf), "--id", "again"], env)
    assert result.returncode == 1
    assert "the same file as paper 'memo-pdf'" in result.stderr
    assert "Traceback" not in result.stderr
    assert manifest.read_bytes() == before


def test_remove_takes_a_paper_out(library):
    env, manifest = library
    result = run_cli(["remove", "memo-html"], env)
    assert result.returncode == 0, result.stderr
    ids = [d["id"] for d in json.loads(manifest.read_text())["documents"]]
    assert ids == ["csto", "memo-pdf", "memo-docx"]
