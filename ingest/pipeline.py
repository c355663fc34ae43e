"""`memoqa ingest`: corpus -> parsed documents -> passages -> a new index generation.

Safe by construction: every file is read and parsed before anything is
written, so bad input leaves the index as it was; the new generation becomes
visible in one registry write, after it is complete; an unchanged corpus is
detected from fingerprints and costs no model load and no write; passages
whose embedding text did not change reuse their stored embeddings. A document
that did not change stays in the segment that holds it: the new generation
writes only the new and changed documents, into one new segment.
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
from ingest.corpus import ExtractionCache, SourceDocument, load_corpus
from ingest.embed import Embedder, ModelRef, resolve_model
from ingest.errors import (
    CorpusError,
    IndexMismatchError,
    IndexUnavailableError,
    IngestLockedError,
    MemoqaError,
)
from ingest.index import lexical
from ingest.index.records import (
    SCHEMA_VERSION,
    DocumentRecord,
    IndexInfo,
    StoredPassage,
    passage_metadata,
    utc_now,
)
from ingest.index.store import IndexStore, connect, forget_clients, iter_records
from ingest.parse import PARSER_VERSION, ParsedDocument, parse_document
from ingest.settings import IngestSettings, load_configured_embedder
from ingest.summary import ParseSummary, summarise
from ingest.text import plain_text

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)

# Records handed to Chroma per call: large enough to amortise the call, small
# enough to stay under its batch limit.
_PASSAGE_PAGE = 256
_UNIT_PAGE = 1000
# Segments a generation reads at most: a search queries each one. When one more
# would pass this, the smallest are merged into the new one, down to half.
MAX_SEGMENTS = 8


def embed_text(p: Passage, document_title: str) -> str:
    """The text a passage is embedded by."""
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
    summary: ParseSummary | None = None  # what was read (None for a removed document)


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
class PreparedDocument:
    """A corpus file read, parsed and chunked, before anything is written."""

    source: SourceDocument
    parsed: ParsedDocument
    passages: list[Passage]


@dataclass(frozen=True)
class PassageToWrite:
    """A passage with what its index record needs besides the passage itself."""

    passage: Passage
    document_title: str
    embed_text: str
    embed_hash: str  # the key its vector is reused by


@dataclass(frozen=True)
class SentenceUnit:
    """One quotable unit of a passage (a sentence, a list line), embedded on its own
    so answers can be scored sentence by sentence."""

    passage_id: str
    document_id: str
    position: int
    text: str  # as displayed
    embed_text: str
    embed_hash: str

    @property
    def id(self) -> str:
        return f"{self.passage_id}#{self.position}"


@dataclass
class _Vectors:
    """The vectors a generation is written with: new ones by record id, and the
    active generation's by embedding hash, reused when the hash matches."""

    reusable: dict[str, list[float]]
    passages: dict[str, list[float]] = field(default_factory=dict)
    units: dict[str, list[float]] = field(default_factory=dict)

    def of_passage(self, item: PassageToWrite) -> list[float]:
        return self.passages.get(item.passage.id) or self.reusable[item.embed_hash]

    def of_unit(self, unit: SentenceUnit) -> list[float]:
        return self.units.get(unit.id) or self.reusable[unit.embed_hash]

    def dim(self, default: int) -> int:
        """The vectors' length: of the first new one, else of the first reused
        one, else (no vector written) `default`."""
        vectors = self.passages or self.units or self.reusable
        return len(next(iter(vectors.values()))) if vectors else default


@dataclass(frozen=True)
class _Pending:
    """A text with no vector to reuse, and whether it is a sentence unit's."""

    record_id: str
    text: str
    unit: bool


@dataclass(frozen=True)
class _Fingerprints:
    """What a generation was built from, to tell whether the corpus needs ingesting."""

    config: str
    corpus: str

    def match(self, info: IndexInfo) -> bool:
        return info.config_fingerprint == self.config and info.corpus_fingerprint == self.corpus


@dataclass
class _Plan:
    """Where each document of the new generation lives: the unchanged ones stay
    in their segments, the rest are written into a new one."""

    segments: list[str]  # existing segments the new generation reads
    kept: dict[str, str]  # document id -> the existing segment that holds it
    fresh: list[PreparedDocument]  # documents written into the new segment
    reread: dict[str, list[str]]  # segment -> documents whose vectors it can give back
    fingerprints: dict[str, str]  # document id -> its fingerprint
    new_segment: str | None = None

    def segment_of(self, document_id: str) -> str:
        return self.kept.get(document_id) or self.new_segment or ""

    def all_segments(self) -> tuple[str, ...]:
        return (*self.segments, *([self.new_segment] if self.new_segment else []))


