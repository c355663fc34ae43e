"""The index: Chroma collections written by ingest and read by the service.

Layout (the same embedded or on a Chroma server):
- `<prefix>-registry` holds one record, `active`, naming the generation in use.
- each ingest writes a new generation: `<prefix>-g<time>-<rand>` with the
  passages and their embeddings (its collection metadata records the
  embedding model and chunking that built it), and `<that>-docs` with one
  record per document.
A generation becomes visible only when the registry is switched to it, after
it is complete, so readers never see a half-written index. The generations
before it are kept (`keep_generations`) so that a reader mid-query never loses
its collection; older ones and any left by an interrupted ingest are removed.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest.chunk import SECTION_SEPARATOR, Passage, search_text
from ingest.embed import ModelRef
from ingest.errors import (
    IndexMismatchError,
    IndexNotReadyError,
    IndexUnavailableError,
    PassageNotFoundError,
)
from ingest.settings import IndexSettings

SCHEMA_VERSION = 1
_ACTIVE = "active"
_DOCS_SUFFIX = "-docs"
_SENTENCES_SUFFIX = "-sentences"
_SUFFIXES = (_DOCS_SUFFIX, _SENTENCES_SUFFIX)
# Records that only carry metadata still need a vector in Chroma.
_PLACEHOLDER_VECTOR = [1.0]


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def describe(settings: IndexSettings) -> str:
    if settings.chroma_host:
        scheme = "https" if settings.chroma_ssl else "http"
        return f"Chroma server {scheme}://{settings.chroma_host}:{settings.chroma_port}"
    return f"embedded Chroma at {settings.path}"


def forget_clients() -> None:
    """Drop chromadb's per-process client cache, so the next connect opens the
    store afresh (after it was repaired, replaced or restarted)."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def connect(settings: IndexSettings, *, create: bool = False) -> Any:
    """A Chroma client: embedded on disk by default, a server when a host is set."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.chroma_host:
            client = chromadb.HttpClient(
                host=settings.chroma_host,
                port=settings.chroma_port,
                ssl=settings.chroma_ssl,
                settings=chroma_settings,
            )
            client.heartbeat()
            return client
        if not create and not settings.path.is_dir():
            raise IndexNotReadyError(f"no index at {settings.path}: run `memoqa ingest` first")
        settings.path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.path), settings=chroma_settings)
    except IndexNotReadyError:
        raise
    except Exception as exc:  # chromadb raises many types for one cause: unreachable
        raise IndexUnavailableError(f"cannot open {describe(settings)}: {exc}") from exc


@dataclass(frozen=True)
class IndexInfo:
    """What built a generation; stored as its collection's metadata."""

    collection: str
    schema: int
    embed_model: str
    embed_fingerprint: str
    embed_dim: int
    chunker: str
    config_fingerprint: str
    corpus_fingerprint: str
    passage_count: int
    document_count: int
    created_at: str

    def to_metadata(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "collection"}
        return {f"memoqa_{k}": v for k, v in data.items()}

    @classmethod
    def from_metadata(cls, collection: str, metadata: dict[str, Any] | None) -> IndexInfo:
        meta = metadata or {}
        try:
            return cls(
                collection=collection,
                **{k: meta[f"memoqa_{k}"] for k in cls.__dataclass_fields__ if k != "collection"},
            )
        except KeyError as exc:
            raise IndexMismatchError(
                f"collection {collection} was not written by this version of memoqa "
                f"(missing {exc}); run `memoqa ingest --force`"
            ) from exc


