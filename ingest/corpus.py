"""The corpus manifest and its documents, validated before anything is indexed."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import re
import tempfile
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


def read_file(path: Path, owner: str = "") -> bytes:
    """A paper's bytes; a missing, oversized or empty file raises CorpusError
    naming it (and `owner`, the document it belongs to, where there is one)."""
    of = f" of {owner}" if owner else ""
    if not path.is_file():
        raise CorpusError(f"{path}: file{of} not found")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CorpusError(f"{path}: {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit")
    data = path.read_bytes()
    if not data.strip():
        raise CorpusError(f"{path}: file{of} is empty")
    return data


class ExtractionCache:
    """The texts read from PDF, Word and HTML files, kept on disk by the file's
    content hash and the readers' version, so an unchanged paper is not read
    again: adding one paper to a library of PDFs reads that paper only. Plain
    text and markdown are read directly (decoding them costs nothing)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.used: set[str] = set()

    def extract(self, data: bytes, fmt: str, *, name: str, digest: str) -> Extracted:
        if fmt in ("markdown", "text"):
            return extract(data, fmt, name=name)
        key = f"{digest}-{fmt}-{readers_version()}.json"
        self.used.add(key)
        path = self.folder / key
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            return Extracted(stored["text"], stored["meta"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        extracted = extract(data, fmt, name=name)
        self._write(path, {"text": extracted.text, "meta": extracted.meta})
        return extracted

    def prune(self) -> None:
        """Remove the texts of files this run did not read."""
        if not self.folder.is_dir():
            return
        for path in self.folder.glob("*.json"):
            if path.name not in self.used:
                path.unlink(missing_ok=True)

    def _write(self, path: Path, content: dict[str, object]) -> None:
        """Written whole or not at all; a folder that cannot be written only costs speed."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(content, out, ensure_ascii=False)
            os.replace(temporary, path)
        except OSError:
            return


@functools.cache
def readers_version() -> str:
    """A fingerprint of the format readers' code and the libraries they use: a
    change to either reads every file again."""
    from ingest import formats

    digest = hashlib.sha256()
    for source in sorted(Path(formats.__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    for library in ("pdfplumber", "pdfminer.six", "lxml"):
        try:
            digest.update(f"{library}={importlib.metadata.version(library)}".encode())
        except importlib.metadata.PackageNotFoundError:
            continue
    return digest.hexdigest()[:12]


def read_document(
    meta: DocumentMeta, base: Path, cache: ExtractionCache | None = None
) -> SourceDocument:
    """Read one corpus file in its format; missing, empty, oversized, undecodable or
    unreadable files raise CorpusError naming the file."""
    path = (base / meta.file).resolve()
    data = read_file(path, f"document '{meta.id}'")
    digest = hashlib.sha256(data).hexdigest()
    fmt = format_of(path, meta.format)
    if cache is None:
        text = extract(data, fmt, name=str(path)).text
    else:
        text = cache.extract(data, fmt, name=str(path), digest=digest).text
    return SourceDocument(meta, path, text, digest)


def load_corpus(manifest_path: Path, cache: ExtractionCache | None = None) -> list[SourceDocument]:
    manifest = load_manifest(manifest_path)
    if not manifest.documents:
        raise CorpusError(f"{manifest_path}: the manifest lists no documents")
    base = manifest_path.resolve().parent
    return [read_document(meta, base, cache) for meta in manifest.documents]
