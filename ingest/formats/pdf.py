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

import functools
import io
import logging
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ingest.errors import CorpusError
from ingest.formats.compose import compose, escape
from ingest.text import consecutive_runs

# A superscript is set at most this share of its line's type size...
SUPERSCRIPT_SIZE = 0.9
# ...with its baseline raised by at least this share of it.
SUPERSCRIPT_RISE = 0.15
# A heading is set at least this much larger than the body text.
HEADING_SIZE = 1.12
# A heading is at most this long.
HEADING_CHARS = 160
# A line in this top or bottom share of the page that repeats on this share of
# the pages is a running header or footer.
MARGIN_SHARE = 0.1
RUNNING_SHARE = 0.4
# A horizontal gap over this share of the type size between two characters is a
# space the PDF does not draw.
WORD_GAP = 0.1
# A side column stands left of the main text across a gap this many type sizes wide.
SIDE_GAP = 1.2
# A vertical gap over this share of the type size starts a new paragraph.
PARAGRAPH_GAP = 0.55
# Two columns are split by a gutter at least this share of the type size wide,
# free of text in at least this share of the page's text rows, and each column
# spans at least this share of the page's width (a table's narrow label column
# is not a column of text).
GUTTER_WIDTH = 0.8
GUTTER_ROWS = 0.25
COLUMN_WIDTH = 0.25
_BULLET_RE = re.compile(r"^[•◦▪‣∙·\-–]\s+")
_NOTE_START_RE = re.compile(r"^(\d{1,4})[.)]?\s+(\S.*)$")
# A note at a page's foot may start with its number raised, as its marker is, and
# the raised number may stand on a line of its own above the note's first line.
_RAISED_START_RE = re.compile(r"^<sup>(\d{1,4})</sup>[.)]?\s*(\S.*)$")
_LABEL_ONLY_RE = re.compile(r"^(?:<sup>)?(\d{1,4})(?:</sup>)?[.)]?()$")
_CONTENTS_RE = re.compile(r"^(?:table of )?contents$", re.IGNORECASE)
_LEADERS_RE = re.compile(r"(?:\.\s?){4,}\s*(?:\d{1,4}|[ivxlc]{1,6})$")
# An entry of a table of contents: a title, then its page (maybe raised).
_CONTENTS_ENTRY_RE = re.compile(
    r"(?:\.\s?){2,}\s*\d{1,4}$|[A-Za-z)]\s*(?:<sup>)?\d{1,4}(?:</sup>)?$"
)
_CID_START_RE = re.compile(r"^(?:\(cid:\d+\)\s*)+(?=\S)")
_CID_RE = re.compile(r"\(cid:\d+\)")
_SUP_RE = re.compile(r"<sup>(\d{1,4})</sup>")
_NOTE_HEADINGS = frozenset({"notes", "endnotes", "end notes", "footnotes", "references and notes"})
_BACKLINK_RE = re.compile(r"\s*↩\ufe0e?\ufe0f?")
_URL_TAIL_RE = re.compile(r"(?:https?://|www\.)\S*$")
_WORD_RE = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*-?")
log = logging.getLogger(__name__)


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
    # The part of the page it was read from (0 for a page in one column) and,
    # in a column, the column's left and right text edges.
    box: int = 0
    area: tuple[float, float] | None = None
    first_word: float = 0.0  # the width of its first word


@dataclass
class _Block:
    kind: str  # "p", "h", "li", "note"
    lines: list[_Line]
    level: int = 0
    words: _Words | None = None  # the document's words, for mending hyphens

    @property
    def text(self) -> str:
        return _join(self.lines, self.words)


