"""Word files (.docx): the body's headings, paragraphs and lists, and the real
footnotes and endnotes, which live in parts of their own (`word/footnotes.xml`,
`word/endnotes.xml`) that the body only references.

Notes are numbered as Word shows them: in the order the body first references
them (footnotes, then endnotes after them). The file becomes the text the
markdown parser reads, so every format shares one document model; character
offsets refer to that text.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from xml.etree import ElementTree

from ingest.errors import CorpusError
from ingest.formats.compose import compose, escape

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_DCTERMS = "{http://purl.org/dc/terms/}"
# A zip that expands past this, or far past its own size, is refused unread.
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
MAX_RATIO = 200
_HEADING_RE = re.compile(r"^(?:heading|berschrift|titre)\s*([1-6])$", re.IGNORECASE)
_SPACE_RE = re.compile(r"\s+")


@dataclass
class DocxDocument:
    """What a Word file holds: its body as parser text, its notes and its properties."""

    text: str
    notes: dict[int, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)


def read_docx(data: bytes, *, name: str) -> DocxDocument:
    """The body and notes of a .docx as parser text; a file that is not a Word
    package, or would unpack to too much, raises CorpusError naming the file."""
    parts = _Package(data, name)
    body = parts.xml("word/document.xml")
    if body is None:
        raise CorpusError(f"{name}: not a Word document (no word/document.xml)")
    reader = _Reader(
        parts.links("word/_rels/document.xml.rels"),
        {
            "footnote": _notes(parts, "footnotes"),
            "endnote": _notes(parts, "endnotes"),
        },
    )
    blocks = [block for p in _body_paragraphs(body) if (block := reader.paragraph(p))]
    blocks = [(kind, reader.resolve(line)) for kind, line in blocks]
    if not blocks:
        raise CorpusError(f"{name}: the Word document has no text")
    notes = reader.numbered_notes()
    return DocxDocument(compose(blocks, notes), notes, parts.properties())


class _Package:
    """The parts of a .docx, read with limits: a zip bomb is refused before anything
    is unpacked, and XML with entity declarations is never parsed."""

    def __init__(self, data: bytes, name: str) -> None:
        self.name = name
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as exc:
            raise CorpusError(f"{name}: not a .docx file (not a zip package)") from exc
        total = sum(info.file_size for info in self.zip.infolist())
        packed = sum(info.compress_size for info in self.zip.infolist()) or 1
        if total > MAX_UNPACKED_BYTES or total / packed > MAX_RATIO:
            raise CorpusError(
                f"{name}: refused: the package would unpack to {total:,} bytes "
                f"({total / packed:.0f} times its size)"
            )

    def read(self, part: str) -> bytes | None:
        try:
            return self.zip.read(part)
        except KeyError:
            return None
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise CorpusError(f"{self.name}: damaged .docx part {part}: {exc}") from exc

    def xml(self, part: str) -> ElementTree.Element | None:
        data = self.read(part)
        if data is None:
            return None
        if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
            raise CorpusError(f"{self.name}: refused: {part} declares XML entities")
        try:
            return ElementTree.fromstring(data)
        except ElementTree.ParseError as exc:
            raise CorpusError(f"{self.name}: damaged .docx part {part}: {exc}") from exc

    def links(self, part: str) -> dict[str, str]:
        """Relationship id -> external target (the hyperlinks' URLs)."""
        rels = self.xml(part)
        if rels is None:
            return {}
        return {
            rel.get("Id", ""): rel.get("Target", "")
            for rel in rels.iter(f"{_REL}Relationship")
            if rel.get("TargetMode") == "External"
        }

    def properties(self) -> dict[str, str]:
        """Title, author and date from the package's core properties."""
        core = self.xml("docProps/core.xml")
        if core is None:
            return {}
        found: dict[str, str] = {}
        for key, tag in (
            ("title", f"{_DC}title"),
            ("author", f"{_DC}creator"),
            ("date", f"{_DCTERMS}created"),
        ):
            element = core.find(tag)
            if element is not None and element.text and element.text.strip():
                found[key] = element.text.strip()[:10] if key == "date" else element.text.strip()
        return found


@dataclass
class _Note:
    paragraphs: list[ElementTree.Element]
    links: dict[str, str]


def _notes(parts: _Package, kind: str) -> dict[str, _Note]:
    """Note id -> its paragraphs (separators left out), with the part's links."""
    root = parts.xml(f"word/{kind}.xml")
    if root is None:
        return {}
    links = parts.links(f"word/_rels/{kind}.xml.rels")
    notes = {}
    for note in root.iter(f"{_W}{kind[:-1]}"):
        if note.get(f"{_W}type") in ("separator", "continuationSeparator", "continuationNotice"):
            continue
        notes[note.get(f"{_W}id", "")] = _Note(list(note.iter(f"{_W}p")), links)
    return notes


class _Reader:
    """Body paragraphs to parser lines; note references to `<sup>N</sup>`, numbered
    in order of first reference."""

    def __init__(self, links: dict[str, str], notes: dict[str, dict[str, _Note]]) -> None:
        self.links = links
        self.notes = notes
        self.order: dict[tuple[str, str], int] = {}  # (kind, id) -> number shown

    def paragraph(self, p: ElementTree.Element) -> tuple[str, str] | None:
        style = p.find(f"{_W}pPr/{_W}pStyle")
        style_name = style.get(f"{_W}val", "") if style is not None else ""
        text = _clean(self._runs(p, self.links, markers=True))
        if not text:
            return None
        heading = _HEADING_RE.match(style_name)
        if heading:
            return "h", "#" * int(heading.group(1)) + " " + text
        if style_name.lower() == "title":
            return "h", "# " + text
        if p.find(f"{_W}pPr/{_W}numPr") is not None or style_name.lower().startswith("list"):
            return "li", "- " + escape(text)
        return "p", escape(text)

    def numbered_notes(self) -> dict[int, str]:
        """The referenced notes' text by the number the body shows."""
        numbers = self._numbers()
        out = {}
        for (kind, note_id), number in numbers.items():
            note = self.notes[kind].get(note_id)
            if note is None:
                continue
            text = " ".join(
                _clean(self._runs(p, note.links, markers=False)) for p in note.paragraphs
            )
            out[number] = _clean(text)
        return out

    def _numbers(self) -> dict[tuple[str, str], int]:
        footnotes = [k for k in self.order if k[0] == "footnote"]
        endnotes = [k for k in self.order if k[0] == "endnote"]
        return {key: i for i, key in enumerate(footnotes + endnotes, start=1)}

    def _runs(self, p: ElementTree.Element, links: dict[str, str], *, markers: bool) -> str:
        parts: list[str] = []
        for node in p:
            if node.tag == f"{_W}r":
                parts.append(self._run(node, markers=markers))
            elif node.tag == f"{_W}hyperlink":
                label = "".join(self._run(r, markers=markers) for r in node.iter(f"{_W}r"))
                url = links.get(node.get(f"{_R}id", ""), "")
                if url.startswith(("http://", "https://")) and not markers:
                    parts.append(f"<{url}>" if _clean(label) == url else f"[{label}]({url})")
                else:
                    parts.append(label)
            elif node.tag in (f"{_W}ins", f"{_W}smartTag", f"{_W}sdt", f"{_W}fldSimple"):
                parts.append(self._runs(node, links, markers=markers))
        return "".join(parts)

    def _run(self, r: ElementTree.Element, *, markers: bool) -> str:
        out: list[str] = []
        superscript = r.find(f"{_W}rPr/{_W}vertAlign")
        raised = superscript is not None and superscript.get(f"{_W}val") == "superscript"
        for node in r:
            if node.tag == f"{_W}t":
                out.append(node.text or "")
            elif node.tag in (f"{_W}tab", f"{_W}br", f"{_W}cr"):
                out.append(" ")
            elif node.tag in (f"{_W}footnoteReference", f"{_W}endnoteReference") and markers:
                kind = "footnote" if node.tag.endswith("footnoteReference") else "endnote"
                key = (kind, node.get(f"{_W}id", ""))
                self.order.setdefault(key, len(self.order))
                out.append(f"\x00{kind}:{key[1]}\x00")
        text = "".join(out)
        if raised and markers and re.fullmatch(r"\s*\d{1,4}\s*", text):
            # A note number typed as superscript rather than a real reference.
            return f"<sup>{text.strip()}</sup>"
        return text

    def resolve(self, text: str) -> str:
        numbers = self._numbers()
        return re.sub(
            r"\x00(footnote|endnote):([^\x00]*)\x00",
            lambda m: f"<sup>{numbers[(m.group(1), m.group(2))]}</sup>",
            text,
        )


def _body_paragraphs(body: ElementTree.Element) -> list[ElementTree.Element]:
    """The body's paragraphs in reading order, table cells' included; not those
    nested in a text box's fallback copy."""
    return [p for p in body.iter(f"{_W}p") if p.find(f".//{_W}txbxContent") is None]


def _clean(text: str) -> str:
    return _SPACE_RE.sub(" ", text.replace("\xa0", " ")).strip()
