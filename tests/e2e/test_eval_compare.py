"""`memoqa eval compare` on two real runs (the extractive generator under two
relevance floors), and its HTML report rendered in a real browser."""

from __future__ import annotations

import os
import shutil

import pytest
from support import MANIFEST, memo_questions, memoqa_env, run_cli

pytestmark = pytest.mark.slow


def test_two_real_runs_compared_and_the_report_renders(tmp_path):
    env = memoqa_env(tmp_path, MANIFEST, MEMOQA_ANSWER__GENERATOR="extractive")
    assert run_cli(["ingest"], env).returncode == 0
    memo = ["--questions", str(memo_questions(tmp_path))]
    runs = {}
    for name, floor in (("a", None), ("b", "0.62")):
        run_env = {**env, "MEMOQA_ANSWER__MIN_RELEVANCE": floor} if floor else env
        runs[name] = tmp_path / name
        done = run_cli(
            ["eval", *memo, "--judged", "none", "--limit", "40", "--out", str(runs[name])],
            run_env,
        )
        assert done.returncode == 0, done.stderr
    out = tmp_path / "compare"
    compared = run_cli(["eval", "compare", str(runs["a"]), str(runs["b"]), "--out", str(out)], env)
    assert compared.returncode == 0, compared.stderr
    assert "questions changed" in compared.stdout
    text = (out / "compare.md").read_text()
    assert "## Metrics by kind" in text and "| kind:fact | correct |" in text
    assert "## Questions whose outcome changed" in text and "### " in text  # the floor refused some

    other = run_cli(
        ["eval", *memo, "--judged", "none", "--limit", "10", "--out", str(tmp_path / "c")], env
    )
    assert other.returncode == 0, other.stderr
    refused = run_cli(["eval", "compare", str(runs["a"]), str(tmp_path / "c")], env)
    assert refused.returncode == 2 and "--shared-only" in refused.stderr
    assert "Traceback" not in refused.stderr
    _renders(out / "compare.html", tmp_path / "compare.png")


def _renders(page_file, screenshot):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("MEMOQA_REQUIRE_BROWSER"):
            pytest.fail("Chromium is required here (MEMOQA_REQUIRE_BROWSER) but not installed")
        pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(page_file.as_uri())
        assert page.locator("table tbody tr").count() > 20
        first = page.locator(".q .pair").first
        assert first.is_visible() and first.bounding_box()["width"] > 600
        sides = first.locator(".side")
        assert sides.count() == 2
        left, right = sides.nth(0).bounding_box(), sides.nth(1).bounding_box()
        assert left["x"] < right["x"] and abs(left["y"] - right["y"]) < 1  # side by side
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    assert not failed  # self-contained: nothing fetched
    assert screenshot.stat().st_size > 20_000
