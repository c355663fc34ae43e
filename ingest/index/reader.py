"""Reading the index: a snapshot of the active generation (its passages, documents
and sentence vectors), reopened when ingest switches generations."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ingest.embed import ModelRef
from ingest.errors import (
    IndexMismatchError,
    IndexNotReadyError,
    IndexUnavailableError,
    PassageNotFoundError,
)
from ingest.index.records import SCHEMA_VERSION, DocumentRecord, IndexInfo, StoredPassage
from ingest.index.store import IndexStore, connect, describe, forget_clients, iter_records
from ingest.settings import IndexSettings

# The passages whose sentence vectors a snapshot keeps at most (about 10 kB
# each): the ones recently searched, not the whole index.
SENTENCE_CACHE = 2048
# The passages a snapshot keeps at most (about 2 kB each).
PASSAGE_CACHE = 4096


@dataclass
class Snapshot:
    """The active generation, opened for reading."""

    info: IndexInfo
    collection: Any
    documents: dict[str, DocumentRecord]
    sentence_collection: Any = None
    _vectors: OrderedDict[str, Any] = field(default_factory=OrderedDict, repr=False)
    _passages: OrderedDict[str, StoredPassage] = field(default_factory=OrderedDict, repr=False)
    _notes: OrderedDict[tuple[str, int], StoredPassage | None] = field(
        default_factory=OrderedDict, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sentence_vectors(self, passage_ids: Iterable[str]) -> dict[str, Any]:
        """The vectors of these passages' quotable units (sentences, list lines),
        a numpy matrix per passage with one row per unit in order. Only the
        passages asked for are read from the index; the recently used are kept."""
        import numpy as np

        wanted = list(dict.fromkeys(passage_ids))
        with self._lock:
            found = {pid: self._vectors[pid] for pid in wanted if pid in self._vectors}
            for pid in found:
                self._vectors.move_to_end(pid)
        missing = [pid for pid in wanted if pid not in found]
        if not missing or self.sentence_collection is None:
            return found
        got = self.sentence_collection.get(
            where={"passage_id": {"$in": missing}}, include=["embeddings", "metadatas"]
        )
        grouped: dict[str, list[tuple[int, Any]]] = {}
        for meta, vector in zip(got["metadatas"], got["embeddings"], strict=True):
            grouped.setdefault(str(meta["passage_id"]), []).append((int(meta["position"]), vector))
        with self._lock:
            for pid, rows in grouped.items():
                rows.sort(key=lambda row: row[0])
                found[pid] = np.asarray([vector for _, vector in rows], dtype=np.float32)
                self._vectors[pid] = found[pid]
            while len(self._vectors) > SENTENCE_CACHE:
                self._vectors.popitem(last=False)
        return found

    def get(self, ids: list[str]) -> list[StoredPassage]:
        """The passages with these ids, in that order (unknown ids left out); the
        recently read are kept."""
        if not ids:
            return []
        with self._lock:
            by_id = {pid: self._passages[pid] for pid in ids if pid in self._passages}
        missing = [pid for pid in dict.fromkeys(ids) if pid not in by_id]
        if missing:
            got = self.collection.get(ids=missing, include=["documents", "metadatas"])
            records = zip(got["ids"], got["documents"], got["metadatas"], strict=True)
            read = {pid: StoredPassage.from_record(doc, meta) for pid, doc, meta in records}
            by_id.update(read)
            with self._lock:
                self._passages.update(read)
                while len(self._passages) > PASSAGE_CACHE:
                    self._passages.popitem(last=False)
        return [by_id[i] for i in ids if i in by_id]

    def passages(self) -> list[StoredPassage]:
        return [
            StoredPassage.from_record(r["document"], r["metadata"])
            for r in iter_records(self.collection)
        ]

    def passage(self, passage_id: str) -> StoredPassage:
        found = self.get([passage_id])
        if not found:
            raise PassageNotFoundError(f"no passage with id '{passage_id}'")
        return found[0]

    def endnotes(self, document_id: str, numbers: tuple[int, ...]) -> list[StoredPassage]:
        """Endnote passages of a document by number, in the order asked."""
        if not numbers:
            return []
        self.load_endnotes({document_id: numbers})
        with self._lock:
            found = [self._notes.get((document_id, n)) for n in numbers]
        return [note for note in found if note is not None]

    def load_endnotes(self, wanted: Mapping[str, Iterable[int]]) -> None:
        """Read the endnotes of several papers in one query (the ones not kept
        from an earlier read); a number a paper has no note for is remembered
        as such."""
        with self._lock:
            missing = {(d, n) for d, ns in wanted.items() for n in ns if (d, n) not in self._notes}
        if not missing:
            return
        got = self.collection.get(
            where={
                "$and": [
                    {"document_id": {"$in": sorted({d for d, _ in missing})}},
                    {"kind": "endnote"},
                    {"endnote_number": {"$in": sorted({n for _, n in missing})}},
                ]
            },
            include=["documents", "metadatas"],
        )
        found = {}
        for doc, meta in zip(got["documents"], got["metadatas"], strict=True):
            note = StoredPassage.from_record(doc, meta)
            found[(note.document_id, int(meta["endnote_number"]))] = note
        with self._lock:
            for key in missing:
                self._notes[key] = found.get(key)
            while len(self._notes) > PASSAGE_CACHE:
                self._notes.popitem(last=False)


class IndexReader:
    """Opens the active generation and follows the registry when ingest switches it.

    `snapshot()` is cheap when nothing changed (one registry read) and is safe
    to call from several threads.
    """

    def __init__(self, settings: IndexSettings, model: ModelRef, dim: int) -> None:
        self.settings = settings
        self.model = model
        self.dim = dim
        self._client: Any = None
        self._store: IndexStore | None = None
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def _open_store(self) -> IndexStore:
        if self._store is None:
            self._client = connect(self.settings)
            self._store = IndexStore(self._client, self.settings.collection_prefix)
        return self._store

    def check_compatible(self, info: IndexInfo) -> None:
        if info.schema != SCHEMA_VERSION:
            raise IndexMismatchError(
                f"the index ({info.collection}) has schema {info.schema}, this memoqa reads "
                f"schema {SCHEMA_VERSION}: run `memoqa ingest --force`"
            )
        if (
            info.embed_model != self.model.name
            or info.embed_dim != self.dim
            or info.embed_fingerprint != self.model.fingerprint
        ):
            raise IndexMismatchError(
                f"the index was built with embedding model '{info.embed_model}' "
                f"(dim {info.embed_dim}, fingerprint {info.embed_fingerprint}) but the service "
                f"is configured for '{self.model.name}' (dim {self.dim}, fingerprint "
                f"{self.model.fingerprint}); re-run `memoqa ingest` with this model, or set "
                f"MEMOQA_EMBEDDING__MODEL to the index's model"
            )

    def snapshot(self) -> Snapshot:
        with self._lock:
            try:
                store = self._open_store()
                name = store.active_name()
            except (IndexNotReadyError, IndexUnavailableError):
                self._reset()
                raise
            except Exception as exc:
                self._reset()
                raise IndexUnavailableError(
                    f"cannot read {describe(self.settings)}: {exc}"
                ) from exc
            if name is None:
                raise IndexNotReadyError(
                    f"{describe(self.settings)} holds no index yet: run `memoqa ingest`"
                )
            if self._snapshot is not None and self._snapshot.info.collection == name:
                return self._snapshot
            try:
                collection = store.collection(name)
                info = IndexInfo.from_metadata(name, collection.metadata)
            except IndexMismatchError:
                raise
            except Exception as exc:
                raise IndexNotReadyError(
                    f"the active index {name} cannot be opened: {exc}"
                ) from exc
            self.check_compatible(info)
            if collection.count() == 0:
                raise IndexNotReadyError(f"the active index {name} is empty: run `memoqa ingest`")
            documents = {d.id: d for d in store.documents(name)}
            try:
                sentence_collection = store.sentences(name)
            except Exception:  # an index written before sentences were stored
                sentence_collection = None
            self._snapshot = Snapshot(info, collection, documents, sentence_collection)
            return self._snapshot

    def _reset(self) -> None:
        self._store = None
        self._snapshot = None
        if not self.settings.chroma_host:
            forget_clients()

    def invalidate(self) -> None:
        """Forget the open snapshot (after its collection vanished)."""
        with self._lock:
            self._snapshot = None
