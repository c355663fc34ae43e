"""What the index stores, as records: the generation's description, one record per
document, one per passage."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest.chunk import SECTION_SEPARATOR, Passage, search_text
from ingest.errors import (
    IndexMismatchError,
)

# 2: passages and sentences live in segments that generations share.
SCHEMA_VERSION = 2


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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
    # The segments holding the generation's passages, oldest first.
    segments: tuple[str, ...] = ()

    def to_metadata(self) -> dict[str, Any]:
        data: dict[str, Any] = {k: v for k, v in self.__dict__.items() if k != "collection"}
        data["segments"] = json.dumps(list(self.segments))
        return {f"memoqa_{k}": v for k, v in data.items()}

    @classmethod
    def from_metadata(cls, collection: str, metadata: dict[str, Any] | None) -> IndexInfo:
        meta = metadata or {}
        try:
            fields = {
                k: meta[f"memoqa_{k}"]
                for k in cls.__dataclass_fields__
                if k not in ("collection", "segments")
            }
            segments = tuple(json.loads(meta.get("memoqa_segments", "[]")))
            return cls(collection=collection, segments=segments, **fields)
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
    summary: dict[str, Any] = field(default_factory=dict)  # ingest.summary.ParseSummary
    segment: str = ""  # the segment holding its passages
    fingerprint: str = ""  # of its file, metadata and the index configuration

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
            summary=json.loads(meta.get("summary", "{}")),
            segment=str(meta.get("segment", "")),
            fingerprint=str(meta.get("fingerprint", "")),
        )


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
            spans=tuple(tuple(s) for s in json.loads(meta.get("spans", "[]"))),
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
