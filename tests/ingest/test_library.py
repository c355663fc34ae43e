"""Adding and removing papers: all or none, and nothing changed on failure."""

from __future__ import annotations

import json

import pytest

from ingest.errors import CorpusError
from ingest.index.reader import IndexReader
from ingest.library import NewPaper, add_papers, remove_paper
from ingest.pipeline import run_ingest

PAGE = """<html><head><title>CSTO Notes</title>
<meta name="citation_author" content="A. Analyst"><meta name="citation_date" content="2024-05-01">
</head><body><nav><p>Home | Papers</p></nav><article><h1>The CSTO in 2024</h1>
<h2>Members</h2>
<p>The Collective Security Treaty Organization has six member states.<sup>1</sup>
Armenia froze its participation in 2024.<sup>2</sup></p>
<h2>Forces</h2><p>Its rapid reaction force numbers about 20,000 troops.<sup>1</sup></p>
</article><section class="footnotes"><ol>
<li id="fn1">CSTO, <a href="https://en.odkb-csto.org/">official site</a>.</li>
<li id="fn2">Reuters, February 2024.</li></ol></section></body></html>
"""


def _manifest(settings) -> dict:
    return json.loads(settings.corpus.manifest.read_text())


def _documents(settings, embedder) -> list[str]:
    reader = IndexReader(settings.index, embedder.ref, embedder.dim)
    return sorted(reader.snapshot().documents)


@pytest.fixture
def page(tmp_path):
    path = tmp_path / "incoming" / "csto-notes.html"
    path.parent.mkdir()
    path.write_text(PAGE, encoding="utf-8")
    return path


def test_a_paper_is_added_with_the_metadata_it_carries(settings, hash_embedder, page):
    first = run_ingest(settings, embedder=hash_embedder)
    change = add_papers(settings, [NewPaper(page)], embedder=hash_embedder)
    meta = change.added[0]
    assert (meta.id, meta.title, meta.author, meta.date, meta.format) == (
        "csto-notes",
        "CSTO Notes",
        "A. Analyst",
        "2024-05-01",
        "html",
    )
    assert (settings.corpus.manifest.parent / "csto-notes.html").read_text() == PAGE
    assert [d["id"] for d in _manifest(settings)["documents"]][-1] == "csto-notes"
    # Only the new paper's passages are embedded.
    assert change.report is not None and change.report.reused == first.passages
    assert "csto-notes" in _documents(settings, hash_embedder)


def test_the_same_file_twice_is_refused_and_nothing_changes(settings, hash_embedder, page):
    add_papers(settings, [NewPaper(page)], embedder=hash_embedder)
    before = settings.corpus.manifest.read_bytes()
    with pytest.raises(CorpusError, match="the same file as paper 'csto-notes'"):
        add_papers(settings, [NewPaper(page, id="again")], embedder=hash_embedder)
    assert settings.corpus.manifest.read_bytes() == before


def test_one_bad_file_adds_none(settings, hash_embedder, page, tmp_path):
    run_ingest(settings, embedder=hash_embedder)
    before = settings.corpus.manifest.read_bytes()
    files = sorted(p.name for p in settings.corpus.manifest.parent.iterdir())
    bad = tmp_path / "incoming" / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(CorpusError, match="broken.pdf: not a readable PDF"):
        add_papers(settings, [NewPaper(page), NewPaper(bad)], embedder=hash_embedder)
    assert settings.corpus.manifest.read_bytes() == before
    assert sorted(p.name for p in settings.corpus.manifest.parent.iterdir()) == files
    assert _documents(settings, hash_embedder) == ["weitz-2025-sco"]


def test_a_failed_ingest_puts_the_manifest_and_files_back(
    settings, hash_embedder, page, monkeypatch
):
    run_ingest(settings, embedder=hash_embedder)
    before = settings.corpus.manifest.read_bytes()

    def broken(*args, **kwargs):
        raise CorpusError("the index store failed")

    monkeypatch.setattr("ingest.library.run_ingest", broken)
    with pytest.raises(CorpusError, match="the index store failed"):
        add_papers(settings, [NewPaper(page)], embedder=hash_embedder)
    assert settings.corpus.manifest.read_bytes() == before
    assert not (settings.corpus.manifest.parent / "csto-notes.html").exists()


def test_an_unknown_format_is_refused_by_name(settings, hash_embedder, tmp_path):
    slides = tmp_path / "deck.pptx"
    slides.write_bytes(b"PK\x03\x04")
    with pytest.raises(CorpusError, match=r"deck.pptx: unknown format"):
        add_papers(settings, [NewPaper(slides)], embedder=hash_embedder)


def test_a_paper_is_removed_with_its_file(settings, hash_embedder, page):
    add_papers(settings, [NewPaper(page)], embedder=hash_embedder)
    remove_paper(settings, "csto-notes", embedder=hash_embedder)
    assert [d["id"] for d in _manifest(settings)["documents"]] == ["weitz-2025-sco"]
    assert not (settings.corpus.manifest.parent / "csto-notes.html").exists()
    assert _documents(settings, hash_embedder) == ["weitz-2025-sco"]
    with pytest.raises(CorpusError, match="no paper with id 'csto-notes'"):
        remove_paper(settings, "csto-notes", embedder=hash_embedder)
    with pytest.raises(CorpusError, match="the only paper"):
        remove_paper(settings, "weitz-2025-sco", embedder=hash_embedder)


def test_a_file_over_the_size_limit_is_refused(settings, hash_embedder, page, monkeypatch):
    monkeypatch.setattr("ingest.corpus.MAX_FILE_BYTES", 100)
    with pytest.raises(CorpusError, match=r"csto-notes.html: \d[\d,]* bytes, over the 100-byte"):
        add_papers(settings, [NewPaper(page)], embedder=hash_embedder)


def test_a_paper_once_read_is_not_read_again_until_it_or_the_readers_change(
    settings, hash_embedder, page, monkeypatch
):
    import ingest.corpus as corpus

    add_papers(settings, [NewPaper(page)], embedder=hash_embedder)
    folder = settings.index.extracted_folder
    assert len(list(folder.glob("*.json"))) == 1
    read = []
    real = corpus.extract

    def counting(data, fmt, *, name):
        read.append(fmt)
        return real(data, fmt, name=name)

    monkeypatch.setattr(corpus, "extract", counting)
    run_ingest(settings, embedder=hash_embedder, force=True)
    assert "html" not in read
    # New readers read it again, and the text the old ones read is dropped.
    monkeypatch.setattr(corpus, "readers_version", lambda: "changed")
    run_ingest(settings, embedder=hash_embedder, force=True)
    assert read.count("html") == 1
    assert [p.name.split("-")[-1] for p in folder.glob("*.json")] == ["changed.json"]
    remove_paper(settings, "csto-notes", embedder=hash_embedder)
    assert not list(folder.glob("*.json"))
