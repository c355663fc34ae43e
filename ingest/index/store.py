"""The index: Chroma collections written by ingest and read by the service.

Layout (the same embedded or on a Chroma server):
- `<prefix>-registry` holds one record, `active`, naming the generation in use.
- a segment, `<prefix>-s<time>-<rand>`, holds the passages of some documents
  with their embeddings, and `<that>-sentences` their sentences; it is written
  once and never changed, and its metadata lists the documents it holds.
- each ingest writes a new generation: `<prefix>-g<time>-<rand>`, whose
  metadata records the embedding model and chunking that built it and the
  segments it reads, and `<that>-docs` with one record per document, naming
  the segment that holds it. A segment can hold documents that a later
  generation no longer has (removed or changed since): readers skip them.
Adding a paper writes one small segment and a new generation that shares the
others, so its cost is the paper's; segments are merged when there are many
or when most of one is out of date.
A generation becomes visible only when the registry is switched to it, after
it is complete, so readers never see a half-written index. The generations
before it are kept (`keep_generations`) so that a reader mid-query never loses
its collections; older ones, segments no kept generation reads, and anything
left by an interrupted ingest are removed.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from ingest.errors import (
    IndexMismatchError,
    IndexNotReadyError,
    IndexUnavailableError,
)
from ingest.index.records import DocumentRecord, IndexInfo, utc_now
from ingest.settings import IndexSettings

_ACTIVE = "active"
_DOCS_SUFFIX = "-docs"
_SENTENCES_SUFFIX = "-sentences"
_SUFFIXES = (_DOCS_SUFFIX, _SENTENCES_SUFFIX)
# Records that only carry metadata still need a vector in Chroma.
_PLACEHOLDER_VECTOR = [1.0]


def describe(settings: IndexSettings) -> str:
    if settings.chroma_host:
        scheme = "https" if settings.chroma_ssl else "http"
        return f"Chroma server {scheme}://{settings.chroma_host}:{settings.chroma_port}"
    return f"embedded Chroma at {settings.path}"


def forget_clients() -> None:
    """Drop chromadb's per-process client cache, so the next connect opens the
    store afresh (after it was repaired, replaced or restarted)."""
    from chromadb.api.shared_system_client import SharedSystemClient

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

    def create_generation_record(self, name: str, info: IndexInfo) -> None:
        """The generation's description and its (empty) documents collection."""
        self.client.create_collection(name, embedding_function=None, metadata=info.to_metadata())
        self.client.create_collection(name + _DOCS_SUFFIX, embedding_function=None)

    # --- segments --------------------------------------------------------------

    def new_segment_name(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        return f"{self.prefix}-s{stamp}-{secrets.token_hex(2)}"

    def create_segment(self, name: str, documents: list[str], passages: int) -> tuple[Any, Any]:
        """A segment's collections (passages, sentences); its metadata lists the
        documents written into it and how many passages they have."""
        meta = {"memoqa_documents": json.dumps(documents), "memoqa_passages": passages}
        collection = self.client.create_collection(
            name, embedding_function=None, metadata={**meta, "hnsw:space": "cosine"}
        )
        sentences = self.client.create_collection(
            name + _SENTENCES_SUFFIX, embedding_function=None, metadata={"hnsw:space": "cosine"}
        )
        return collection, sentences

    def segment(self, name: str) -> tuple[Any, Any]:
        """A segment's passages and sentences collections."""
        return self.collection(name), self.sentences(name)

    def segment_documents(self, name: str) -> list[str]:
        """The documents written into a segment (some may be out of date)."""
        return list(json.loads((self.collection(name).metadata or {})["memoqa_documents"]))

    def segment_passages(self, name: str) -> int:
        """How many passages a segment holds, out of date ones included."""
        return int((self.collection(name).metadata or {})["memoqa_passages"])

    def sentences(self, name: str) -> Any:
        return self.client.get_collection(name + _SENTENCES_SUFFIX, embedding_function=None)

    def segments(self) -> list[str]:
        """Segment collections (oldest first), including unfinished ones."""
        base = f"{self.prefix}-s"
        return sorted(n for n in self._names() if n.startswith(base) and not n.endswith(_SUFFIXES))

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
        records = [
            DocumentRecord.from_metadata(i, m)
            for i, m in zip(got["ids"], got["metadatas"], strict=True)
        ]
        return sorted(records, key=lambda r: r.id)

    def activate(self, name: str) -> None:
        self._registry().upsert(
            ids=[_ACTIVE],
            documents=[name],
            embeddings=[_PLACEHOLDER_VECTOR],
            metadatas=[{"collection": name, "activated_at": utc_now()}],
        )

    def _names(self) -> list[str]:
        return [c if isinstance(c, str) else c.name for c in self.client.list_collections()]

    def generations(self) -> list[str]:
        """Generation collections (oldest first), including unfinished ones."""
        base = f"{self.prefix}-g"
        return sorted(n for n in self._names() if n.startswith(base) and not n.endswith(_SUFFIXES))

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
        read = {s for name in kept for s in self._segments_of(name)}
        for segment in self.segments():
            if segment not in read:
                self.drop(segment)
        return dropped

    def _segments_of(self, generation: str) -> tuple[str, ...]:
        try:
            return self.info(generation).segments
        except Exception:  # not this version's generation: it reads no segment
            return ()

    def records(self, name: str, *, include_embeddings: bool = False) -> Iterator[dict[str, Any]]:
        """A generation's passage records, segment by segment, without the ones
        of documents it no longer has."""
        current = {d.id: d.segment for d in self.documents(name)}
        for segment in self.info(name).segments:
            for record in iter_records(
                self.collection(segment), include_embeddings=include_embeddings
            ):
                if current.get(str(record["metadata"].get("document_id"))) == segment:
                    yield record


def iter_records(
    collection: Any, *, include_embeddings: bool = False, where: dict[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """The records of a collection (those matching `where`, if given), fetched in pages."""
    include = ["documents", "metadatas"] + (["embeddings"] if include_embeddings else [])
    offset, page = 0, 500
    while True:
        got = collection.get(include=include, limit=page, offset=offset, where=where)
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
