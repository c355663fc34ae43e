"""`memoqa inspect` and `memoqa add --dry-run`: what a paper reads as, before it
is trusted, with nothing added."""

from __future__ import annotations

import json
import shutil

from support import MEMO, ROOT, memoqa_env, run_cli

PAPERS = ROOT / "tests" / "papers"


def test_inspect_prints_what_a_real_report_reads_as(tmp_path):
    """A GAO report whose note numbering restarts: every note found and cited,
    as counted by hand; the JSON form carries the same figures."""
    env = memoqa_env(tmp_path, tmp_path / "manifest.json")
    report = PAPERS / "gao-05-927.pdf"
    truth = {t["file"]: t for t in json.loads((PAPERS / "truth.json").read_text())}
    result = run_cli(["inspect", str(report)], env)
    assert result.returncode == 0, result.stderr
    assert f"{truth[report.name]['pages']} pages" in result.stdout
    assert f"notes      {truth[report.name]['notes']} found" in result.stdout
    assert "markers without a note   none" in result.stdout
    result = run_cli(["inspect", "--json", str(report), str(MEMO)], env)
    assert result.returncode == 0, result.stderr
    pdf, memo = json.loads(result.stdout)
    assert pdf["summary"]["notes"] == truth[report.name]["notes"]
    assert pdf["summary"]["markers"] == truth[report.name]["notes"]
    assert memo["summary"]["notes"] == 73 and memo["format"] == "markdown"


def test_inspect_names_a_file_it_cannot_read_and_fails(tmp_path):
    env = memoqa_env(tmp_path, tmp_path / "manifest.json")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 broken")
    result = run_cli(["inspect", str(broken), str(MEMO)], env)
    assert result.returncode == 1
    assert "broken.pdf" in result.stderr and "not a readable PDF" in result.stderr
    assert "Traceback" not in result.stderr
    assert "notes      73 found" in result.stdout


def test_add_dry_run_shows_the_parse_and_adds_nothing(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    manifest = corpus / "manifest.json"
    before = manifest.read_bytes()
    env = memoqa_env(tmp_path, manifest)
    result = run_cli(["add", "--dry-run", str(PAPERS / "R48908.2.pdf")], env)
    assert result.returncode == 0, result.stderr
    assert "notes      35 found" in result.stdout and "nothing was added" in result.stdout
    assert manifest.read_bytes() == before
    assert sorted(p.name for p in corpus.iterdir()) == sorted(
        p.name for p in (ROOT / "corpus").iterdir()
    )
    assert not (tmp_path / "index").exists()