@dataclass(frozen=True)
class DocumentRecord:
    id: str
    title: str
    author: str | None
    publisher: str | None
    series: str | None
    date: str | None
    url: str | None
    source: str | None
    file: str
    sha256: str
    passage_count: int
    ingested_at: str
    abbreviations: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_metadata(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if key == "id":
                continue
            if isinstance(value, dict | list):
                data[key] = json.dumps(value, ensure_ascii=False)
            elif value is not None:
                data[key] = value
        return data

    @classmethod
    def from_metadata(cls, doc_id: str, meta: dict[str, Any]) -> DocumentRecord:
        return cls(
            id=doc_id,
            title=str(meta.get("title", doc_id)),
            author=meta.get("author"),
            publisher=meta.get("publisher"),
            series=meta.get("series"),
            date=meta.get("date"),
            url=meta.get("url"),
            source=meta.get("source"),
            file=str(meta.get("file", "")),
            sha256=str(meta.get("sha256", "")),
            passage_count=int(meta.get("passage_count", 0)),
            ingested_at=str(meta.get("ingested_at", "")),
            abbreviations=json.loads(meta.get("abbreviations", "{}")),
            warnings=json.loads(meta.get("warnings", "[]")),
        )


# --- passages <-> Chroma records ---------------------------------------------


def passage_metadata(p: Passage, document_title: str, embed_hash: str) -> dict[str, Any]:
    """Flat metadata (Chroma takes scalars only; lists travel as JSON)."""
    return {
        "passage_id": p.id,
        "document_id": p.document_id,
        "document_title": document_title,
        "kind": p.kind,
        "section": p.section_label,
        "endnotes": json.dumps(list(p.endnotes)),
        "spans": json.dumps([list(s) for s in p.spans]),
        "char_start": p.char_start,
        "char_end": p.char_end,
        "order": p.order,
        "repaired": p.repaired,
        "endnote_number": p.endnote_number if p.endnote_number is not None else -1,
        "urls": json.dumps(list(p.urls)),
        "cited_by": json.dumps(list(p.cited_by)),
        "claim": p.claim,
        "embed_hash": embed_hash,
    }


@dataclass(frozen=True)
class StoredPassage:
    """A passage as the index returns it."""

    id: str
    document_id: str
    document_title: str
    kind: str
    section: str
    text: str
    endnotes: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    char_start: int
    char_end: int
    order: int
    endnote_number: int | None
    urls: tuple[str, ...]
    cited_by: tuple[str, ...]
    claim: str

    @classmethod
    def from_record(cls, text: str, meta: dict[str, Any]) -> StoredPassage:
        number = int(meta.get("endnote_number", -1))
        return cls(
            id=str(meta["passage_id"]),
            document_id=str(meta["document_id"]),
            document_title=str(meta.get("document_title", "")),
            kind=str(meta.get("kind", "paragraph")),
            section=str(meta.get("section", "")),
            text=text,
            endnotes=tuple(json.loads(meta.get("endnotes", "[]"))),
            spans=tuple(tuple(s) for s in json.loads(meta.get("spans", "[]"))),  # type: ignore[misc]
            char_start=int(meta.get("char_start", 0)),
            char_end=int(meta.get("char_end", 0)),
            order=int(meta.get("order", 0)),
            endnote_number=number if number >= 0 else None,
            urls=tuple(json.loads(meta.get("urls", "[]"))),
            cited_by=tuple(json.loads(meta.get("cited_by", "[]"))),
            claim=str(meta.get("claim", "")),
        )

    def search_text(self) -> str:
        return search_text(
            kind=self.kind,
            section=self.section,
            text=self.text,
            document_title=self.document_title,
            endnote_number=self.endnote_number,
            claim=self.claim,
        )

    @property
    def section_path(self) -> tuple[str, ...]:
        return tuple(self.section.split(SECTION_SEPARATOR)) if self.section else ()


# --- the store ---------------------------------------------------------------


class IndexStore:
    """Generations, the registry that names the active one, and their documents."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.registry_name = f"{prefix}-registry"

    def _registry(self) -> Any:
        return self.client.get_or_create_collection(self.registry_name, embedding_function=None)

    def active_name(self) -> str | None:
        try:
            registry = self.client.get_collection(self.registry_name, embedding_function=None)
        except Exception:  # NotFoundError, or ValueError on older servers
            return None
        got = registry.get(ids=[_ACTIVE], include=["metadatas"])
        if not got["ids"]:
            return None
        return str(got["metadatas"][0]["collection"])

    def collection(self, name: str) -> Any:
        return self.client.get_collection(name, embedding_function=None)

    def info(self, name: str) -> IndexInfo:
        return IndexInfo.from_metadata(name, self.collection(name).metadata)

    def active(self) -> IndexInfo | None:
        name = self.active_name()
        if name is None:
            return None
        try:
            return self.info(name)
        except IndexMismatchError:
            raise
        except Exception:
            return None  # the registry names a collection that is gone: treat as empty

    def new_generation_name(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        return f"{self.prefix}-g{stamp}-{secrets.token_hex(2)}"

    def create_generation(self, name: str, info: IndexInfo) -> tuple[Any, Any, Any]:
        """The generation's collections: passages, documents, and the passages'
        sentences (each embedded, for sentence-level scoring)."""
        passages = self.client.create_collection(
            name,
            embedding_function=None,
            metadata={**info.to_metadata(), "hnsw:space": "cosine"},
        )
        docs = self.client.create_collection(name + _DOCS_SUFFIX, embedding_function=None)
        sentences = self.client.create_collection(
            name + _SENTENCES_SUFFIX, embedding_function=None, metadata={"hnsw:space": "cosine"}
        )
        return passages, docs, sentences

    def sentences(self, name: str) -> Any:
        return self.client.get_collection(name + _SENTENCES_SUFFIX, embedding_function=None)

    def write_documents(self, name: str, records: list[DocumentRecord]) -> None:
        docs = self.client.get_collection(name + _DOCS_SUFFIX, embedding_function=None)
        docs.add(
            ids=[r.id for r in records],
            documents=[r.title for r in records],
            embeddings=[_PLACEHOLDER_VECTOR for _ in records],
            metadatas=[r.to_metadata() for r in records],
        )

    def documents(self, name: str) -> list[DocumentRecord]:
        docs = self.client.get_collection(name + _DOCS_SUFFIX, embedding_function=None)
        got = docs.get(include=["metadatas"])
        records = [DocumentRecord.from_metadata(i, m) for i, m in zip(got["ids"], got["metadatas"], strict=True)]
        return sorted(records, key=lambda r: r.id)

    def activate(self, name: str) -> None:
        self._registry().upsert(
            ids=[_ACTIVE],
            documents=[name],
            embeddings=[_PLACEHOLDER_VECTOR],
            metadatas=[{"collection": name, "activated_at": utc_now()}],
        )

    def generations(self) -> list[str]:
        """Generation collections (oldest first), including unfinished ones."""
        names = [c if isinstance(c, str) else c.name for c in self.client.list_collections()]
        base = f"{self.prefix}-g"
        return sorted(n for n in names if n.startswith(base) and not n.endswith(_SUFFIXES))

    def drop(self, name: str) -> None:
        for collection in (name, *(name + suffix for suffix in _SUFFIXES)):
            try:
                self.client.delete_collection(collection)
            except Exception:  # already gone
                pass

    def prune(self, keep: int) -> list[str]:
        """Remove generations older than the newest `keep` up to the active one,
        and any generation newer than the active one (left by a failed ingest)."""
        active = self.active_name()
        names = self.generations()
        if active not in names:
            return []
        position = names.index(active)
        kept = set(names[max(0, position - keep + 1) : position + 1])
        dropped = [n for n in names if n not in kept]
        for name in dropped:
            self.drop(name)
        return dropped

    def records(self, name: str, *, include_embeddings: bool = False) -> Iterator[dict[str, Any]]:
        return iter_records(self.collection(name), include_embeddings=include_embeddings)


def iter_records(collection: Any, *, include_embeddings: bool = False) -> Iterator[dict[str, Any]]:
    """All records of a collection, fetched in pages."""
    include = ["documents", "metadatas"] + (["embeddings"] if include_embeddings else [])
    offset, page = 0, 500
    while True:
        got = collection.get(include=include, limit=page, offset=offset)
        for i, pid in enumerate(got["ids"]):
            yield {
                "id": pid,
                "document": got["documents"][i],
                "metadata": got["metadatas"][i],
                "embedding": got["embeddings"][i] if include_embeddings else None,
            }
        if len(got["ids"]) < page:
            return
        offset += page


# --- reading the active generation (the service side) ------------------------


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
        if info.embed_model != self.model.name or info.embed_dim != self.dim or (
            info.embed_fingerprint != self.model.fingerprint
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
                raise IndexUnavailableError(f"cannot read {describe(self.settings)}: {exc}") from exc
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
                raise IndexNotReadyError(f"the active index {name} cannot be opened: {exc}") from exc
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