def read_pdf(data: bytes, *, name: str) -> PdfDocument:
    """The text of a PDF as parser text; an encrypted, damaged or text-less PDF
    raises CorpusError naming the file."""
    lines, meta, pages = _read_lines(data, name)
    if not any(line.text.strip() for line in lines):
        raise CorpusError(
            f"{name}: the PDF has no text layer (a scanned document?); "
            "it needs OCR, which memoqa does not do"
        )
    lines = _without_contents(_without_running_lines(lines))
    body = _body_size(lines)
    words = _words(lines)
    foot = {id(line) for line in _foot_lines(lines, body)}
    citing_one = {
        line.page for line in lines if id(line) not in foot and "<sup>1</sup>" in line.text
    }
    page_notes, others = _page_notes([line for line in lines if id(line) in foot], citing_one)
    taken = foot - {id(line) for line in others}
    blocks = _blocks([line for line in lines if id(line) not in taken], body, words)
    if page_notes:
        notes = _numbered(page_notes, [line for block in blocks for line in block.lines], words)
    else:
        notes = _end_notes(blocks, words)
    out = []
    for block in _titled(_drop_caps(blocks)):
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
    """The page's lines in reading order: a part set in two columns is read
    column by column, full-width parts in their place."""
    chars = [c for c in page.chars if c.get("text", "").strip()]
    if not chars:
        return []
    size = statistics.median(c["size"] for c in chars)
    boxes = _reading_boxes(chars, float(page.width), float(page.height), size)
    links = page_links(page)
    if len(boxes) == 1:
        return _box_lines(page, page, links, size, 0, None)
    out = []
    for index, box in enumerate(boxes):
        part = page.filter(lambda obj, box=box: box.holds(obj))
        out += _box_lines(part, page, links, size, index, box.area)
    return out


@dataclass
class _Box:
    """A part of a page read as one: its bounds, and a column's text edges."""

    x0: float
    top: float
    x1: float
    bottom: float
    area: tuple[float, float] | None = None

    def holds(self, obj: dict[str, Any]) -> bool:
        if "x0" not in obj or "top" not in obj:
            return True
        x = float(obj["x0"] + obj["x1"]) / 2
        y = float(obj["top"] + obj["bottom"]) / 2
        return self.x0 <= x < self.x1 and self.top <= y < self.bottom


def _reading_boxes(
    chars: list[dict[str, Any]], width: float, height: float, size: float
) -> list[_Box]:
    """The page cut into parts in reading order. Where a gutter runs down the
    page, each run of rows that no text crosses is read as a left and then a
    right column; rows that cross it (a title, a wide figure, a page number) are
    read across, in their place. A page without a gutter is one part."""
    rows = _text_rows(chars, size)
    gutter = _gutter(rows, width, size)
    if gutter is None:
        return [_Box(0.0, 0.0, width, height)]
    # Each row's text from its highest top to its lowest bottom.
    extents: dict[int, tuple[float, float]] = {}
    for c in chars:
        row = _row(c, size)
        top, bottom = extents.get(row, (c["top"], c["bottom"]))
        extents[row] = (min(top, c["top"]), max(bottom, c["bottom"]))
    # Consecutive rows of one kind (crossed or split by the gutter) form a band;
    # a band starts halfway between the row above it and its own first row.
    bands: list[tuple[float, bool]] = []  # (top, split)
    above = 0.0
    for row, spans in sorted(rows.items()):
        split = not any(a <= gutter <= b for a, b in spans)
        top, bottom = extents[row]
        if not bands or bands[-1][1] != split:
            bands.append(((above + top) / 2 if bands else top, split))
        above = bottom
    # Each column's text edges, from the rows the gutter splits.
    split_spans = [
        span
        for spans in rows.values()
        if not any(a <= gutter <= b for a, b in spans)
        for span in spans
    ]
    left = [span for span in split_spans if span[1] < gutter]
    right = [span for span in split_spans if span[0] > gutter]
    left_area = (min(a for a, _ in left), max(b for _, b in left))
    right_area = (min(a for a, _ in right), max(b for _, b in right))
    boxes = []
    for i, (top, split) in enumerate(bands):
        start = 0.0 if i == 0 else top
        end = bands[i + 1][0] if i + 1 < len(bands) else height + 1
        if split:
            boxes.append(_Box(0.0, start, gutter, end, left_area))
            boxes.append(_Box(gutter, start, width + 1, end, right_area))
        else:
            boxes.append(_Box(0.0, start, width + 1, end))
    return boxes


