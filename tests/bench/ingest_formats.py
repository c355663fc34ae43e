"""Ingest speed by format: the memo as markdown, HTML, Word and PDF (made with
pandoc and Chromium; the PDF also set in two columns), each ingested into a
fresh index with the packaged embedder (cold), then again unchanged. Prints
seconds, per page (of the PDF, or of the one-column PDF for the other formats)
and per MB of file.

    PYTHONPATH=tests tests/offline.sh .venv/bin/python tests/bench/ingest_formats.py
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from formats import memo_as
from support import MEMO

from ingest.corpus import extract, format_of
from ingest.pipeline import run_ingest
from ingest.settings import load_configured_embedder
from service.settings import Settings


def main() -> None:
    embedder = load_configured_embedder(Settings())
    with tempfile.TemporaryDirectory(prefix="memoqa-bench-") as tmp:
        folder = Path(tmp)
        made = folder / "made"
        made.mkdir()
        files = {"markdown": MEMO, **{f: memo_as(f, MEMO, made) for f in ("html", "docx", "pdf")}}
        files["pdf-2col"] = memo_as("pdf", MEMO, made, columns=2)
        pdf = files["pdf"]
        from ingest.formats.pdf import read_pdf

        pages = read_pdf(pdf.read_bytes(), name=pdf.name).pages
        print(f"the memo: {pages} pages as PDF (per page: of the PDF, or of the one-column PDF)")
        print(
            f"{'format':9} {'MB':>6} {'extract s':>10} {'cold s':>8} {'s/page':>7} "
            f"{'s/MB':>7} {'unchanged s':>12} {'passages':>9}"
        )
        for fmt, path in files.items():
            corpus = folder / fmt / "corpus"
            corpus.mkdir(parents=True)
            shutil.copy(path, corpus / path.name)
            manifest = corpus / "manifest.json"
            entry = {"id": "memo", "file": path.name, "title": "Memo"}
            manifest.write_text(json.dumps({"documents": [entry]}))
            settings = Settings.model_validate(
                {
                    "corpus": {"manifest": manifest},
                    "index": {"path": folder / fmt / "index", "lock_path": folder / fmt / "lock"},
                }
            )
            data = path.read_bytes()
            started = time.perf_counter()
            extract(data, format_of(path), name=path.name)
            extracted = time.perf_counter() - started
            started = time.perf_counter()
            report = run_ingest(settings, embedder=embedder)
            cold = time.perf_counter() - started
            started = time.perf_counter()
            run_ingest(settings, embedder=embedder)
            again = time.perf_counter() - started
            mb = len(data) / 1e6
            if path.suffix == ".pdf":
                pages = read_pdf(data, name=path.name).pages
            print(
                f"{fmt:9} {mb:6.2f} {extracted:10.2f} {cold:8.1f} {cold / pages:7.2f} "
                f"{cold / mb:7.1f} {again:12.2f} {report.passages:9}"
            )


if __name__ == "__main__":
    main()
