"""The lexical index saved with each generation: built at ingest, read
memory-mapped, rebuilt when missing or stale, removed with its generation."""

from __future__ import annotations

import mmap
from dataclasses import replace

import numpy as np
from fakes import fake_embedder

from ingest.index import lexical
from ingest.index.lexical import LexicalIndex
from ingest.index.reader import IndexReader, Snapshot
from ingest.index.store import IndexStore, connect
from ingest.pipeline import run_ingest
from ingest.terms import Tokenizer

PASSAGES = [
    ("a-1", "a", "Peace Mission 2021 drew about 4,000 troops to Orenburg."),
    ("a-2", "a", "The SCO charter was signed in 2002."),
    ("b-1", "b", "Rail freight between Almaty and Urumqi grew."),
]


def mapped(array: np.ndarray) -> bool:
    """Whether the array's memory is a mapped file (through the arrays it views)."""
    base = array
    while base is not None:
        if isinstance(base, np.memmap | mmap.mmap):
            return True
        base = getattr(base, "base", None)
    return False


def test_a_saved_index_reads_back_memory_mapped_with_the_same_scores(tmp_path):
    tokenize = Tokenizer()
    built = LexicalIndex.build(PASSAGES, tokenize)
    built.save(tmp_path / "g1", "stamp")
    loaded = LexicalIndex.load(tmp_path / "g1", "stamp")
    assert loaded is not None
    assert mapped(loaded.bm25.scores["data"]) and mapped(loaded.document_of)
    query = tokenize("How many troops took part in Peace Mission 2021?")
    assert np.allclose(built.scores(query), loaded.scores(query))
    assert loaded.scores(query).argmax() == 0
    assert loaded.df(tokenize("freight")[0]) == 1 and loaded.df("unheard") == 0
    assert list(loaded.in_documents(frozenset({"b"}))) == [0.0, 0.0, 1.0]
    assert not loaded.scores(["unheard"]).any()


def test_an_index_saved_for_another_generation_or_tokenizer_is_not_used(tmp_path):
    LexicalIndex.build(PASSAGES, Tokenizer()).save(tmp_path / "g1", "old-stamp")
    assert LexicalIndex.load(tmp_path / "g1", "new-stamp") is None
    assert LexicalIndex.load(tmp_path / "nowhere", "new-stamp") is None


def test_ingest_saves_the_generations_index_and_removes_it_with_the_generation(settings):
    embedder = fake_embedder()
    folder = settings.index.lexical_folder
    first = run_ingest(settings, embedder=embedder)
    assert (folder / first.collection / "lexical.json").is_file()
    names = []
    for _ in range(settings.index.keep_generations + 1):
        names.append(run_ingest(settings, embedder=embedder, force=True).collection)
    kept = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
    store = IndexStore(connect(settings.index), settings.index.collection_prefix)
    assert kept == set(store.generations()) and first.collection not in kept
    # What ingest saved is what the service would build from the passages.
    reader = IndexReader(settings.index, embedder.ref, embedder.dim)
    snapshot = reader.snapshot()
    saved = LexicalIndex.load(folder / names[-1], lexical.fingerprint(names[-1]))
    assert saved is not None
    built = LexicalIndex.build(
        ((p.id, p.document_id, p.search_text()) for p in snapshot.passages()), Tokenizer()
    )
    assert saved.ids == built.ids
    query = Tokenizer()("Which exercises did the SCO hold in 2021?")
    assert np.allclose(saved.scores(query), built.scores(query))


def test_a_missing_index_is_built_from_the_passages_and_saved(settings):
    embedder = fake_embedder()
    name = run_ingest(settings, embedder=embedder).collection
    folder = settings.index.lexical_folder
    lexical.remove_generations(folder, [name])
    snapshot = IndexReader(settings.index, embedder.ref, embedder.dim).snapshot()
    opened = lexical.open_generation(folder, name, snapshot.passages, Tokenizer())
    assert len(opened) == snapshot.info.passage_count
    assert LexicalIndex.load(folder / name, lexical.fingerprint(name)) is not None


def test_sentence_vectors_are_read_for_the_passages_asked_only(settings):
    embedder = fake_embedder()
    run_ingest(settings, embedder=embedder)
    snapshot = IndexReader(settings.index, embedder.ref, embedder.dim).snapshot()
    first, second = snapshot.passages()[:2]
    got = snapshot.sentence_vectors([first.id])
    assert list(got) == [first.id] and got[first.id].shape[1] == embedder.dim
    both = snapshot.sentence_vectors([second.id, first.id])
    assert set(both) == {first.id, second.id} and both[first.id] is got[first.id]


def test_endnotes_of_several_hits_are_read_in_one_query_and_kept(settings):
    embedder = fake_embedder()
    run_ingest(settings, embedder=embedder)
    snapshot = IndexReader(settings.index, embedder.ref, embedder.dim).snapshot()
    citing = [p for p in snapshot.passages() if p.endnotes][:3]
    assert len(citing) == 3
    reads = []
    (segment,) = snapshot.segments
    real_get = segment.passages.get

    class Counting:
        def __getattr__(self, name):
            return getattr(segment.passages, name)

        def get(self, **kwargs):
            reads.append(kwargs)
            return real_get(**kwargs)

    snapshot = Snapshot(snapshot.info, [replace(segment, passages=Counting())], snapshot.documents)
    wanted: dict[str, list[int]] = {}
    for p in citing:
        wanted.setdefault(p.document_id, []).extend(p.endnotes)
    snapshot.load_endnotes(wanted)
    assert len(reads) == 1
    for p in citing:
        notes = snapshot.endnotes(p.document_id, p.endnotes)
        assert [n.endnote_number for n in notes] == list(p.endnotes)
    assert snapshot.endnotes(citing[0].document_id, (9999,)) == []
    assert len(reads) == 2  # only the unknown number was asked for
