"""Adding papers to the corpus and taking them out.

`add_papers` reads each file in its format (refusing it, by name, when it is
unreadable, over the size limit, of an unknown format or a copy of a paper
already in the corpus), copies it into the corpus folder, writes its manifest
entry with the metadata the file carries where none is given, and brings the
index in line: only the new paper's passages are embedded. `remove_paper` takes
one out. Whatever fails, the manifest, the corpus folder and the index are left
exactly as they were.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.corpus import (
    DocumentMeta,
    ExtractionCache,
    Manifest,
    format_of,
    load_manifest,
    read_file,
)
from ingest.embed import Embedder
from ingest.errors import CorpusError
from ingest.parse import parse_document
from ingest.pipeline import IngestReport, ProgressFn, ingest_lock, run_ingest
from ingest.settings import IngestSettings

_SLUG_RE = re.compile(r"[^a-z0-9]+")


@dataclass
class NewPaper:
    """A file to add, with the metadata given for it (the rest is read from the file)."""

    path: Path
    id: str | None = None
    title: str | None = None
    author: str | None = None
    publisher: str | None = None
    date: str | None = None
    url: str | None = None


@dataclass
class Change:
    """What an add or remove did: the manifest entries, and the index's report."""

    added: list[DocumentMeta] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    report: IngestReport | None = None


def add_papers(
    settings: IngestSettings,
    papers: list[NewPaper],
    *,
    embedder: Embedder | None = None,
    progress: ProgressFn | None = None,
) -> Change:
    """Add the papers to the corpus and the index, all or none."""
    if not papers:
        raise CorpusError("no files to add")
    manifest_path = settings.corpus.manifest
    with _corpus_lock(settings):
        manifest = load_manifest(manifest_path)
        base = manifest_path.resolve().parent
        known = _hashes(manifest, base)
        taken = {d.id for d in manifest.documents}
        entries: list[tuple[DocumentMeta, Path]] = []
        cache = ExtractionCache(settings.index.extracted_folder)
        for paper in papers:
            meta, digest = _entry(paper, taken, known, cache)
            taken.add(meta.id)
            known[digest] = meta.id
            entries.append((meta, paper.path))
        updated = Manifest(documents=[*manifest.documents, *(m for m, _ in entries)])
        copied = [base / m.file for m, _ in entries]
        for target in copied:
            if target.exists():
                raise CorpusError(f"{target}: already in the corpus folder; pass another --id")
        with _rollback(manifest_path, copied):
            for (_, source), target in zip(entries, copied, strict=True):
                shutil.copyfile(source, target)
            _write_manifest(manifest_path, updated)
            report = run_ingest(settings, embedder=embedder, progress=progress)
    return Change(added=[m for m, _ in entries], report=report)


def remove_paper(
    settings: IngestSettings,
    doc_id: str,
    *,
    embedder: Embedder | None = None,
    progress: ProgressFn | None = None,
) -> Change:
    """Take a paper out of the corpus and the index; its file is deleted once the
    index no longer holds it, when it lies in the corpus folder."""
    manifest_path = settings.corpus.manifest
    with _corpus_lock(settings):
        manifest = load_manifest(manifest_path)
        base = manifest_path.resolve().parent
        gone = [d for d in manifest.documents if d.id == doc_id]
        if not gone:
            known = ", ".join(d.id for d in manifest.documents) or "none"
            raise CorpusError(f"no paper with id '{doc_id}' (indexed: {known})")
        rest = [d for d in manifest.documents if d.id != doc_id]
        if not rest:
            raise CorpusError(f"'{doc_id}' is the only paper; add another before removing it")
        with _rollback(manifest_path, []):
            _write_manifest(manifest_path, Manifest(documents=rest))
            report = run_ingest(settings, embedder=embedder, progress=progress)
        path = (base / gone[0].file).resolve()
        if path.parent == base and all((base / d.file).resolve() != path for d in rest):
            path.unlink(missing_ok=True)
    return Change(removed=[doc_id], report=report)


def _entry(
    paper: NewPaper, taken: set[str], known: dict[str, str], cache: ExtractionCache
) -> tuple[DocumentMeta, str]:
    """The manifest entry for a file, after reading it through: any problem with
    the file is raised here, before anything is written. The text read is kept
    in `cache`, for the ingest that follows."""
    path = paper.path
    data = read_file(path)
    digest = hashlib.sha256(data).hexdigest()
    if digest in known:
        raise CorpusError(f"{path}: the same file as paper '{known[digest]}', already indexed")
    fmt = format_of(path)
    extracted = cache.extract(data, fmt, name=str(path), digest=digest)
    parsed = parse_document(extracted.text, name=str(path))
    carried = extracted.meta
    title = paper.title or carried.get("title") or parsed.title or path.stem
    doc_id = paper.id or _free_id(_slug(title) or _slug(path.stem) or "paper", taken)
    if doc_id in taken:
        raise CorpusError(f"{path}: a paper with id '{doc_id}' is already indexed")
    try:
        meta = DocumentMeta(
            id=doc_id,
            file=f"{doc_id}{path.suffix.lower()}",
            title=title,
            author=paper.author or carried.get("author"),
            publisher=paper.publisher or carried.get("publisher"),
            date=paper.date or carried.get("date"),
            url=paper.url or carried.get("url"),
            source=path.name,
            format=fmt,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise CorpusError(f"{path}: {exc}") from exc
    return meta, digest


def _hashes(manifest: Manifest, base: Path) -> dict[str, str]:
    """Content hash -> id of the papers already in the corpus."""
    found = {}
    for d in manifest.documents:
        path = base / d.file
        if path.is_file():
            found[hashlib.sha256(path.read_bytes()).hexdigest()] = d.id
    return found


def _slug(text: str) -> str:
    return _SLUG_RE.sub("-", text.lower()).strip("-")[:48].strip("-")


def _free_id(stem: str, taken: set[str]) -> str:
    candidate, n = stem, 2
    while candidate in taken:
        candidate, n = f"{stem}-{n}", n + 1
    return candidate


def _write_manifest(path: Path, manifest: Manifest) -> None:
    """The manifest replaced whole (written beside it, then renamed)."""
    data = {"documents": [d.model_dump(exclude_none=True) for d in manifest.documents]}
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(path)


@contextlib.contextmanager
def _rollback(manifest_path: Path, created: list[Path]) -> Iterator[None]:
    """On any failure: the manifest as it was, and the files copied in removed."""
    original = manifest_path.read_bytes()
    try:
        yield
    except BaseException:
        manifest_path.write_bytes(original)
        for path in created:
            path.unlink(missing_ok=True)
        raise


def _corpus_lock(settings: IngestSettings) -> contextlib.AbstractContextManager[None]:
    """Keeps two changes to the corpus apart (ingest has its own lock)."""
    path = settings.index.lock_path.with_name("corpus.lock")
    return ingest_lock(path, holder="change to the corpus")