def _text_rows(chars: list[dict[str, Any]], size: float) -> dict[int, list[tuple[float, float]]]:
    """The page in rows one type size high, each with the spans its text covers
    (characters closer than a gutter merged into one span)."""
    rows: dict[int, list[tuple[float, float]]] = {}
    for c in sorted(chars, key=lambda c: c["x0"]):
        spans = rows.setdefault(_row(c, size), [])
        if spans and c["x0"] - spans[-1][1] < GUTTER_WIDTH * size:
            spans[-1] = (spans[-1][0], max(spans[-1][1], c["x1"]))
        else:
            spans.append((c["x0"], c["x1"]))
    return rows


def _row(char: dict[str, Any], size: float) -> int:
    """The row of the page a character is set in, rows one type size high. A
    small raised digit (a note marker) counts in the row of the line it is
    raised above: its foot is about where that line's middle is."""
    if char["text"].isdigit() and char["size"] < SUPERSCRIPT_SIZE * size:
        return int((char["bottom"] + 0.15 * size) // size)
    return int((char["top"] + char["bottom"]) / 2 // size)


def _gutter(rows: dict[int, list[tuple[float, float]]], width: float, size: float) -> float | None:
    """The middle of the gutter between two columns, or None: the x in the
    page's middle half that splits the most rows into text on both sides."""
    counts: dict[int, int] = {}
    for x in range(int(0.25 * width), int(0.75 * width) + 1):
        counts[x] = sum(
            1
            for spans in rows.values()
            if spans[0][0] < x < spans[-1][1] and not any(a <= x <= b for a, b in spans)
        )
    most = max(counts.values(), default=0)
    if most < max(4, GUTTER_ROWS * len(rows)):
        return None
    best = [x for x, n in counts.items() if n == most]
    # The middle of the widest run of best positions.
    run = max(consecutive_runs(best), key=len)
    gutter = (run[0] + run[-1]) / 2
    lefts = [a for spans in rows.values() for a, b in spans if b < gutter]
    rights = [b for spans in rows.values() for a, b in spans if a > gutter]
    if (
        not lefts
        or not rights
        or gutter - min(lefts) < COLUMN_WIDTH * width
        or max(rights) - gutter < COLUMN_WIDTH * width
    ):
        return None
    return gutter


def _box_lines(
    part: Any,
    page: Any,
    links: list[dict[str, Any]],
    size: float,
    box: int,
    area: tuple[float, float] | None,
) -> list[_Line]:
    """The lines of one part of a page, superscripts kept on the line they
    belong to (a tolerance of about half a line) and turned into markers. Text
    set in a side column left of the main text (a date and author beside a
    summary, a report's headings in its left margin) is read apart from the
    lines it stands beside, before them."""
    # List bullets are often drawn, not typed: a small shape just left of a line.
    bullets = [
        shape
        for shape in [*part.curves, *part.rects]
        if shape["width"] < 0.6 * size and shape["height"] < 0.6 * size
    ]
    raws = [
        chars
        for raw in part.extract_text_lines(return_chars=True, y_tolerance=0.45 * size)
        if (chars := [c for c in raw["chars"] if c.get("text")])
    ]
    edges = _main_edges(raws)
    main: list[_Line] = []
    side: list[_Line] = []
    for chars in raws:
        left, middle, right = _side_parts(chars, edges, size)
        for piece, into in ((left, side), (middle, main), (right, side)):
            line = _line(piece, page, box, area, links, bullets) if piece else None
            if line is not None:
                into.append(line)
    if not side:
        return main
    # Each run of side lines goes before the main line it stands beside.
    for line in side:
        line.box = -1 - box
    runs: list[list[_Line]] = []
    for line in side:
        if runs and line.top - runs[-1][-1].bottom < PARAGRAPH_GAP * line.size:
            runs[-1].append(line)
        else:
            runs.append([line])
    # A run goes before the paragraph beside its first line.
    places: dict[int, list[_Line]] = {}
    for run in runs:
        at = next((i for i, line in enumerate(main) if line.bottom > run[0].top), len(main))
        while 0 < at < len(main) and (
            main[at].top - main[at - 1].bottom < PARAGRAPH_GAP * main[at].size
        ):
            at -= 1
        places.setdefault(at, []).extend(run)
    out: list[_Line] = []
    for i, line in enumerate(main):
        out += places.pop(i, [])
        out.append(line)
    return out + [line for run in places.values() for line in run]


def _main_edges(raws: list[list[dict[str, Any]]]) -> tuple[float, float] | None:
    """The left and right edges most of a part's lines start and end at (rounded
    to a point; justified text ends where it starts, in every line), or None for
    a part of a few lines."""
    if len(raws) < 4:
        return None
    starts = Counter(round(min(c["x0"] for c in chars)) for chars in raws)
    ends = Counter(round(max(c["x1"] for c in chars)) for chars in raws)
    return float(starts.most_common(1)[0][0]), float(ends.most_common(1)[0][0])


def _side_parts(
    chars: list[dict[str, Any]], edges: tuple[float, float] | None, size: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """A line's characters cut into what stands in a side column left of the main
    text, the main text, and what stands in a side column at its right. A side
    part is set off by a gap SIDE_GAP type sizes wide and holds words: at the
    left, it ends short of the main text's left edge; at the right, it follows
    prose that starts at that edge and runs at least half the text's width (a
    table's first cell does not)."""
    ordered = sorted(chars, key=lambda c: c["x0"])
    if edges is None:
        return [], ordered, []
    left_edge, right_edge = edges

    def words(part: list[dict[str, Any]]) -> bool:
        return sum(bool(c["text"].isalpha()) for c in part) >= 3

    if ordered[-1]["x1"] < left_edge - 0.5 * size:
        return (ordered, [], []) if words(ordered) else ([], ordered, [])
    left: list[dict[str, Any]] = []
    right: list[dict[str, Any]] = []
    for i in range(1, len(ordered)):
        a, b = ordered[i - 1], ordered[i]
        if b["x0"] - a["x1"] <= SIDE_GAP * size:
            continue
        if not left and a["x1"] < left_edge - size and abs(b["x0"] - left_edge) < size:
            left = ordered[:i] if words(ordered[:i]) else []
        elif (
            abs(ordered[0]["x0"] - left_edge) < size
            and a["x1"] - left_edge >= 0.5 * (right_edge - left_edge)
            and words(ordered[i:])
        ):
            # Prose wrapped short of a column standing at its right.
            right = ordered[i:]
            break
    main = ordered[len(left) : len(ordered) - len(right)]
    return left, main, right


def _line(
    line_chars: list[dict[str, Any]],
    page: Any,
    box: int,
    area: tuple[float, float] | None,
    links: list[dict[str, Any]],
    bullets: list[dict[str, Any]],
) -> _Line | None:
    """One line from its characters; None for a line with no text."""
    main_size = Counter(round(c["size"], 1) for c in line_chars).most_common(1)[0][0]
    text = _marked_text(line_chars, main_size)
    # A glyph without a Unicode mapping reads as "(cid:N)": at a line's start
    # it is a bullet drawn from a symbol font; elsewhere it is dropped.
    text = _CID_RE.sub("", _CID_START_RE.sub("• ", text)).strip()
    if not text:
        return None
    x0, x1 = min(c["x0"] for c in line_chars), max(c["x1"] for c in line_chars)
    top, bottom = min(c["top"] for c in line_chars), max(c["bottom"] for c in line_chars)
    if any(
        0 <= x0 - b["x1"] < 2 * main_size and b["top"] < bottom and b["bottom"] > top
        for b in bullets
    ):
        text = "• " + text
    bold = sum("bold" in c.get("fontname", "").lower() for c in line_chars) > len(line_chars) / 2
    uris = [
        link["uri"]
        for link in links
        if link["top"] <= bottom and link["bottom"] >= top and link["x0"] <= x1 and link["x1"] >= x0
    ]
    return _Line(
        text,
        main_size,
        bold,
        top,
        bottom,
        x0,
        x1,
        page.page_number,
        float(page.height),
        uris,
        box,
        area,
        _first_word(line_chars, main_size),
    )


def page_links(page: Any) -> list[dict[str, Any]]:
    """The page's link annotations with a URI, in page coordinates (top, bottom,
    x0, x1). Each annotation is read on its own and only the entries a link needs
    are resolved: a tagged PDF's annotations point back into its structure tree
    (/P, /StructParent), which resolving whole can recurse without end. One that
    cannot be read is skipped with a warning; it never costs the page its text."""
    from pdfminer.pdftypes import resolve1
    from pdfminer.psparser import PSLiteral

    links = []
    try:
        annots = resolve1(page.page_obj.annots) or []
        annots = list(annots) if isinstance(annots, list) else []
    except Exception as exc:  # pdfminer raises many kinds for a damaged object
        log.warning("page %s: link annotations unreadable (%s); skipped", page.page_number, exc)
        annots = []
    skipped = 0
    for ref in annots:
        try:
            annot = resolve1(ref)
            if not isinstance(annot, dict):
                continue
            action = resolve1(annot.get("A"))
            uri = resolve1(action.get("URI")) if isinstance(action, dict) else None
            if isinstance(uri, PSLiteral):
                uri = uri.name
            if isinstance(uri, bytes):
                uri = _decoded(uri)
            if not isinstance(uri, str) or not uri.strip():
                continue
            box = resolve1(annot.get("Rect"))
            if not isinstance(box, list) or len(box) != 4:
                raise ValueError(f"not a rectangle: {box!r}")
            rect = [float(resolve1(v)) for v in box]
            links.append({"uri": uri.strip(), **_page_box(page, rect)})
        except Exception:  # one damaged annotation: skip it, keep the rest
            skipped += 1
    if skipped:
        log.warning("page %s: %d link annotation(s) unreadable; skipped", page.page_number, skipped)
    return links


def _decoded(raw: bytes) -> str:
    if raw.startswith((b"\xfe\xff", b"\xff\xfe")):
        return raw.decode("utf-16", "replace")
    return raw.decode("utf-8", "replace")


def _page_box(page: Any, rect: list[float]) -> dict[str, float]:
    """A PDF rectangle (x0, y0, x1, y1 from the bottom left, any two opposite
    corners) as the page's top, bottom, x0 and x1, the page's rotation applied."""
    width, height = float(page.width), float(page.height)

    def rotated(x: float, y: float) -> tuple[float, float]:
        for turn in range(int(page.rotation or 0) // 90 % 4):
            x, y = y, (width if turn == (int(page.rotation) // 90) % 2 else height) - x
        return x, y

    (ax, ay), (bx, by) = rotated(rect[0], rect[1]), rotated(rect[2], rect[3])
    root = float(page.root_page.height)
    return {
        "x0": min(ax, bx),
        "x1": max(ax, bx),
        "top": root - max(ay, by),
        "bottom": root - min(ay, by),
    }


def _first_word(chars: list[dict[str, Any]], size: float) -> float:
    """The width of the line's first word: up to its first space or gap."""
    ordered = sorted(chars, key=lambda c: c["x0"])
    end = ordered[0]
    for c in ordered[1:]:
        if c["text"] == " " or c["x0"] - end["x1"] > WORD_GAP * size:
            break
        end = c
    return float(end["x1"] - ordered[0]["x0"])


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
    # A page may extend its running line (the last page's footer adds the
    # report's number and version, say).
    prefixes = tuple(p for p in (s.rstrip(" #") for s in running) if len(p) >= 12)

    def is_running(line: _Line) -> bool:
        text = shape(line)
        return (
            text in running
            or bool(prefixes and text.startswith(prefixes))
            or bool(re.fullmatch(r"(page\s*)?#(\s*(of|/)\s*#)?", text))
        )

    return [line for line in lines if not (in_margin(line) and is_running(line))]


def _without_contents(lines: list[_Line]) -> list[_Line]:
    """Lines without the table of contents: on a page headed "Contents" or with
    lines of dot leaders, the heading, each entry ending in a page number, and
    the lines between entries (a title broken over two lines)."""
    out: list[_Line] = []
    for page in dict.fromkeys(line.page for line in lines):
        on_page = [line for line in lines if line.page == page]
        entries = [bool(_CONTENTS_ENTRY_RE.search(line.text)) for line in on_page]
        headed = any(_CONTENTS_RE.match(line.text) for line in on_page)
        leaders = sum(bool(_LEADERS_RE.search(line.text)) for line in on_page)
        if not (headed and sum(entries) >= 3) and leaders < 3:
            out += on_page
            continue
        hits = [i for i, entry in enumerate(entries) if entry]
        first, last = hits[0], hits[-1]
        for i, line in enumerate(on_page):
            if _CONTENTS_RE.match(line.text) or first <= i <= last:
                continue
            out.append(line)
    return out


def _body_size(lines: list[_Line]) -> float:
    """The body text's type size: the size most characters in the pages' upper
    halves are set in (a paper with many notes can hold more lines of notes than
    of body text, but its notes sit at the pages' feet)."""
    upper = [line for line in lines if line.top < 0.5 * line.page_height] or lines
    weights: Counter[float] = Counter()
    for line in upper:
        weights[round(line.size, 1)] += len(line.text)
    return weights.most_common(1)[0][0]


def _is_footnote(line: _Line, body: float) -> bool:
    """A line of the notes at a page's foot: smaller type in the page's lower part."""
    return line.size < 0.92 * body and line.top > 0.5 * line.page_height and line.size >= 4


def _blocks(lines: list[_Line], body: float, words: _Words) -> list[_Block]:
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
            or (
                (previous.page, previous.box) != (line.page, line.box)
                and not _runs_on(previous, line, right_edge)
            )
            or kind == "li"
            or current.kind != ("li" if kind == "p" and current.kind == "li" else kind)
            or line.top - previous.bottom > PARAGRAPH_GAP * line.size
            or abs(line.size - previous.size) > 0.5
        )
        if starts_new:
            blocks.append(_Block(kind, [line], min(level, 6), words))
        else:
            current.lines.append(line)  # type: ignore[union-attr]
        previous = line
    for block in blocks:
        if block.kind == "h" and _prose(block):
            block.kind, block.level = "p", 0
    return blocks


def _drop_caps(blocks: list[_Block]) -> list[_Block]:
    """A paragraph's first letter set large (a drop cap) reads as a heading of
    one letter: it is put back at the start of its paragraph."""
    out: list[_Block] = []
    for i, block in enumerate(blocks):
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        if (
            block.kind == "h"
            and re.fullmatch(r"[A-Z]", block.text.strip())
            and following is not None
            and following.kind == "p"
            and following.text[:1].islower()
        ):
            following.lines[0].text = block.text.strip() + following.lines[0].text
            continue
        out.append(block)
    return out


def _titled(blocks: list[_Block]) -> list[_Block]:
    """The first heading is the paper's title (level 1), every other heading a
    section (level 2 or deeper): the type sizes of a cover page, a logo or a
    drop cap say nothing of the paper's outline."""
    first = next((b for b in blocks if b.kind == "h"), None)
    for block in blocks:
        if block.kind == "h":
            block.level = 1 if block is first else max(2, block.level)
    return blocks


def _prose(block: _Block) -> bool:
    """Whether text set in a heading's type is prose: a paper whose tables hold
    more text than its paragraphs can make its body type look large. A heading
    is short; a block of more than HEADING_CHARS characters, or a sentence of
    several words, is a paragraph."""
    text = block.text.strip()
    return len(text) > HEADING_CHARS or (text.endswith(".") and len(text.split()) >= 8)


def _runs_on(last: _Line, first: _Line, right_edge: float) -> bool:
    """Whether a column's last line and the next column's (or page's) first
    line are one paragraph: the next line's first word would not have fitted at
    the end of the last (so the line was full, not a paragraph's end), and the
    next line starts at its column's margin, in the same type."""
    left, right = last.area or (0.0, right_edge)
    first_left = first.area[0] if first.area else left
    return (
        right - last.x1 < first.first_word + 0.5 * first.size
        and abs((first.x0 - first_left) - (last.x0 - left)) < 2
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


@dataclass
class _Note:
    """A note found at a page's foot: the number printed, its sequence (a paper's
    numbering may restart, per letter, chapter or appendix) and its lines."""

    label: int
    sequence: int
    page: int
    lines: list[_Line]


def _page_notes(footnotes: list[_Line], citing_one: set[int]) -> tuple[list[_Note], list[_Line]]:
    """Notes set at the pages' feet, in order, and the lines at the feet that
    belong to no note (a figure's source line, say). Each note starts with its
    number, the next of its sequence. A note 1 after others starts a new sequence
    where a marker 1 stands on its page or the page before (`citing_one`) and it
    cannot be a line of the note before: its number is raised or stands alone,
    or it is the first line of its page's notes. A line that starts no note
    continues the note above it on its page; at the top of a page's notes, it
    continues the last note of the page before only where that note was left
    unfinished (no full stop) or the line starts in lower case."""
    notes: list[_Note] = []
    others: list[_Line] = []
    open_on: int | None = None  # the page whose note the next plain line continues
    for line in footnotes:
        first_on_page = open_on != line.page and (not others or others[-1].page != line.page)
        plain = _NOTE_START_RE.match(line.text)
        raised = _RAISED_START_RE.match(line.text) or _LABEL_ONLY_RE.match(line.text)
        start = plain or raised
        number = int(start.group(1)) if start else None
        current = notes[-1] if notes else None
        if start and number == (current.label if current else 0) + 1:
            sequence = current.sequence if current else 1
        elif (
            start
            and number == 1
            and current
            and (raised or first_on_page)
            and {line.page, line.page - 1} & citing_one
        ):
            sequence = current.sequence + 1
        else:
            if current is not None and (
                open_on == line.page or (first_on_page and _unfinished(current, line))
            ):
                current.lines.append(line)
                open_on = line.page
            else:
                others.append(line)
                open_on = None
            continue
        line.text = start.group(2)
        notes.append(_Note(int(start.group(1)), sequence, line.page, [line]))
        open_on = line.page
    return notes, others


def _unfinished(note: _Note, line: _Line) -> bool:
    """Whether `line`, at the top of a page's notes, runs on from `note` on an
    earlier page."""
    last = note.lines[-1].text.rstrip()
    return (
        line.page == note.lines[-1].page + 1
        and bool(last)
        and (not last.endswith((".", ".”", '."', ".)")) or line.text[:1].islower())
    )


def _foot_lines(lines: list[_Line], body: float) -> list[_Line]:
    """The lines that may be notes at a page's foot: smaller type in the page's
    lower half, below every line of body-size type on the page (a box of small
    type between paragraphs is not a note)."""
    lowest: dict[int, float] = {}
    for line in lines:
        if line.size >= 0.92 * body:
            lowest[line.page] = max(lowest.get(line.page, 0.0), line.bottom)
    return [
        line
        for line in lines
        if _is_footnote(line, body) and line.top >= lowest.get(line.page, 0.0) - 1
    ]


def _numbered(notes: list[_Note], lines: list[_Line], words: _Words) -> dict[int, str]:
    """The notes by the number each is cited by, and each marker of `lines` set to
    the number of the note it cites. One sequence keeps its printed numbers; where
    the numbering restarts, later sequences are numbered on from the last note of
    the sequence before, and a marker cites the note of its own sequence: the one
    at its page's foot, or else the last sequence begun by its page."""
    keys: dict[tuple[int, int], int] = {}
    for note in notes:
        keys[(note.sequence, note.label)] = len(keys) + 1
    if all(note.sequence == 1 for note in notes):
        keys = {(1, note.label): note.label for note in notes}
    else:
        on_page = {(note.page, note.label): note.sequence for note in notes}
        begun: dict[int, int] = {}
        for note in notes:
            begun.setdefault(note.page, note.sequence)
            begun[note.page] = max(begun[note.page], note.sequence)

        def cite(line: _Line, marker: re.Match[str]) -> str:
            label = int(marker.group(1))
            sequence = on_page.get((line.page, label))
            if sequence is None:
                earlier = [s for page, s in begun.items() if page <= line.page]
                sequence = max(earlier, default=1)
                while sequence > 1 and (sequence, label) not in keys:
                    sequence -= 1
            key = keys.get((sequence, label))
            return f"<sup>{key if key is not None else label}</sup>"

        for line in lines:
            line.text = _SUP_RE.sub(functools.partial(cite, line), line.text)
    return {keys[(n.sequence, n.label)]: _note_text(n.lines, words) for n in notes}


def _end_notes(blocks: list[_Block], words: _Words) -> dict[int, str]:
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
        text = _note_text(note_lines, words)
        out[number] = _NOTE_START_RE.sub(r"\2", text, count=1)
    return out


def _note_text(lines: list[_Line], words: _Words) -> str:
    """A note's text, with the URLs of its link annotations that its text breaks
    or leaves out."""
    text = _BACKLINK_RE.sub("", _join(lines, words)).strip()
    for uri in dict.fromkeys(u for line in lines for u in line.links):
        if uri.startswith(("http://", "https://")) and uri not in text:
            text += f" <{uri}>"
    return text


@dataclass(frozen=True)
class _Words:
    """The document's words (compounds with their hyphens, in lower case), and
    whether its line ends hyphenate words or only break compounds."""

    known: frozenset[str]
    hyphenates: bool


def _words(lines: list[_Line]) -> _Words:
    known = frozenset(
        w.lower() for line in lines for w in _WORD_RE.findall(line.text) if not w.endswith("-")
    )
    split = compound = 0
    for line, following in zip(lines, lines[1:], strict=False):
        head, tail = _broken(line.text, following.text)
        if head and tail:
            split += head[:-1] + tail in known
            compound += head + tail in known
    return _Words(known, hyphenates=split >= compound)


def _broken(text: str, piece: str) -> tuple[str, str]:
    """The word `text` ends with a hyphen and the word `piece` starts with."""
    before = re.search(r"[A-Za-z][A-Za-z-]*-$", text.strip())
    after = _WORD_RE.match(piece.strip())
    return (before.group(0).lower() if before else "", after.group(0).lower() if after else "")


def _join(lines: list[_Line], words: _Words | None = None) -> str:
    """Lines joined into one: a word broken at a line end is mended, and a URL
    broken over two lines is joined without a space."""
    text = ""
    for line in lines:
        piece = line.text.strip()
        if not text:
            text = piece
        elif _URL_TAIL_RE.search(text) and not re.search(r"[.,;)]$", text):
            text += piece
        elif re.search(r"[A-Za-z]-$", text) and piece[:1].isalpha():
            text = _mend(text, piece, words or _Words(frozenset(), hyphenates=True))
        elif re.search(r"(\w-|\w—|-\d)$", text) and piece[:1].isalnum():
            text += piece  # a number's hyphen, or an unspaced dash
        else:
            text += " " + piece
    return text


def _mend(text: str, piece: str, words: _Words) -> str:
    """`text` ending in a hyphen joined to the next line's `piece`. The document's
    own words decide: the hyphen stays where the compound is written elsewhere
    (`political-military`) and goes where the whole word is (`organization`).
    Without that evidence it stays before a capital or a hyphenated word
    (`Sino-Russian`, `information-technology-enhanced`), and otherwise goes
    only if the document's line ends hyphenate words."""
    head, tail = _broken(text, piece)
    if head + tail in words.known:
        return text + piece
    if head[:-1] + tail in words.known:
        return text[:-1] + piece
    if piece[:1].isupper() or "-" in tail or not words.hyphenates:
        return text + piece
    return text[:-1] + piece
