"""Segments: adding, changing or removing a paper writes that paper only, the
generations share the rest, and readers never see a paper a generation no
longer has. Real embedded Chroma, deterministic fake embeddings."""

import json

import numpy as np
import pytest

from ingest.index.reader import IndexReader
from ingest.index.store import IndexStore, connect
from ingest.pipeline import MAX_SEGMENTS, prepare, run_ingest


def paper(n: int, topic: str) -> str:
    return f"""# Paper {n} on {topic}

## Findings

Paper {n} finds that {topic} grew fastest in the spring of 20{10 + n}.<sup>1</sup>

A second paragraph of paper {n} weighs the {topic} figures against the year before.

## Endnotes

- 1 "Report {n}," Example Outlet, May 1, 2025, <https://example.org/{n}>.
"""


TOPICS = ["grain exports", "rail freight", "pipeline gas", "port fees", "wheat prices"] * 4


def write_papers(corpus_dir, numbers, *, memo: bool = True, edited: int | None = None):
    """A manifest of the memo (optional) and papers `numbers`; `edited` gets a new paragraph."""
    manifest = json.loads((corpus_dir / "manifest.json").read_text())
    documents = [d for d in manifest["documents"] if d["id"] == "weitz-2025-sco"] if memo else []
    for n in numbers:
        text = paper(n, TOPICS[n])
        if n == edited:
            text = text.replace(
                "## Endnotes", f"An added paragraph on {TOPICS[n]} revisions.\n\n## Endnotes"
            )
        (corpus_dir / f"paper-{n}.md").write_text(text)
        documents.append({"id": f"paper-{n}", "file": f"paper-{n}.md", "title": f"Paper {n}"})
    manifest["documents"] = documents
    (corpus_dir / "manifest.json").write_text(json.dumps(manifest))


def store_of(settings) -> IndexStore:
    return IndexStore(connect(settings.index), settings.index.collection_prefix)


def snapshot_of(settings, embedder):
    return IndexReader(settings.index, embedder.ref, embedder.dim).snapshot()


def searchable(settings, embedder) -> set[str]:
    """The documents a broad vector query over the whole index reaches."""
    snapshot = snapshot_of(settings, embedder)
    vector = np.ones(embedder.dim, dtype=np.float32) / np.sqrt(embedder.dim)
    found = snapshot.query(vector.tolist(), 10_000)
    return {snapshot.get([pid])[0].document_id for pid in found}


def expected_ids(settings) -> set[str]:
    return {p.id for item in prepare(settings) for p in item.passages}


def test_adding_a_paper_writes_that_paper_only(settings, corpus_dir, hash_embedder):
    write_papers(corpus_dir, [1, 2])
    first = run_ingest(settings, embedder=hash_embedder)
    store = store_of(settings)
    (base,) = store.info(first.collection).segments

    write_papers(corpus_dir, [1, 2, 3])
    added = run_ingest(settings, embedder=hash_embedder)
    segments = store.info(added.collection).segments
    assert segments[0] == base and len(segments) == 2
    assert store.segment_documents(segments[1]) == ["paper-3"]
    paper_3 = next(d for d in prepare(settings) if d.source.meta.id == "paper-3")
    assert store.segment_passages(segments[1]) == len(paper_3.passages)
    assert added.embedded == len(paper_3.passages)
    assert {r["id"] for r in store.records(added.collection)} == expected_ids(settings)
    assert searchable(settings, hash_embedder) == {
        "weitz-2025-sco",
        "paper-1",
        "paper-2",
        "paper-3",
    }


def test_a_changed_paper_is_read_in_its_new_version_only(settings, corpus_dir, hash_embedder):
    write_papers(corpus_dir, [1, 2])
    run_ingest(settings, embedder=hash_embedder)
    write_papers(corpus_dir, [1, 2], edited=2)
    changed = run_ingest(settings, embedder=hash_embedder)
    assert {d.id: d.status for d in changed.documents}["paper-2"] == "changed"
    new = next(d for d in prepare(settings) if d.source.meta.id == "paper-2")
    assert changed.embedded == 1  # the added paragraph; the rest reuse their vectors
    store = store_of(settings)
    base, fresh = store.info(changed.collection).segments
    assert store.segment_documents(fresh) == ["paper-2"]
    assert "paper-2" in store.segment_documents(base)  # the old version stays written...
    ids = expected_ids(settings)
    assert {r["id"] for r in store.records(changed.collection)} == ids
    snapshot = snapshot_of(settings, hash_embedder)
    vector = np.ones(hash_embedder.dim, dtype=np.float32) / np.sqrt(hash_embedder.dim)
    found = set(snapshot.query(vector.tolist(), 10_000))
    assert found == ids  # ...but no reader reaches it
    assert {p.id for p in snapshot.passages()} == ids
    assert len([p for p in snapshot.passages() if p.document_id == "paper-2"]) == len(new.passages)


