"""PDFs with a text layer, read with pdfplumber (MIT): lines rebuilt from the
characters with their superscripts, running headers, footers and page numbers
removed, hyphenated line ends repaired, headings found by font size, and the
notes found either at each page's foot (smaller type starting with a number) or
as a numbered run at the end, with the URLs of their link annotations.

A note marker is a number set smaller than its line and raised above its
baseline, not a digit that happens to follow a word. The file becomes the text
the markdown parser reads, so every format shares one document model;
character offsets refer to that text. A PDF without a text layer (a scan) is
refused: there is no OCR here.
"""

from __future__ import annotations

import io
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ingest.errors import CorpusError
from ingest.formats.compose import compose, escape

# A superscript is set at most this share of its line's type size...
SUPERSCRIPT_SIZE = 0.9
# ...with its baseline raised by at least this share of it.
SUPERSCRIPT_RISE = 0.15
# A heading is set at least this much larger than the body text.
HEADING_SIZE = 1.12
# A line in this top or bottom share of the page that repeats on this share of
# the pages is a running header or footer.
MARGIN_SHARE = 0.1
RUNNING_SHARE = 0.4
# A horizontal gap over this share of the type size between two characters is a
# space the PDF does not draw.
WORD_GAP = 0.1
# A vertical gap over this share of the type size starts a new paragraph.
PARAGRAPH_GAP = 0.55
_BULLET_RE = re.compile(r"^[•◦▪‣∙·\-–]\s+")
_NOTE_START_RE = re.compile(r"^(\d{1,4})[.)]?\s+(\S.*)$")
_NOTE_HEADINGS = frozenset({"notes", "endnotes", "end notes", "footnotes", "references and notes"})
_BACKLINK_RE = re.compile(r"\s*↩\ufe0e?\ufe0f?")
_URL_TAIL_RE = re.compile(r"(?:https?://|www\.)\S*$")


@dataclass
class PdfDocument:
    """What a PDF holds: its text (for the parser), notes and document info."""

    text: str
    notes: dict[int, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    pages: int = 0


@dataclass
class _Line:
    text: str  # with note markers as <sup>N</sup>
    size: float  # the line's main type size
    bold: bool
    top: float
    bottom: float
    x0: float
    x1: float
    page: int
    page_height: float
    links: list[str] = field(default_factory=list)  # URIs of link annotations on it


@dataclass
class _Block:
    kind: str  # "p", "h", "li", "note"
    lines: list[_Line]
    level: int = 0

    @property
    def text(self) -> str:
        return _join(self.lines)


def read_pdf(data: bytes, *, name: str) -> PdfDocument:
    """The text of a PDF as parser text; an encrypted, damaged or text-less PDF
    raises CorpusError naming the file."""
    lines, meta, pages = _read_lines(data, name)
    if not any(line.text.strip() for line in lines):
        raise CorpusError(
            f"{name}: the PDF has no text layer (a scanned document?); "
            "it needs OCR, which memoqa does not do"
        )
    body = statistics.mode(round(line.size, 1) for line in lines)
    lines = _without_running_lines(lines)
    footnotes = [line for line in lines if _is_footnote(line, body)]
    blocks = _blocks([line for line in lines if line not in footnotes], body)
    notes = _page_notes(footnotes) or _end_notes(blocks)
    out = []
    for block in blocks:
        if block.kind == "h":
            out.append(("h", "#" * block.level + " " + block.text))
        elif block.kind == "li":
            out.append(("li", "- " + escape(_BULLET_RE.sub("", block.text))))
        elif block.kind == "p":
            out.append(("p", escape(block.text)))
    return PdfDocument(compose(out, notes), notes, meta, pages)


def _read_lines(data: bytes, name: str) -> tuple[list[_Line], dict[str, str], int]:
    import pdfplumber
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect

    try:
        pdf = pdfplumber.open(io.BytesIO(data))
    except Exception as exc:  # pdfminer raises many kinds for a damaged file
        causes = [exc, *exc.args, exc.__context__]
        if any(isinstance(c, (PDFPasswordIncorrect, PDFEncryptionError)) for c in causes):
            raise CorpusError(f"{name}: the PDF is encrypted; decrypt it first") from exc
        raise CorpusError(f"{name}: not a readable PDF ({type(exc).__name__})") from exc
    try:
        with pdf:
            meta = _info(pdf.metadata or {})
            lines = [line for page in pdf.pages for line in _page_lines(page)]
            return lines, meta, len(pdf.pages)
    except CorpusError:
        raise
    except Exception as exc:
        raise CorpusError(f"{name}: not a readable PDF ({type(exc).__name__}: {exc})") from exc


def _info(info: dict[str, Any]) -> dict[str, str]:
    """Title, author and date from the PDF's document info."""
    found = {}
    for key, field_name in (("title", "Title"), ("author", "Author"), ("date", "CreationDate")):
        value = info.get(field_name)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str) and value.strip():
            found[key] = value.strip()
    date = found.get("date", "")
    if re.match(r"^D:\d{8}", date):
        found["date"] = f"{date[2:6]}-{date[6:8]}-{date[8:10]}"
    elif "date" in found:
        del found["date"]
    return found