@dataclass
class _NewGeneration:
    """Everything a new index generation is written from."""

    documents: list[PreparedDocument]
    previous: dict[str, DocumentRecord]  # the active generation's documents, by id
    passages: list[PassageToWrite]  # the new segment's
    units: list[SentenceUnit]  # the new segment's
    vectors: _Vectors
    plan: _Plan

    @property
    def embedded(self) -> int:
        return len(self.vectors.passages)

    @property
    def passage_count(self) -> int:
        return sum(len(d.passages) for d in self.documents)


def chunker_label(settings: IngestSettings) -> str:
    c = settings.chunking
    return (
        f"structural-v{CHUNKER_VERSION} parser-v{PARSER_VERSION} "
        f"max_chars={c.max_chars} min_chars={c.min_chars}"
    )


def _fingerprint(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def prepare(
    settings: IngestSettings, cache: ExtractionCache | None = None
) -> list[PreparedDocument]:
    """Read, parse and chunk every document; any bad file raises CorpusError
    before the index is touched."""
    prepared = []
    for source in load_corpus(settings.corpus.manifest, cache):
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
        prepared.append(PreparedDocument(source, parsed, passages))
    return prepared


@contextlib.contextmanager
def ingest_lock(path: Path, holder: str = "`memoqa ingest`") -> Iterator[None]:
    """Hold the lock at `path`; a second holder fails at once rather than queueing behind it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IngestLockedError(
                f"another {holder} holds {path}; wait for it to finish"
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
    notify = progress or _silent
    cache = ExtractionCache(settings.index.extracted_folder)
    prepared = prepare(settings, cache)
    model = embedder.ref if embedder is not None else resolve_model(settings.embedding.model)
    fingerprints = _fingerprints(settings, model, prepared)
    warnings = [w for p in prepared for w in p.parsed.warnings]

    with ingest_lock(settings.index.lock_path):
        store, active = _open_or_repair(settings, warnings)
        previous = {d.id: d for d in store.documents(active.collection)} if active else {}
        cache.prune()
        if active is not None and not force and fingerprints.match(active):
            return _unchanged_report(active, prepared, warnings, started)
        rebuild = force or not _extends(active, fingerprints)
        plan = _plan(store, active, prepared, previous, fingerprints, rebuild)
        reusable = _reusable_vectors(store, active, model, plan.reread)
        items = _passages_to_write(plan.fresh, model)
        units = _sentence_units(items, model)
        vectors = _embed_missing(
            settings, embedder, _pending(items, units, reusable), reusable, notify
        )
        generation = _NewGeneration(prepared, previous, items, units, vectors, plan)
        name = store.new_generation_name()
        dim = generation.vectors.dim(active.embed_dim if active is not None else 0)
        info = _generation_info(name, settings, model, fingerprints, generation, dim)
        _write_generation(store, info, generation, notify, settings.index.lexical_folder)
        removed = store.prune(settings.index.keep_generations)
        lexical.remove_generations(settings.index.lexical_folder, removed)

    return IngestReport(
        changed=True,
        collection=name,
        documents=_document_reports(prepared, previous),
        passages=generation.passage_count,
        embedded=generation.embedded,
        reused=generation.passage_count - generation.embedded,
        seconds=time.perf_counter() - started,
        warnings=warnings,
        removed_generations=removed,
    )


def _silent(stage: str, done: int, total: int) -> None:
    """Progress goes nowhere when nobody asked for it."""


def _fingerprints(
    settings: IngestSettings, model: ModelRef, prepared: list[PreparedDocument]
) -> _Fingerprints:
    """Fingerprints of the configuration and corpus, compared with the active generation's."""
    config = {
        "schema": SCHEMA_VERSION,
        "chunker": chunker_label(settings),
        "model": model.name,
        "model_fp": model.fingerprint,
    }
    corpus = [[p.source.meta.model_dump(), p.source.sha256, _read_as(p)] for p in prepared]
    return _Fingerprints(_fingerprint(config), _fingerprint(corpus))


def _read_as(document: PreparedDocument) -> str:
    """The hash of the text a file was read as: a reader that reads the same file
    otherwise (a better PDF reader, say) changes the document."""
    return hashlib.sha256(document.source.text.encode()).hexdigest()


def _unchanged_report(
    active: IndexInfo, prepared: list[PreparedDocument], warnings: list[str], started: float
) -> IngestReport:
    """The report of an ingest that found the active generation already up to date."""
    return IngestReport(
        changed=False,
        collection=active.collection,
        documents=[
            DocumentReport(
                p.source.meta.id,
                "unchanged",
                len(p.passages),
                summarise(p.parsed, len(p.passages)),
            )
            for p in prepared
        ],
        passages=active.passage_count,
        embedded=0,
        reused=active.passage_count,
        seconds=time.perf_counter() - started,
        warnings=warnings,
    )


def _extends(active: IndexInfo | None, fingerprints: _Fingerprints) -> bool:
    """Whether the new generation can keep the active one's segments: same
    layout, model and chunking."""
    return (
        active is not None
        and active.schema == SCHEMA_VERSION
        and active.config_fingerprint == fingerprints.config
    )


def _plan(
    store: IndexStore,
    active: IndexInfo | None,
    prepared: list[PreparedDocument],
    previous: dict[str, DocumentRecord],
    fingerprints: _Fingerprints,
    rebuild: bool,
) -> _Plan:
    """Which documents stay in their segments and which are written anew: all of
    them on a rebuild; otherwise the new and changed ones, and those of segments
    merged because they are mostly out of date or too many."""
    prints = {p.source.meta.id: _document_fingerprint(p, fingerprints) for p in prepared}
    segments = list(active.segments) if active is not None and not rebuild else []
    kept = {
        doc_id: previous[doc_id].segment
        for doc_id, fp in prints.items()
        if doc_id in previous
        and previous[doc_id].fingerprint == fp
        and previous[doc_id].segment in segments
    }
    live: dict[str, int] = {}
    for doc_id, segment in kept.items():
        live[segment] = live.get(segment, 0) + previous[doc_id].passage_count
    segments = [s for s in segments if live.get(s)]
    merged = {s for s in segments if live[s] * 2 < store.segment_passages(s)}
    rest = sorted((s for s in segments if s not in merged), key=live.__getitem__)
    if len(rest) + 1 > MAX_SEGMENTS:
        merged |= set(rest[: len(rest) + 1 - MAX_SEGMENTS // 2])
    kept = {d: s for d, s in kept.items() if s not in merged}
    fresh = [p for p in prepared if p.source.meta.id not in kept]
    reread: dict[str, list[str]] = {}
    readable = (
        set(active.segments) if active is not None and active.schema == SCHEMA_VERSION else set()
    )
    for p in fresh:
        before = previous.get(p.source.meta.id)
        if before is not None and before.segment in readable:
            reread.setdefault(before.segment, []).append(before.id)
    plan = _Plan([s for s in segments if s not in merged], kept, fresh, reread, prints)
    if fresh:
        plan.new_segment = store.new_segment_name()
    return plan


def _document_fingerprint(document: PreparedDocument, fingerprints: _Fingerprints) -> str:
    """What a document's records were written from: its file, its metadata and
    the index configuration."""
    return _fingerprint(
        [
            document.source.meta.model_dump(),
            document.source.sha256,
            _read_as(document),
            fingerprints.config,
        ]
    )


def _reusable_vectors(
    store: IndexStore, active: IndexInfo | None, model: ModelRef, reread: dict[str, list[str]]
) -> dict[str, list[float]]:
    """Vectors by embedding hash, from the segments that held the documents
    written anew, when the same model made them."""
    reusable: dict[str, list[float]] = {}
    if (
        active is None
        or active.embed_model != model.name
        or active.embed_fingerprint != model.fingerprint
    ):
        return reusable
    for segment, documents in reread.items():
        where = {"document_id": {"$in": documents}}
        passages, sentences = store.segment(segment)
        for collection in (passages, sentences):
            for record in iter_records(collection, include_embeddings=True, where=where):
                reusable[record["metadata"].get("embed_hash", "")] = list(record["embedding"])
    return reusable


def _embed_hash(model: ModelRef, text: str) -> str:
    """The key a vector is reused by: the same text embedded by the same model."""
    return hashlib.sha256(f"{model.fingerprint}\x1f{text}".encode()).hexdigest()


def _passages_to_write(prepared: list[PreparedDocument], model: ModelRef) -> list[PassageToWrite]:
    """Every passage of the corpus with its embedding text and hash."""
    items = []
    for document in prepared:
        title = document.source.meta.title
        for passage in document.passages:
            text = embed_text(passage, title)
            items.append(PassageToWrite(passage, title, text, _embed_hash(model, text)))
    return items


def _sentence_units(items: list[PassageToWrite], model: ModelRef) -> list[SentenceUnit]:
    """Each passage's quotable units, in order, with the text each is embedded by."""
    units = []
    for item in items:
        passage = item.passage
        for position, (unit, _notes) in enumerate(quotable_units(passage.kind, passage.text)):
            plain = plain_text(unit).removeprefix("- ")
            units.append(
                SentenceUnit(
                    passage.id,
                    passage.document_id,
                    position,
                    unit,
                    plain,
                    _embed_hash(model, plain),
                )
            )
    return units


def _pending(
    items: list[PassageToWrite], units: list[SentenceUnit], reusable: dict[str, list[float]]
) -> list[_Pending]:
    """The texts that need a new vector: passages first, then sentence units."""
    pending = [
        _Pending(item.passage.id, item.embed_text, unit=False)
        for item in items
        if item.embed_hash not in reusable
    ]
    pending += [
        _Pending(unit.id, unit.embed_text, unit=True)
        for unit in units
        if unit.embed_hash not in reusable
    ]
    return pending


def _embed_missing(
    settings: IngestSettings,
    embedder: Embedder | None,
    pending: list[_Pending],
    reusable: dict[str, list[float]],
    notify: ProgressFn,
) -> _Vectors:
    """Embed what cannot be reused; the model is loaded only when something needs it."""
    vectors = _Vectors(reusable)
    if not pending:
        return vectors
    if embedder is None:
        notify("loading embedding model", 0, 1)
        embedder = load_configured_embedder(settings)
    # Texts of like length share a batch: less padding to encode. Progress is
    # told every few batches (an embedder may run several batches at once).
    pending = sorted(pending, key=lambda p: len(p.text))
    step = settings.embedding.batch_size * 32
    for start in range(0, len(pending), step):
        chunk = pending[start : start + step]
        embedded = embedder.embed_texts([p.text for p in chunk])
        for p, vector in zip(chunk, embedded, strict=True):
            (vectors.units if p.unit else vectors.passages)[p.record_id] = vector
        notify("embedding passages", min(start + step, len(pending)), len(pending))
    return vectors


def _generation_info(
    name: str,
    settings: IngestSettings,
    model: ModelRef,
    fingerprints: _Fingerprints,
    generation: _NewGeneration,
    dim: int,
) -> IndexInfo:
    """The new generation's description, stored as its collection's metadata."""
    return IndexInfo(
        collection=name,
        schema=SCHEMA_VERSION,
        embed_model=model.name,
        embed_fingerprint=model.fingerprint,
        embed_dim=dim,
        chunker=chunker_label(settings),
        config_fingerprint=fingerprints.config,
        corpus_fingerprint=fingerprints.corpus,
        passage_count=generation.passage_count,
        document_count=len(generation.documents),
        created_at=utc_now(),
        segments=generation.plan.all_segments(),
    )


def _write_generation(
    store: IndexStore,
    info: IndexInfo,
    generation: _NewGeneration,
    notify: ProgressFn,
    lexical_folder: Path,
) -> None:
    """Write the new segment, the generation and its lexical index, then make it
    the active one; on any failure drop what was written, so the previous
    generation stays the one in use."""
    name = info.collection
    segment = generation.plan.new_segment
    try:
        if segment is not None:
            _write_segment(store, segment, generation, notify)
        store.create_generation_record(name, info)
        store.write_documents(name, _document_records(generation))
        lexical.save_generation(lexical_folder, name, _stored_passages(generation.documents))
        store.activate(name)
    except BaseException as exc:
        for written in (name, segment):
            if written is not None:
                store.drop(written)
        lexical.remove_generations(lexical_folder, [name])
        if isinstance(exc, OSError):
            raise MemoqaError(
                f"writing the new index failed ({exc.strerror or exc}); the previous index "
                "is still the one in use"
            ) from exc
        raise


def _write_segment(
    store: IndexStore, name: str, generation: _NewGeneration, notify: ProgressFn
) -> None:
    """The new segment: the passages and sentences of the documents written anew."""
    documents = [d.source.meta.id for d in generation.plan.fresh]
    collection, sentences = store.create_segment(name, documents, len(generation.passages))
    _write_passages(collection, generation.passages, generation.vectors, notify)
    _write_units(sentences, generation.units, generation.vectors)
    if collection.count() != len(generation.passages):
        raise MemoqaError(
            f"index segment {name} holds {collection.count()} passages, "
            f"expected {len(generation.passages)}"
        )


def _stored_passages(documents: list[PreparedDocument]) -> Iterator[StoredPassage]:
    """Every passage of the generation as the index returns it, for its lexical
    index: made from the parsed documents, not read back."""
    for document in documents:
        title = document.source.meta.title
        for passage in document.passages:
            yield StoredPassage.from_record(passage.text, passage_metadata(passage, title, ""))


def _document_records(generation: _NewGeneration) -> list[DocumentRecord]:
    """One record per document; an unchanged file keeps the time it was first ingested."""
    now = utc_now()
    records = []
    for document in generation.documents:
        meta = document.source.meta
        before = generation.previous.get(meta.id)
        unchanged = before is not None and before.sha256 == document.source.sha256
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
                file=str(document.source.path),
                sha256=document.source.sha256,
                passage_count=len(document.passages),
                ingested_at=before.ingested_at if unchanged and before else now,
                abbreviations=document.parsed.abbreviations,
                warnings=document.parsed.warnings,
                summary=summarise(document.parsed, len(document.passages)).to_dict(),
                segment=generation.plan.segment_of(meta.id),
                fingerprint=generation.plan.fingerprints[meta.id],
            )
        )
    return records


def _document_reports(
    prepared: list[PreparedDocument], previous: dict[str, DocumentRecord]
) -> list[DocumentReport]:
    """What this ingest did to each document, the removed ones last."""
    reports = []
    for p in prepared:
        before = previous.get(p.source.meta.id)
        if before is None:
            status = "added"
        else:
            status = "unchanged" if before.sha256 == p.source.sha256 else "changed"
        reports.append(
            DocumentReport(
                p.source.meta.id, status, len(p.passages), summarise(p.parsed, len(p.passages))
            )
        )
    current = {p.source.meta.id for p in prepared}
    reports.extend(
        DocumentReport(doc_id, "removed", 0) for doc_id in sorted(set(previous) - current)
    )
    return reports


def _open_or_repair(
    settings: IngestSettings, warnings: list[str]
) -> tuple[IndexStore, IndexInfo | None]:
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
        warnings.append(
            f"the index at {path} could not be opened ({exc}); moved it to {aside} and rebuilt it"
        )
        store = IndexStore(connect(settings.index, create=True), prefix)
        return store, None


def _write_passages(
    collection: Any, items: list[PassageToWrite], vectors: _Vectors, notify: ProgressFn
) -> None:
    """Passages go in through llama-index's Chroma store, so the records carry its
    node layout and any llama-index reader can load them (the service's search asks
    Chroma for ids and distances only)."""
    from llama_index.core.schema import BaseNode, NodeRelationship, RelatedNodeInfo, TextNode
    from llama_index.vector_stores.chroma import ChromaVectorStore

    store = ChromaVectorStore(chroma_collection=collection)
    nodes: list[BaseNode] = []
    for item in items:
        passage = item.passage
        node = TextNode(
            id_=passage.id,
            text=passage.text,
            metadata=passage_metadata(passage, item.document_title, item.embed_hash),
            embedding=vectors.of_passage(item),
            # llama-index stores the source document as "document_id"/"ref_doc_id".
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=passage.document_id)},
        )
        nodes.append(node)
    for start in range(0, len(nodes), _PASSAGE_PAGE):
        store.add(nodes[start : start + _PASSAGE_PAGE])
        notify("writing index", min(start + _PASSAGE_PAGE, len(nodes)), len(nodes))


def _write_units(collection: Any, units: list[SentenceUnit], vectors: _Vectors) -> None:
    """Sentence units go straight into Chroma: nothing reads them through llama-index."""
    for start in range(0, len(units), _UNIT_PAGE):
        chunk = units[start : start + _UNIT_PAGE]
        collection.add(
            ids=[unit.id for unit in chunk],
            documents=[unit.text for unit in chunk],
            embeddings=[vectors.of_unit(unit) for unit in chunk],
            metadatas=[
                {
                    "passage_id": unit.passage_id,
                    "document_id": unit.document_id,
                    "position": unit.position,
                    "embed_hash": unit.embed_hash,
                }
                for unit in chunk
            ],
        )