def test_a_removed_paper_writes_no_segment_and_is_not_read(settings, corpus_dir, hash_embedder):
    write_papers(corpus_dir, [1, 2, 3])
    first = run_ingest(settings, embedder=hash_embedder)
    write_papers(corpus_dir, [1, 3])
    removed = run_ingest(settings, embedder=hash_embedder)
    assert removed.embedded == 0
    store = store_of(settings)
    assert store.info(removed.collection).segments == store.info(first.collection).segments
    assert searchable(settings, hash_embedder) == {"weitz-2025-sco", "paper-1", "paper-3"}
    snapshot = snapshot_of(settings, hash_embedder)
    gone = [pid for pid in expected_ids(settings) if pid.startswith("paper-2-")]
    assert not gone and not [p for p in snapshot.passages() if p.document_id == "paper-2"]
    scoped = snapshot.query([1.0] * hash_embedder.dim, 50, frozenset({"paper-3"}))
    assert scoped and all(pid.startswith("paper-3-") for pid in scoped)


def test_many_small_additions_are_merged(settings, corpus_dir, hash_embedder):
    counts = []
    for last in range(1, MAX_SEGMENTS + 3):
        write_papers(corpus_dir, range(1, last + 1), memo=False)
        report = run_ingest(settings, embedder=hash_embedder)
        store = store_of(settings)
        counts.append(len(store.info(report.collection).segments))
        assert report.embedded == len(prepare(settings)[-1].passages)  # vectors travel with a merge
    assert max(counts) <= MAX_SEGMENTS
    assert min(counts[MAX_SEGMENTS - 1 :]) <= MAX_SEGMENTS // 2
    assert {r["id"] for r in store.records(report.collection)} == expected_ids(settings)
    assert searchable(settings, hash_embedder) == {f"paper-{n}" for n in range(1, MAX_SEGMENTS + 3)}


def test_a_mostly_stale_segment_is_rewritten(settings, corpus_dir, hash_embedder):
    write_papers(corpus_dir, [1, 2, 3, 4, 5], memo=False)
    first = run_ingest(settings, embedder=hash_embedder)
    write_papers(corpus_dir, [1, 2], memo=False)  # three of five papers gone
    report = run_ingest(settings, embedder=hash_embedder)
    store = store_of(settings)
    (segment,) = store.info(report.collection).segments
    assert segment not in store.info(first.collection).segments
    assert sorted(store.segment_documents(segment)) == ["paper-1", "paper-2"]
    assert report.embedded == 0


def test_segments_no_kept_generation_reads_are_removed(settings, corpus_dir, hash_embedder):
    write_papers(corpus_dir, [1])
    run_ingest(settings, embedder=hash_embedder)
    for _ in range(settings.index.keep_generations + 1):
        run_ingest(settings, embedder=hash_embedder, force=True)
    store = store_of(settings)
    read = {s for g in store.generations() for s in store.info(g).segments}
    assert set(store.segments()) == read
    assert len(store.generations()) == settings.index.keep_generations


def test_a_failed_ingest_leaves_no_segment_behind(settings, corpus_dir, hash_embedder, monkeypatch):
    write_papers(corpus_dir, [1])
    first = run_ingest(settings, embedder=hash_embedder)
    write_papers(corpus_dir, [1, 2])

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(IndexStore, "create_generation_record", fail)
    with pytest.raises(Exception, match="No space left"):
        run_ingest(settings, embedder=hash_embedder)
    store = store_of(settings)
    assert store.active_name() == first.collection
    assert store.segments() == list(store.info(first.collection).segments)


def test_a_query_gives_each_passage_its_cosine_nearest_first_across_segments(
    settings, corpus_dir, hash_embedder
):
    write_papers(corpus_dir, [1, 2])
    run_ingest(settings, embedder=hash_embedder)
    write_papers(corpus_dir, [1, 2, 3])
    run_ingest(settings, embedder=hash_embedder)
    snapshot = snapshot_of(settings, hash_embedder)
    assert len(snapshot.segments) == 2
    vector = np.asarray(hash_embedder.embed_query("grain exports in the spring"), dtype=np.float32)
    found = snapshot.query(vector.tolist(), 5)
    stored = snapshot.embeddings(found)
    for pid, similarity in found.items():
        v = stored[pid]
        cosine = float(v @ vector / (np.linalg.norm(v) * np.linalg.norm(vector)))
        assert similarity == pytest.approx(cosine, abs=1e-5)
    assert list(found.values()) == sorted(found.values(), reverse=True)
    everything = snapshot.query(vector.tolist(), 10_000)
    assert list(found) == list(everything)[:5]
    assert {snapshot.get([pid])[0].document_id for pid in everything} >= {"paper-1", "paper-3"}