def _page_lines(page: Any) -> list[_Line]:
    """The page's lines, superscripts kept on the line they belong to (a tolerance
    of about half a line) and turned into markers."""
    chars = [c for c in page.chars if c.get("text", "").strip()]
    if not chars:
        return []
    size = statistics.median(c["size"] for c in chars)
    links = [link for link in page.hyperlinks if link.get("uri")]
    # List bullets are often drawn, not typed: a small shape just left of a line.
    bullets = [
        shape
        for shape in [*page.curves, *page.rects]
        if shape["width"] < 0.6 * size and shape["height"] < 0.6 * size
    ]
    out = []
    for raw in page.extract_text_lines(return_chars=True, y_tolerance=0.45 * size):
        line_chars = [c for c in raw["chars"] if c.get("text")]
        if not line_chars:
            continue
        main_size = Counter(round(c["size"], 1) for c in line_chars).most_common(1)[0][0]
        text = _marked_text(line_chars, main_size)
        if not text.strip():
            continue
        if any(
            0 <= raw["x0"] - b["x1"] < 2 * main_size
            and b["top"] < raw["bottom"]
            and b["bottom"] > raw["top"]
            for b in bullets
        ):
            text = "• " + text
        bold = (
            sum("bold" in c.get("fontname", "").lower() for c in line_chars) > len(line_chars) / 2
        )
        uris = [
            link["uri"]
            for link in links
            if link["top"] <= raw["bottom"] and link["bottom"] >= raw["top"]
        ]
        out.append(
            _Line(
                text,
                main_size,
                bold,
                raw["top"],
                raw["bottom"],
                raw["x0"],
                raw["x1"],
                page.page_number,
                float(page.height),
                uris,
            )
        )
    return out


def _marked_text(chars: list[dict[str, Any]], main_size: float) -> str:
    """The line's text, each raised small number as `<sup>N</sup>`."""
    baseline = statistics.median(c["bottom"] for c in chars if round(c["size"], 1) == main_size)
    out: list[str] = []
    digits: list[str] = []

    def flush() -> None:
        if digits:
            out.append(f"<sup>{''.join(digits)}</sup>")
            digits.clear()

    previous: dict[str, Any] | None = None
    for c in sorted(chars, key=lambda c: c["x0"]):
        raised = (
            c["text"].isdigit()
            and c["size"] <= SUPERSCRIPT_SIZE * main_size
            and c["bottom"] <= baseline - SUPERSCRIPT_RISE * main_size
        )
        if raised:
            digits.append(c["text"])
            previous = c
            continue
        gap = c["x0"] - previous["x1"] if previous is not None else 0.0
        flush()
        if gap > WORD_GAP * main_size and c["text"] != " " and out and not out[-1].endswith(" "):
            out.append(" ")
        out.append(c["text"])
        previous = c
    flush()
    return re.sub(r"\s+", " ", "".join(out)).strip()


def _without_running_lines(lines: list[_Line]) -> list[_Line]:
    """Lines without page numbers and the headers and footers repeated in the margins."""
    pages = len({line.page for line in lines}) or 1

    def in_margin(line: _Line) -> bool:
        return (
            line.top < MARGIN_SHARE * line.page_height
            or line.bottom > (1 - MARGIN_SHARE) * line.page_height
        )

    def shape(line: _Line) -> str:
        return re.sub(r"\d+", "#", line.text.lower()).strip()

    counts = Counter(shape(line) for line in lines if in_margin(line))
    running = {s for s, n in counts.items() if n >= max(2, RUNNING_SHARE * pages)}
    return [
        line
        for line in lines
        if not (
            in_margin(line)
            and (
                shape(line) in running or re.fullmatch(r"(page\s*)?#(\s*(of|/)\s*#)?", shape(line))
            )
        )
    ]


def _is_footnote(line: _Line, body: float) -> bool:
    """A line of the notes at a page's foot: smaller type in the page's lower part."""
    return line.size < 0.92 * body and line.top > 0.5 * line.page_height and line.size >= 4


