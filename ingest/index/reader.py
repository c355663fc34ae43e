"""Reading the index: a snapshot of the active generation (its segments' passages
and sentence vectors, its documents), reopened when ingest switches generations."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ingest.chunk import document_of
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
# The passages (about 2 kB each) and passage vectors (1.5 kB) a snapshot keeps at most.
PASSAGE_CACHE = 4096


@dataclass(frozen=True)
class Segment:
    """A segment opened for reading, and the documents of it the generation has."""

    name: str
    passages: Any  # the Chroma collection
    sentences: Any
    documents: frozenset[str]
    stale: frozenset[str]  # documents written into it that the generation no longer has

    def where(self, scope: frozenset[str] | None = None) -> dict[str, Any] | None:
        """The filter that keeps a query to the generation's documents (and to
        `scope`, when given): None when nothing needs leaving out."""
        if scope is not None:
            return {"document_id": {"$in": sorted(scope & self.documents)}}
        if self.stale:
            return {"document_id": {"$nin": sorted(self.stale)}}
        return None


@dataclass
class Snapshot:
    """The active generation, opened for reading."""

    info: IndexInfo
    segments: list[Segment]
    documents: dict[str, DocumentRecord]
    _by_document: dict[str, Segment] = field(default_factory=dict, repr=False)
    _vectors: OrderedDict[str, Any] = field(default_factory=OrderedDict, repr=False)
    _embeddings: OrderedDict[str, Any] = field(default_factory=OrderedDict, repr=False)
    _passages: OrderedDict[str, StoredPassage] = field(default_factory=OrderedDict, repr=False)
    _notes: OrderedDict[tuple[str, int], StoredPassage | None] = field(
        default_factory=OrderedDict, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._by_document = {d: s for s in self.segments for d in s.documents}

    def _grouped(self, passage_ids: Iterable[str]) -> list[tuple[Segment, list[str]]]:
        """Passage ids by the segment that holds them (ids of no document of the
        generation are left out)."""
        groups: dict[str, tuple[Segment, list[str]]] = {}
        for pid in passage_ids:
            document = document_of(pid)
            segment = self._by_document.get(document) if document else None
            if segment is not None:
                groups.setdefault(segment.name, (segment, []))[1].append(pid)
        return list(groups.values())

    def query(
        self, vector: Sequence[float], n: int, documents: frozenset[str] | None = None
    ) -> dict[str, float]:
        """The n passages nearest to `vector` (of `documents`, when given), with
        their cosine similarity, nearest first. Each segment's collection is asked
        for ids and distances only: the passages' text and metadata come from
        the snapshot, so reading them again (and making nodes of them) is waste."""
        found: dict[str, float] = {}
        for segment in self.segments:
            if documents is not None and not documents & segment.documents:
                continue
            where = segment.where(documents)
            result = segment.passages.query(
                query_embeddings=[list(vector)],
                n_results=n,
                include=["distances"],
                **({"where": where} if where else {}),
            )
            distances = (result["distances"] or [[]])[0]
            # The collections use cosine distance: 1 - cosine similarity.
            for pid, distance in zip(result["ids"][0], distances, strict=True):
                found[pid] = 1.0 - float(distance)
        nearest = sorted(found, key=found.__getitem__, reverse=True)[:n]
        return {pid: found[pid] for pid in nearest}

    def embeddings(self, passage_ids: Iterable[str]) -> dict[str, Any]:
        """The passages' own vectors; the recently read are kept."""
        import numpy as np

        wanted = list(dict.fromkeys(passage_ids))
        found = self._recall(self._embeddings, wanted)
        read: dict[str, Any] = {}
        for segment, ids in self._grouped(pid for pid in wanted if pid not in found):
            got = segment.passages.get(ids=ids, include=["embeddings"])
            for pid, vector in zip(got["ids"], got["embeddings"], strict=True):
                read[pid] = np.asarray(vector, dtype=np.float32)
        self._keep(self._embeddings, read, PASSAGE_CACHE)
        return found | read

    def _recall(self, cache: OrderedDict[str, Any], wanted: Iterable[str]) -> dict[str, Any]:
        """What `cache` holds of `wanted`, marked as recently used."""
        with self._lock:
            found = {key: cache[key] for key in wanted if key in cache}
            for key in found:
                cache.move_to_end(key)
        return found

    def _keep(self, cache: OrderedDict[str, Any], read: dict[str, Any], limit: int) -> None:
        """Add what was just read to `cache`, dropping the least recently used past `limit`."""
        if not read:
            return
        with self._lock:
            cache.update(read)
            while len(cache) > limit:
                cache.popitem(last=False)

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
        grouped: dict[str, list[tuple[int, Any]]] = {}
        for segment, missing in self._grouped(pid for pid in wanted if pid not in found):
            got = segment.sentences.get(
                where={"passage_id": {"$in": missing}}, include=["embeddings", "metadatas"]
            )
            for meta, vector in zip(got["metadatas"], got["embeddings"], strict=True):
                grouped.setdefault(str(meta["passage_id"]), []).append(
                    (int(meta["position"]), vector)
                )
        with self._lock:
            for pid, rows in grouped.items():
                rows.sort(key=lambda row: row[0])
                found[pid] = np.asarray([vector for _, vector in rows], dtype=np.float32)
                self._vectors[pid] = found[pid]
            while len(self._vectors) > SENTENCE_CACHE:
                self._vectors.popitem(last=False)
        return found

    def known_as(self, document_id: str) -> str:
        """What a paper is known by: its title, author, publisher and series
        ("CRS R48910"), which a question may name without any passage doing so."""
        record = self.documents.get(document_id)
        if record is None:
            return ""
        fields = (record.title, record.author, record.publisher, record.series)
        return " ".join(f for f in fields if f)

    def get(self, ids: list[str]) -> list[StoredPassage]:
        """The passages with these ids, in that order (unknown ids left out); the
        recently read are kept."""
        if not ids:
            return []
        by_id = self._recall(self._passages, ids)
        read: dict[str, StoredPassage] = {}
        for segment, missing in self._grouped(p for p in dict.fromkeys(ids) if p not in by_id):
            got = segment.passages.get(ids=missing, include=["documents", "metadatas"])
            records = zip(got["documents"], got["metadatas"], strict=True)
            read.update(
                (str(meta["passage_id"]), StoredPassage.from_record(doc, meta))
                for doc, meta in records
            )
        self._keep(self._passages, read, PASSAGE_CACHE)
        by_id.update(read)
        return [by_id[i] for i in ids if i in by_id]

    def passages(self) -> list[StoredPassage]:
        """Every passage of the generation (read whole: for building, not searching)."""
        return [
            StoredPassage.from_record(r["document"], r["metadata"])
            for segment in self.segments
            for r in iter_records(segment.passages, where=segment.where())
        ]

    def passage(self, passage_id: str) -> StoredPassage:
        found = self.get([passage_id])
        if not found:
            raise PassageNotFoundError(f"no passage with id '{passage_id}'")
        return found[0]

    def following(self, passage: StoredPassage) -> StoredPassage | None:
        """The passage after this one in its paper, if any."""
        segment = self._by_document.get(passage.document_id)
        if segment is None:
            return None
        got = segment.passages.get(
            where={
                "$and": [
                    {"document_id": passage.document_id},
                    {"order": passage.order + 1},
                ]
            },
            include=["documents", "metadatas"],
        )
        records = list(zip(got["documents"], got["metadatas"], strict=True))
        return StoredPassage.from_record(*records[0]) if records else None

    def endnotes(self, document_id: str, numbers: tuple[int, ...]) -> list[StoredPassage]:
        """Endnote passages of a document by number, in the order asked."""
        if not numbers:
            return []
        self.load_endnotes({document_id: numbers})
        with self._lock:
            found = [self._notes.get((document_id, n)) for n in numbers]
        return [note for note in found if note is not None]

    def load_endnotes(self, wanted: Mapping[str, Iterable[int]]) -> None:
        """Read the endnotes of several papers in one query per segment (the ones
        not kept from an earlier read); a number a paper has no note for is
        remembered as such."""
        with self._lock:
            missing = {(d, n) for d, ns in wanted.items() for n in ns if (d, n) not in self._notes}
        if not missing:
            return
        by_segment: dict[str, tuple[Segment, set[tuple[str, int]]]] = {}
        for document, number in missing:
            segment = self._by_document.get(document)
            if segment is not None:
                by_segment.setdefault(segment.name, (segment, set()))[1].add((document, number))
        found = {}
        for segment, keys in by_segment.values():
            got = segment.passages.get(
                where={
                    "$and": [
                        {"document_id": {"$in": sorted({d for d, _ in keys})}},
                        {"kind": "endnote"},
                        {"endnote_number": {"$in": sorted({n for _, n in keys})}},
                    ]
                },
                include=["documents", "metadatas"],
            )
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

    `snapshot()` is safe to call from several threads. It reads the registry
    at most once every `follow_s` seconds, so a new generation written by
    another process is served within that time; `invalidate()` (after an
    ingest in this process, or a collection gone) makes the next call read it.
    """

    def __init__(self, settings: IndexSettings, model: ModelRef, dim: int) -> None:
        self.settings = settings
        self.model = model
        self.dim = dim
        self._client: Any = None
        self._store: IndexStore | None = None
        self._snapshot: Snapshot | None = None
        self._read_at = 0.0  # when the registry was last read (monotonic)
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
            fresh = time.monotonic() - self._read_at < self.settings.follow_s
            if self._snapshot is not None and fresh:
                return self._snapshot
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
            if self._snapshot is None or self._snapshot.info.collection != name:
                self._snapshot = self._open(store, name)
            self._read_at = time.monotonic()
            return self._snapshot

    def _open(self, store: IndexStore, name: str) -> Snapshot:
        try:
            info = store.info(name)
        except IndexMismatchError:
            raise
        except Exception as exc:
            raise IndexNotReadyError(f"the active index {name} cannot be opened: {exc}") from exc
        self.check_compatible(info)
        if info.passage_count == 0:
            raise IndexNotReadyError(f"the active index {name} is empty: run `memoqa ingest`")
        documents = {d.id: d for d in store.documents(name)}
        segments = []
        try:
            for segment in info.segments:
                held = frozenset(d.id for d in documents.values() if d.segment == segment)
                written = frozenset(store.segment_documents(segment))
                passages, sentences = store.segment(segment)
                segments.append(Segment(segment, passages, sentences, held, written - held))
        except Exception as exc:
            raise IndexNotReadyError(
                f"the active index {name} cannot be opened: segment {segment}: {exc}"
            ) from exc
        return Snapshot(info, segments, documents)

    def _reset(self) -> None:
        self._store = None
        self._snapshot = None
        if not self.settings.chroma_host:
            forget_clients()

    def invalidate(self) -> None:
        """Forget the open snapshot (after its collection vanished)."""
        with self._lock:
            self._snapshot = None
