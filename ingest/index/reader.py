"""Reading the index: a snapshot of the active generation (its passages, documents
and sentence vectors), reopened when ingest switches generations."""

from __future__ import annotations

import threading
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


@dataclass
class SentenceVectors:
    """Every passage's quotable units (sentences, list lines) and their embeddings."""

    units: dict[str, list[str]]
    vectors: dict[str, Any]  # passage id -> numpy matrix, one row per unit


@dataclass
class Snapshot:
    """The active generation, opened for reading."""

    info: IndexInfo
    collection: Any
    documents: dict[str, DocumentRecord]
    sentence_collection: Any = None
    _sentences: SentenceVectors | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sentences(self) -> SentenceVectors:
        """Loaded once per snapshot (about 1 MB per 150 passages)."""
        import numpy as np

        with self._lock:
            if self._sentences is None:
                grouped: dict[str, list[tuple[int, str, list[float]]]] = {}
                if self.sentence_collection is not None:
                    for r in iter_records(self.sentence_collection, include_embeddings=True):
                        meta = r["metadata"]
                        grouped.setdefault(str(meta["passage_id"]), []).append(
                            (int(meta["position"]), r["document"], list(r["embedding"]))
                        )
                units, vectors = {}, {}
                for pid, rows in grouped.items():
                    rows.sort(key=lambda x: x[0])
                    units[pid] = [text for _, text, _ in rows]
                    vectors[pid] = np.asarray([v for _, _, v in rows], dtype=np.float32)
                self._sentences = SentenceVectors(units, vectors)
            return self._sentences

    def get(self, ids: list[str]) -> list[StoredPassage]:
        if not ids:
            return []
        got = self.collection.get(ids=ids, include=["documents", "metadatas"])
        by_id = {
            pid: StoredPassage.from_record(doc, meta)
            for pid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        }
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
        got = self.collection.get(
            where={
                "$and": [
                    {"document_id": document_id},
                    {"kind": "endnote"},
                    {"endnote_number": {"$in": list(numbers)}},
                ]
            },
            include=["documents", "metadatas"],
        )
        notes = {
            int(meta["endnote_number"]): StoredPassage.from_record(doc, meta)
            for doc, meta in zip(got["documents"], got["metadatas"], strict=True)
        }
        return [notes[n] for n in numbers if n in notes]


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