def _blocks(lines: list[_Line], body: float) -> list[_Block]:
    """Lines grouped into headings, list items and paragraphs."""
    heading_sizes = sorted(
        {round(line.size, 1) for line in lines if line.size >= HEADING_SIZE * body}, reverse=True
    )
    blocks: list[_Block] = []
    previous: _Line | None = None
    right_edge = max((line.x1 for line in lines), default=0.0)
    for line in lines:
        level = (
            heading_sizes.index(round(line.size, 1)) + 1
            if round(line.size, 1) in heading_sizes
            else 0
        )
        if not level and _bold_heading(line, body):
            level = len(heading_sizes) + 1
        kind = "h" if level else ("li" if _BULLET_RE.match(line.text) else "p")
        current = blocks[-1] if blocks else None
        starts_new = (
            current is None
            or previous is None
            or (previous.page != line.page and not _runs_on(previous, line, right_edge))
            or kind == "li"
            or current.kind != ("li" if kind == "p" and current.kind == "li" else kind)
            or line.top - previous.bottom > PARAGRAPH_GAP * line.size
            or abs(line.size - previous.size) > 0.5
        )
        if starts_new:
            blocks.append(_Block(kind, [line], min(level, 6)))
        else:
            current.lines.append(line)  # type: ignore[union-attr]
        previous = line
    return blocks


def _runs_on(last: _Line, first: _Line, right_edge: float) -> bool:
    """Whether a page's last line and the next page's first line are one
    paragraph: the last line nearly fills the column (within 15%, for ragged
    right text; a paragraph's own last line rarely does) and the next starts at
    the same margin, in the same type."""
    return (
        last.x1 >= 0.85 * right_edge
        and abs(first.x0 - last.x0) < 2
        and abs(first.size - last.size) < 0.5
        and not first.bold
    )


def _bold_heading(line: _Line, body: float) -> bool:
    """A short bold line in body-size type, not a sentence: a minor heading."""
    text = line.text.strip()
    return (
        line.bold
        and abs(line.size - body) < 0.5
        and len(text) <= 80
        and not text.endswith((".", ",", ";", ":"))
        and not _BULLET_RE.match(text)
        and "<sup>" not in text
    )


def _page_notes(footnotes: list[_Line]) -> dict[int, str]:
    """Notes set at the pages' feet: each starts with its number."""
    notes: dict[int, list[_Line]] = {}
    current: int | None = None
    for line in footnotes:
        start = _NOTE_START_RE.match(line.text)
        if start and (current is None or int(start.group(1)) == current + 1):
            current = int(start.group(1))
            line.text = start.group(2)
            notes[current] = [line]
        elif current is not None:
            notes[current].append(line)
    return {n: _note_text(ls) for n, ls in notes.items()}


def _end_notes(blocks: list[_Block]) -> dict[int, str]:
    """Notes at the end: the blocks after a "Notes" heading, or the last run of
    blocks numbered 1, 2, 3 ...; they are marked and left out of the body."""
    start = None
    for i, block in enumerate(blocks):
        if block.kind == "h" and block.text.lower().rstrip(":") in _NOTE_HEADINGS:
            start = i + 1
            block.kind = "note"
    if start is None:
        # The last block numbered 1 that a run of 2, 3, ... follows.
        for i in range(len(blocks) - 1, -1, -1):
            first = _NOTE_START_RE.match(blocks[i].text)
            if first and first.group(1) == "1":
                start = i
                break
    if start is None:
        return {}
    notes: dict[int, list[_Line]] = {}
    current: int | None = None
    for block in blocks[start:]:
        head = _NOTE_START_RE.match(block.text)
        if head and (current is None or int(head.group(1)) == current + 1):
            current = int(head.group(1))
            notes[current] = list(block.lines)
            block.kind = "note"
        elif current is not None and block.kind == "p" and not head:
            notes[current] += block.lines
            block.kind = "note"
        elif block.kind == "h":
            break
    if len(notes) < 2 and start is not None:
        return {}
    out = {}
    for number, note_lines in notes.items():
        text = _note_text(note_lines)
        out[number] = _NOTE_START_RE.sub(r"\2", text, count=1)
    return out


def _note_text(lines: list[_Line]) -> str:
    """A note's text, with the URLs of its link annotations that its text breaks
    or leaves out."""
    text = _BACKLINK_RE.sub("", _join(lines)).strip()
    for uri in dict.fromkeys(u for line in lines for u in line.links):
        if uri.startswith(("http://", "https://")) and uri not in text:
            text += f" <{uri}>"
    return text


def _join(lines: list[_Line]) -> str:
    """Lines joined into one: a word hyphenated at a line end is mended, and a URL
    broken over two lines is joined without a space."""
    text = ""
    for line in lines:
        piece = line.text.strip()
        if not text:
            text = piece
        elif _URL_TAIL_RE.search(text) and not re.search(r"[.,;)]$", text):
            text += piece
        elif re.search(r"[a-z]-$", text) and piece[:1].islower():
            text = text[:-1] + piece
        else:
            text += " " + piece
    return text
