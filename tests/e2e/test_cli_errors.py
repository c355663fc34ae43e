"""The CLI turns bad input into a message and a non-zero exit, never a traceback."""

import json

import pytest
from support import memoqa_env, run_cli

pytestmark = pytest.mark.slow


def test_ingest_with_a_missing_manifest(tmp_path):
    result = run_cli(["ingest"], memoqa_env(tmp_path, tmp_path / "missing.json"))
    assert result.returncode == 1
    assert "manifest not found" in result.stderr and "Traceback" not in result.stderr


def test_ingest_with_an_undecodable_file_names_it(tmp_path):
    (tmp_path / "bad.md").write_bytes(b"\xff\xfe\x00\x00garbage")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"documents": [{"id": "bad", "file": "bad.md", "title": "Bad"}]}))
    result = run_cli(["ingest"], memoqa_env(tmp_path, manifest))
    assert result.returncode == 1
    assert "bad.md" in result.stderr and "left as it was" in result.stderr
    assert "Traceback" not in result.stderr


def test_ask_with_an_empty_question(tmp_path):
    result = run_cli(["ask", "  "], memoqa_env(tmp_path, tmp_path / "m.json"))
    assert result.returncode == 2 and "error:" in result.stderr


def test_ask_without_an_index(tmp_path):
    result = run_cli(["ask", "Anything?"], memoqa_env(tmp_path, tmp_path / "m.json"))
    assert result.returncode == 1 and "memoqa ingest" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_with_nothing_to_measure(tmp_path):
    result = run_cli(["bench", "--no-plain"], memoqa_env(tmp_path, tmp_path / "m.json"))
    assert result.returncode == 2 and "--no-plain needs --stream" in result.stderr
    assert "Traceback" not in result.stderr
