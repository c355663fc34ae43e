"""Ingest on a real embedded Chroma in a temp dir (deterministic fake embeddings)."""

import json

import pytest
from fakes import FailingEmbedder, fake_embedder

from ingest.errors import CorpusError, IndexMismatchError, IndexNotReadyError, IngestLockedError
from ingest.index.reader import IndexReader
from ingest.index.store import IndexStore, connect
from ingest.pipeline import ingest_lock, prepare, run_ingest

SECOND = """# A Second Paper

## Findings

The first finding is about grain exports through the Caspian ports.<sup>1</sup>

The second finding concerns rail freight between Almaty and Urumqi.

## Endnotes

- 1 "Grain Report," Example Outlet, May 1, 2025, <https://example.org/grain>.
"""


@pytest.fixture
def two_docs(corpus_dir):
    (corpus_dir / "second.md").write_text(SECOND)
    manifest = json.loads((corpus_dir / "manifest.json").read_text())
    manifest["documents"].append(
        {"id": "second-paper", "file": "second.md", "title": "A Second Paper"}
    )
    (corpus_dir / "manifest.json").write_text(json.dumps(manifest))
    return corpus_dir


def store_of(settings):
    return IndexStore(connect(settings.index), settings.index.collection_prefix)


def ids_in(settings):
    store = store_of(settings)
    return {r["id"] for r in store.records(store.active_name())}


def test_ingest_then_rerun_changes_nothing(settings, two_docs, hash_embedder):
    first = run_ingest(settings, embedder=hash_embedder)
    assert first.changed and first.embedded == first.passages
    assert {d.id: d.status for d in first.documents} == {
        "weitz-2025-sco": "added",
        "second-paper": "added",
    }
    expected = {p.id for item in prepare(settings) for p in item.passages}
    assert ids_in(settings) == expected

    again = run_ingest(settings, embedder=hash_embedder)
    assert not again.changed
    assert again.collection == first.collection and again.embedded == 0
    assert store_of(settings).generations() == [first.collection]
    assert ids_in(settings) == expected


def test_forced_rebuild_keeps_ids_and_reuses_embeddings(settings, two_docs, hash_embedder):
    first = run_ingest(settings, embedder=hash_embedder)
    before = ids_in(settings)
    forced = run_ingest(settings, embedder=hash_embedder, force=True)
    assert forced.changed and forced.collection != first.collection
    assert forced.embedded == 0 and forced.reused == forced.passages
    assert ids_in(settings) == before


def test_changed_document_replaces_its_passages(settings, two_docs, hash_embedder):
    run_ingest(settings, embedder=hash_embedder)
    before = ids_in(settings)
    path = two_docs / "second.md"
    path.write_text(SECOND.replace("rail freight", "road haulage"))
    report = run_ingest(settings, embedder=hash_embedder)
    statuses = {d.id: d.status for d in report.documents}
    assert statuses == {"weitz-2025-sco": "unchanged", "second-paper": "changed"}
    after = ids_in(settings)
    assert len(before - after) == 1 and len(after - before) == 1
    assert report.embedded <= 2  # the changed paragraph (and the endnote text citing nothing new)
    store = store_of(settings)
    texts = [r["document"] for r in store.records(store.active_name())]
    assert any("road haulage" in t for t in texts) and not any("rail freight" in t for t in texts)


def test_a_file_read_otherwise_is_indexed_again(settings, two_docs, hash_embedder, monkeypatch):
    """The same file read as another text (a better reader, after an upgrade)
    replaces its passages: the index follows what the file reads as, not only
    its bytes."""
    import ingest.corpus

    run_ingest(settings, embedder=hash_embedder)
    decode = ingest.corpus._decode

    def read_otherwise(data: bytes, *, name: str) -> str:
        return decode(data, name=name).replace("rail freight", "road haulage")

    monkeypatch.setattr(ingest.corpus, "_decode", read_otherwise)
    report = run_ingest(settings, embedder=hash_embedder)
    assert report.changed
    store = store_of(settings)
    texts = [r["document"] for r in store.records(store.active_name())]
    assert any("road haulage" in t for t in texts) and not any("rail freight" in t for t in texts)
    assert not run_ingest(settings, embedder=hash_embedder).changed


