"""`memoqa ingest`: corpus -> parsed documents -> passages -> a new index generation.

Safe by construction: every file is read and parsed before anything is
written, so bad input leaves the index as it was; the new generation becomes
visible in one registry write, after it is complete; an unchanged corpus is
detected from fingerprints and costs no model load and no write; passages
whose embedding text did not change reuse their stored embeddings.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.chunk import CHUNKER_VERSION, Passage, chunk_document, quotable_units, search_text
from ingest.corpus import SourceDocument, load_corpus
from ingest.embed import Embedder, ModelRef, load_embedder, resolve_model
from ingest.errors import (
    CorpusError,
    IndexMismatchError,
    IndexUnavailableError,
    IngestLockedError,
    MemoqaError,
)
from ingest.index.records import SCHEMA_VERSION, DocumentRecord, IndexInfo, passage_metadata, utc_now
from ingest.index.store import IndexStore, connect, forget_clients
from ingest.parse import PARSER_VERSION, ParsedDocument, parse_document
from ingest.settings import IngestSettings
from ingest.text import plain_text

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)


def embed_text(p: Passage, document_title: str) -> str:
    return search_text(
        kind=p.kind,
        section=p.section_label,
        text=p.text,
        document_title=document_title,
        endnote_number=p.endnote_number,
        claim=p.claim,
    )


@dataclass
class DocumentReport:
    id: str
    status: str  # added | changed | unchanged | removed
    passages: int


@dataclass
class IngestReport:
    changed: bool
    collection: str
    documents: list[DocumentReport]
    passages: int
    embedded: int
    reused: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    removed_generations: list[str] = field(default_factory=list)


@dataclass
class _Prepared:
    source: SourceDocument
    parsed: ParsedDocument
    passages: list[Passage]


def chunker_label(settings: IngestSettings) -> str:
    c = settings.chunking
    return (
        f"structural-v{CHUNKER_VERSION} parser-v{PARSER_VERSION} "
        f"max_chars={c.max_chars} min_chars={c.min_chars}"
    )


def _fingerprint(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def prepare(settings: IngestSettings) -> list[_Prepared]:
    """Read, parse and chunk every document; any bad file raises CorpusError
    before the index is touched."""
    prepared = []
    for source in load_corpus(settings.corpus.manifest):
        try:
            parsed = parse_document(source.text, name=str(source.path))
        except CorpusError:
            raise
        except Exception as exc:  # a parser bug must still name the file
            raise CorpusError(f"{source.path}: cannot parse: {exc}") from exc
        passages = chunk_document(
            source.meta.id,
            parsed,
            max_chars=settings.chunking.max_chars,
            min_chars=settings.chunking.min_chars,
        )
        prepared.append(_Prepared(source, parsed, passages))
    return prepared


@contextlib.contextmanager
def ingest_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IngestLockedError(
                f"another `memoqa ingest` holds {path}; wait for it to finish"
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_ingest(
    settings: IngestSettings,
    *,
    embedder: Embedder | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> IngestReport:
    """Bring the index in line with the corpus manifest. See the module docstring."""
    started = time.perf_counter()
    notify = progress or (lambda stage, done, total: None)
    prepared = prepare(settings)
    model: ModelRef = embedder.ref if embedder is not None else resolve_model(settings.embedding.model)
    config_fp = _fingerprint(
        {
            "schema": SCHEMA_VERSION,
            "chunker": chunker_label(settings),
            "model": model.name,
            "model_fp": model.fingerprint,
        }
    )
    corpus_fp = _fingerprint(
        [[p.source.meta.model_dump(), p.source.sha256] for p in prepared]
    )
    warnings = [w for p in prepared for w in p.parsed.warnings]

    with ingest_lock(settings.index.lock_path):
        store, active = _open_or_repair(settings, warnings)
        previous_docs = {d.id: d for d in store.documents(active.collection)} if active else {}
        if (
            active is not None
            and not force
            and active.config_fingerprint == config_fp
            and active.corpus_fingerprint == corpus_fp
        ):
            return IngestReport(
                changed=False,
                collection=active.collection,
                documents=[
                    DocumentReport(p.source.meta.id, "unchanged", len(p.passages)) for p in prepared
                ],
                passages=active.passage_count,
                embedded=0,
                reused=active.passage_count,
                seconds=time.perf_counter() - started,
                warnings=warnings,
            )

        # Embeddings of the active generation are reusable when the same model made them.
        reusable: dict[str, list[float]] = {}
        if active is not None and active.embed_model == model.name and (
            active.embed_fingerprint == model.fingerprint
        ):
            for record in store.records(active.collection, include_embeddings=True):
                reusable[record["metadata"].get("embed_hash", "")] = list(record["embedding"])
            try:
                from ingest.index.store import iter_records

                for record in iter_records(store.sentences(active.collection), include_embeddings=True):
                    reusable[record["metadata"].get("embed_hash", "")] = list(record["embedding"])
            except Exception:  # a generation without sentences: embed them anew
                pass

        items: list[tuple[Passage, str, str, str]] = []  # passage, title, embed text, hash
        for p in prepared:
            for passage in p.passages:
                text = embed_text(passage, p.source.meta.title)
                digest = hashlib.sha256(f"{model.fingerprint}\x1f{text}".encode()).hexdigest()
                items.append((passage, p.source.meta.title, text, digest))

        # Each passage's quotable units (sentences, list lines), embedded for
        # sentence-level scoring: (passage id, position, display text, embed text, hash).
        units: list[tuple[str, int, str, str, str]] = []
        for passage, _, _, _ in items:
            for position, (unit, _notes) in enumerate(quotable_units(passage.kind, passage.text)):
                plain = plain_text(unit).removeprefix("- ")
                digest = hashlib.sha256(f"{model.fingerprint}\x1f{plain}".encode()).hexdigest()
                units.append((passage.id, position, unit, plain, digest))

        missing = [(i, text) for i, (_, _, text, digest) in enumerate(items) if digest not in reusable]
        missing += [
            (len(items) + j, plain)
            for j, (_, _, _, plain, digest) in enumerate(units)
            if digest not in reusable
        ]
        embeddings: dict[int, list[float]] = {}
        if missing:
            if embedder is None:
                notify("loading embedding model", 0, 1)
                embedder = load_embedder(settings.embedding.model, batch_size=settings.embedding.batch_size)
            batch = settings.embedding.batch_size
            for start in range(0, len(missing), batch):
                chunk = missing[start : start + batch]
                vectors = embedder.embed_texts([text for _, text in chunk])
                for (i, _), vector in zip(chunk, vectors, strict=True):
                    embeddings[i] = vector
                notify("embedding passages", min(start + batch, len(missing)), len(missing))
        dim = len(embeddings[next(iter(embeddings))]) if embeddings else len(next(iter(reusable.values())))

        name = store.new_generation_name()
        info = IndexInfo(
            collection=name,
            schema=SCHEMA_VERSION,
            embed_model=model.name,
            embed_fingerprint=model.fingerprint,
            embed_dim=dim,
            chunker=chunker_label(settings),
            config_fingerprint=config_fp,
            corpus_fingerprint=corpus_fp,
            passage_count=len(items),
            document_count=len(prepared),
            created_at=utc_now(),
        )
        try:
            collection, _, sentence_collection = store.create_generation(name, info)
            _write_passages(collection, items, embeddings, reusable, notify)
            _write_units(sentence_collection, units, len(items), embeddings, reusable)
            now = utc_now()
            records = []
            for p in prepared:
                before = previous_docs.get(p.source.meta.id)
                unchanged = before is not None and before.sha256 == p.source.sha256
                meta = p.source.meta
                records.append(
                    DocumentRecord(
                        id=meta.id,
                        title=meta.title,
                        author=meta.author,
                        publisher=meta.publisher,
                        series=meta.series,
                        date=meta.date,
                        url=meta.url,
                        source=meta.source,
                        file=str(p.source.path),
                        sha256=p.source.sha256,
                        passage_count=len(p.passages),
                        ingested_at=before.ingested_at if unchanged and before else now,
                        abbreviations=p.parsed.abbreviations,
                        warnings=p.parsed.warnings,
                    )
                )
            store.write_documents(name, records)
            if collection.count() != len(items):
                raise MemoqaError(
                    f"index generation {name} holds {collection.count()} passages, "
                    f"expected {len(items)}"
                )
            store.activate(name)
        except OSError as exc:
            store.drop(name)
            raise MemoqaError(
                f"writing the new index failed ({exc.strerror or exc}); the previous index "
                "is still the one in use"
            ) from exc
        except BaseException:
            store.drop(name)
            raise
        removed = store.prune(settings.index.keep_generations)

    reports = []
    for p in prepared:
        before = previous_docs.get(p.source.meta.id)
        status = "added" if before is None else (
            "unchanged" if before.sha256 == p.source.sha256 else "changed"
        )
        reports.append(DocumentReport(p.source.meta.id, status, len(p.passages)))
    current = {p.source.meta.id for p in prepared}
    reports.extend(
        DocumentReport(doc_id, "removed", 0) for doc_id in sorted(set(previous_docs) - current)
    )
    return IngestReport(
        changed=True,
        collection=name,
        documents=reports,
        passages=len(items),
        embedded=sum(1 for i in embeddings if i < len(items)),
        reused=len(items) - sum(1 for i in embeddings if i < len(items)),
        seconds=time.perf_counter() - started,
        warnings=warnings,
        removed_generations=removed,
    )


def _open_or_repair(settings: IngestSettings, warnings: list[str]) -> tuple[IndexStore, IndexInfo | None]:
    """The index store and its active generation. An embedded store that cannot
    be opened (a corrupt or half-deleted folder) is moved aside, never deleted,
    and rebuilt from the corpus."""
    prefix = settings.index.collection_prefix
    try:
        store = IndexStore(connect(settings.index, create=True), prefix)
        return store, store.active()
    except (IndexUnavailableError, IndexMismatchError) as exc:
        if settings.index.chroma_host:
            raise  # a server's storage is the server's to repair
        path = settings.index.path
        aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d%H%M%S')}")
        path.rename(aside)
        forget_clients()
        warnings.append(f"the index at {path} could not be opened ({exc}); moved it to {aside} and rebuilt it")
        store = IndexStore(connect(settings.index, create=True), prefix)
        return store, None


def _write_passages(
    collection: Any,
    items: list[tuple[Passage, str, str, str]],
    embeddings: dict[int, list[float]],
    reusable: dict[str, list[float]],
    notify: ProgressFn,
) -> None:
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
    from llama_index.vector_stores.chroma import ChromaVectorStore

    store = ChromaVectorStore(chroma_collection=collection)
    nodes = []
    for i, (passage, title, _text, digest) in enumerate(items):
        node = TextNode(
            id_=passage.id,
            text=passage.text,
            metadata=passage_metadata(passage, title, digest),
            embedding=embeddings.get(i) or reusable[digest],
            # llama-index stores the source document as "document_id"/"ref_doc_id".
            relationships={
                NodeRelationship.SOURCE: RelatedNodeInfo(node_id=passage.document_id)
            },
        )
        nodes.append(node)
    page = 256
    for start in range(0, len(nodes), page):
        store.add(nodes[start : start + page])
        notify("writing index", min(start + page, len(nodes)), len(nodes))


def _write_units(
    collection: Any,
    units: list[tuple[str, int, str, str, str]],
    offset: int,
    embeddings: dict[int, list[float]],
    reusable: dict[str, list[float]],
) -> None:
    page = 1000
    for start in range(0, len(units), page):
        chunk = units[start : start + page]
        collection.add(
            ids=[f"{pid}#{position}" for pid, position, _, _, _ in chunk],
            documents=[unit for _, _, unit, _, _ in chunk],
            embeddings=[
                embeddings.get(offset + start + j) or reusable[digest]
                for j, (_, _, _, _, digest) in enumerate(chunk)
            ],
            metadatas=[
                {"passage_id": pid, "position": position, "embed_hash": digest}
                for pid, position, _, _, digest in chunk
            ],
        )
