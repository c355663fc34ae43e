"""The corpus manifest and its documents, validated before anything is indexed."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest.errors import CorpusError

_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class DocumentMeta(BaseModel):
    """One manifest entry: where the file is and what it is."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_ID_PATTERN, description="Stable document id, used in passage ids.")
    file: str = Field(min_length=1, description="Path of the text, relative to the manifest.")
    title: str = Field(min_length=1)
    author: str | None = None
    publisher: str | None = None
    series: str | None = None
    date: str | None = Field(
        default=None, description="Publication date, ISO 8601 (YYYY, YYYY-MM or YYYY-MM-DD)."
    )
    url: str | None = None
    source: str | None = Field(default=None, description="Where this copy of the text came from.")
    format: Literal["markdown", "text", "html", "docx", "pdf"] | None = Field(
        default=None, description="The file's format; unset means: from its extension."
    )


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentMeta]


@dataclass(frozen=True)
class SourceDocument:
    meta: DocumentMeta
    path: Path
    text: str
    sha256: str


def load_manifest(path: Path) -> Manifest:
    if not path.is_file():
        raise CorpusError(f"{path}: manifest not found (set MEMOQA_CORPUS__MANIFEST)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorpusError(f"{path}: manifest is not valid JSON: {exc}") from exc
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise CorpusError(f"{path}: invalid manifest: {problems}") from exc
    ids = [d.id for d in manifest.documents]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CorpusError(f"{path}: duplicate document ids: {', '.join(duplicates)}")
    return manifest


# The formats by file extension; anything else is refused by name.
EXTENSIONS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".docx": "docx",
    ".pdf": "pdf",
}
# The largest file a paper may be (a long report with figures is a few MB).
MAX_FILE_BYTES = 50 * 1024 * 1024


def format_of(path: Path, declared: str | None = None) -> str:
    """The format a file is read as: declared in the manifest, or from its extension."""
    if declared:
        return declared
    found = EXTENSIONS.get(path.suffix.lower())
    if found is None:
        known = ", ".join(sorted(EXTENSIONS))
        raise CorpusError(f"{path}: unknown format '{path.suffix or path.name}' (known: {known})")
    return found


@dataclass(frozen=True)
class Extracted:
    """A file's text as the parser reads it, and the metadata the file carries."""

    text: str
    meta: dict[str, str]


def extract(data: bytes, fmt: str, *, name: str) -> Extracted:
    """The text the parser reads, from a file's bytes in any supported format, with
    the title, author, date and URL the file itself carries."""
    if fmt == "html":
        from ingest.formats.html import read_html

        page = read_html(data, name=name)
        return Extracted(page.text, page.meta)
    if fmt == "docx":
        from ingest.formats.docx import read_docx

        document = read_docx(data, name=name)
        return Extracted(document.text, document.meta)
    if fmt == "pdf":
        from ingest.formats.pdf import read_pdf

        pdf = read_pdf(data, name=name)
        return Extracted(pdf.text, pdf.meta)
    return Extracted(_decode(data, name=name), {})


def _decode(data: bytes, *, name: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{name}: not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r})"
        ) from exc
    if "\x00" in text or re.search(r"[\x01-\x08\x0e-\x1f]", text[:4096]):
        raise CorpusError(f"{name}: looks like a binary file, not text")
    return text


def read_document(meta: DocumentMeta, base: Path) -> SourceDocument:
    """Read one corpus file in its format; missing, empty, oversized, undecodable or
    unreadable files raise CorpusError naming the file."""
    path = (base / meta.file).resolve()
    if not path.is_file():
        raise CorpusError(f"{path}: file of document '{meta.id}' not found")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CorpusError(f"{path}: {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit")
    data = path.read_bytes()
    if not data.strip():
        raise CorpusError(f"{path}: file of document '{meta.id}' is empty")
    text = extract(data, format_of(path, meta.format), name=str(path)).text
    return SourceDocument(meta, path, text, hashlib.sha256(data).hexdigest())


def load_corpus(manifest_path: Path) -> list[SourceDocument]:
    manifest = load_manifest(manifest_path)
    if not manifest.documents:
        raise CorpusError(f"{manifest_path}: the manifest lists no documents")
    base = manifest_path.resolve().parent
    return [read_document(meta, base) for meta in manifest.documents]