def test_removed_document_disappears(settings, two_docs, hash_embedder):
    run_ingest(settings, embedder=hash_embedder)
    manifest = json.loads((two_docs / "manifest.json").read_text())
    manifest["documents"] = [d for d in manifest["documents"] if d["id"] != "second-paper"]
    (two_docs / "manifest.json").write_text(json.dumps(manifest))
    report = run_ingest(settings, embedder=hash_embedder)
    assert {d.id: d.status for d in report.documents}["second-paper"] == "removed"
    assert not any(pid.startswith("second-paper-") for pid in ids_in(settings))
    store = store_of(settings)
    assert [d.id for d in store.documents(store.active_name())] == ["weitz-2025-sco"]


def test_bad_input_leaves_the_index_as_it_was(settings, two_docs, hash_embedder):
    first = run_ingest(settings, embedder=hash_embedder)
    before = ids_in(settings)
    (two_docs / "second.md").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(CorpusError, match="second.md"):
        run_ingest(settings, embedder=hash_embedder)
    assert store_of(settings).active_name() == first.collection
    assert ids_in(settings) == before


def test_failure_mid_ingest_leaves_the_previous_index_visible(settings, two_docs, hash_embedder):
    first = run_ingest(settings, embedder=hash_embedder)
    before = ids_in(settings)
    (two_docs / "second.md").write_text(SECOND.replace("grain", "cotton"))
    # A different model forces every passage to be embedded, so the failure hits mid-way.
    failing = FailingEmbedder(fail_after=1)
    object.__setattr__(failing, "ref", fake_embedder(fingerprint="other").ref)
    with pytest.raises(RuntimeError, match="embedding failed"):
        run_ingest(settings, embedder=failing)
    store = store_of(settings)
    assert store.active_name() == first.collection
    assert store.generations() == [first.collection]  # nothing half-written left behind
    assert ids_in(settings) == before


def test_reader_follows_a_new_generation(settings, two_docs, hash_embedder):
    run_ingest(settings, embedder=hash_embedder)
    every_time = settings.index.model_copy(update={"follow_s": 0.0})
    reader = IndexReader(every_time, hash_embedder.ref, hash_embedder.dim)
    first = reader.snapshot()
    assert set(first.documents) == {"weitz-2025-sco", "second-paper"}
    (two_docs / "second.md").write_text(SECOND + "\n## More\n\nA new section.\n")
    run_ingest(settings, embedder=hash_embedder)
    assert reader.snapshot().info.collection != first.info.collection


def test_reader_reads_the_registry_once_per_interval(settings, two_docs, hash_embedder):
    run_ingest(settings, embedder=hash_embedder)
    reader = IndexReader(
        settings.index.model_copy(update={"follow_s": 60.0}), hash_embedder.ref, hash_embedder.dim
    )
    first = reader.snapshot()
    (two_docs / "second.md").write_text(SECOND + "\n## More\n\nA new section.\n")
    second = run_ingest(settings, embedder=hash_embedder)
    assert reader.snapshot() is first  # trusted for follow_s
    reader.invalidate()  # what an ingest through the service does
    assert reader.snapshot().info.collection == second.collection != first.info.collection


def test_reader_refuses_an_index_built_with_another_model(settings, hash_embedder):
    run_ingest(settings, embedder=hash_embedder)
    other = fake_embedder(name="another-model")
    reader = IndexReader(settings.index, other.ref, other.dim)
    with pytest.raises(IndexMismatchError, match="built with embedding model 'fake-hash'"):
        reader.snapshot()


def test_reader_without_index_is_not_ready(settings, hash_embedder):
    reader = IndexReader(settings.index, hash_embedder.ref, hash_embedder.dim)
    with pytest.raises(IndexNotReadyError, match="memoqa ingest"):
        reader.snapshot()


def test_concurrent_ingest_is_refused(settings, hash_embedder):
    with ingest_lock(settings.index.lock_path):
        with pytest.raises(IngestLockedError):
            run_ingest(settings, embedder=hash_embedder)
