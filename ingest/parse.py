"""Parse a paper in markdown-like text into its structure.

The structure: a title, units of body text (paragraphs, bullet lists, figure
captions with their source lines, front matter, an abbreviations list) each
with its heading path, and the numbered endnotes. Every unit keeps the exact
character ranges of the source file it came from.

Conventions handled (all common in papers converted from PDF):
- Page breaks split paragraphs mid-sentence, sometimes with a figure caption
  in between; such paragraphs are joined again (`Unit.repaired`).
- A heading that only introduces a bullet list in a box ("Moscow's Objectives
  Regarding the SCO") captions that list; the paragraphs after the list belong
  to the enclosing section, whatever the heading's level.
- Endnotes are "- N text" items; page breaks split some of them into extra
  lines, with or without a bullet, which continue the previous note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.errors import CorpusError
from ingest.text import clean_inline, extract_urls, markers_in

PARSER_VERSION = "1"

_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_ITEM_RE = re.compile(r"^(\s*)(?:[-*+•]|\d{1,3}[.)])\s+(\S.*)$")
_FIGURE_RE = re.compile(r"^(?:\*\*|\*)?(?:Figure|Fig\.|Table|Chart|Map)\s+\d+[A-Za-z]?\b")
_SOURCE_RE = re.compile(r"^(?:\*\*|\*)?(?:Sources?|Notes?)\s*:", re.IGNORECASE)
_ENDNOTE_RE = re.compile(r"^(?:[-*+•]\s+)?(\d{1,4})[.)]?\s+(\S.*)$")
_BULLET_RE = re.compile(r"^[-*+•]\s+")
_ABBR_BOLD_RE = re.compile(r"^(?:[-*+•]\s+)?\*\*(?P<abbr>[^*]+?)\*\*\s*(?P<expansion>.*)$")
_ABBR_PLAIN_RE = re.compile(
    r"^(?:[-*+•]\s+)?(?P<abbr>[A-Z][\w&/.-]{0,15})\s*[:\u2013\u2014]\s+(?P<expansion>.+)$"
)
_TRAILING_MARKERS_RE = re.compile(r"(?:<sup>\s*\d+\s*</sup>|[\s\"'”’)\]*_])+$")

ENDNOTE_HEADINGS = frozenset({"endnotes", "notes", "end notes", "references and notes"})
ABBREVIATION_HEADINGS = frozenset(
    {"abbreviations", "acronyms", "abbreviations and acronyms", "list of abbreviations"}
)


@dataclass
class Stretch:
    """Text assembled from one or more ranges of the source file, joined by one space."""

    segments: list[tuple[int, int]]
    text: str

    @classmethod
    def of(cls, source: str, segments: list[tuple[int, int]]) -> Stretch:
        return cls(list(segments), " ".join(source[a:b] for a, b in segments))

    def extend(self, other: Stretch) -> None:
        self.segments.extend(other.segments)
        self.text = f"{self.text} {other.text}"

    def sub(self, start: int, end: int) -> Stretch:
        """The part of this stretch between text offsets start and end."""
        segments: list[tuple[int, int]] = []
        offset = 0
        for a, b in self.segments:
            length = b - a
            lo, hi = max(start, offset), min(end, offset + length)
            if lo < hi:
                segments.append((a + lo - offset, a + hi - offset))
            offset += length + 1
        return Stretch(segments, self.text[start:end])

    @property
    def start(self) -> int:
        return min(a for a, _ in self.segments)

    @property
    def end(self) -> int:
        return max(b for _, b in self.segments)


@dataclass
class Unit:
    """A coherent piece of body text with its heading path."""

    kind: str  # paragraph | list | figure | front_matter | abbreviations
    section: tuple[str, ...]
    pieces: list[Stretch]
    repaired: bool = False

    @property
    def raw(self) -> str:
        return " ".join(p.text for p in self.pieces)


@dataclass
class Endnote:
    number: int
    text: str
    urls: list[str]
    segments: list[tuple[int, int]]


@dataclass
class ParsedDocument:
    title: str | None
    units: list[Unit]
    endnotes: dict[int, Endnote]
    abbreviations: dict[str, str]
    repairs: list[tuple[int, int]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Block:
    kind: str  # heading | paragraph | list
    lines: list[tuple[int, int]]  # stripped line ranges
    level: int = 0
    items: list[list[tuple[int, int]]] = field(default_factory=list)


def _lines(source: str) -> list[tuple[int, int, int]]:
    """(start, end, indent) of each line's content without surrounding whitespace;
    blank lines get start == end."""
    out: list[tuple[int, int, int]] = []
    pos = 0
    for line in source.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        stripped = body.strip()
        if stripped:
            lead = len(body) - len(body.lstrip())
            out.append((pos + lead, pos + lead + len(stripped), lead))
        else:
            out.append((pos, pos, 0))
        pos += len(line)
    return out


def _blocks(source: str) -> list[_Block]:
    blocks: list[_Block] = []
    current: _Block | None = None
    for start, end, _indent in _lines(source):
        if start == end:
            if current is not None and current.kind == "paragraph":
                current = None
            elif current is not None and current.kind == "list":
                current = None
            continue
        line = source[start:end]
        heading = _HEADING_RE.match(line)
        if heading:
            blocks.append(_Block("heading", [(start, end)], level=len(heading.group(1))))
            current = None
            continue
        item = _LIST_ITEM_RE.match(line)
        if item:
            content_start = start + item.start(2)
            if current is None or current.kind != "list":
                current = _Block("list", [])
                blocks.append(current)
            current.lines.append((start, end))
            current.items.append([(content_start, end)])
            continue
        if current is not None and current.kind == "list":
            # A line right under an item, without a blank line, continues it.
            current.lines.append((start, end))
            current.items[-1].append((start, end))
            continue
        if current is None or current.kind != "paragraph":
            current = _Block("paragraph", [])
            blocks.append(current)
        current.lines.append((start, end))
    return blocks


def _ends_sentence(raw: str) -> bool:
    tail = _TRAILING_MARKERS_RE.sub("", raw.rstrip())
    return not tail or tail[-1] in ".!?:;"


def _continues(previous: str, following: str) -> bool:
    """True when `following` continues the sentence `previous` broke off."""
    if _ends_sentence(previous):
        return False
    first = following.lstrip("\"'“‘(*_")
    if not first:
        return False
    if first[0].islower():
        return True
    last = previous.rstrip()[-1]
    return last.islower() or last in ",-\u2013\u2014("


def _heading_key(text: str) -> str:
    return re.sub(r"[^a-z ]", "", clean_inline(text).lower()).strip()


def _title_case_key(text: str) -> str:
    return clean_inline(text, markers="strip")


def parse_document(source: str, *, name: str = "document") -> ParsedDocument:
    """Parse the text of one paper. Raises CorpusError naming `name` when the
    text holds no body text to index."""
    blocks = _blocks(source)
    units: list[Unit] = []
    endnotes: dict[int, Endnote] = {}
    abbreviations: dict[str, str] = {}
    repairs: list[tuple[int, int]] = []
    warnings: list[str] = []

    title: str | None = None
    seen_section = False
    stack: list[tuple[int, str]] = []
    front: list[tuple[int, int]] = []
    open_para: Unit | None = None
    deferred: list[Unit] = []

    def path() -> tuple[str, ...]:
        return tuple(text for _, text in stack)

    def close_paragraph() -> None:
        nonlocal open_para
        open_para = None
        units.extend(deferred)
        deferred.clear()

    def stretch(block_lines: list[tuple[int, int]]) -> Stretch:
        return Stretch.of(source, block_lines)

    i = 0
    while i < len(blocks):
        block = blocks[i]
        if block.kind == "heading":
            close_paragraph()
            start, end = block.lines[0]
            text = _title_case_key(_HEADING_RE.match(source[start:end]).group(2))  # type: ignore[union-attr]
            if title is None:
                if block.level == 1:
                    title = text
                i += 1
                continue
            key = _heading_key(text)
            section_end = i + 1
            while section_end < len(blocks) and not (
                blocks[section_end].kind == "heading" and blocks[section_end].level <= block.level
            ):
                section_end += 1
            if key in ENDNOTE_HEADINGS:
                endnotes.update(_parse_endnotes(source, blocks[i + 1 : section_end], warnings))
                i = section_end
                continue
            if key in ABBREVIATION_HEADINGS:
                unit = _parse_abbreviations(source, blocks[i + 1 : section_end], text, abbreviations)
                if unit is not None:
                    units.append(unit)
                i = section_end
                continue
            seen_section = True
            is_caption = (
                i + 2 < len(blocks)
                and blocks[i + 1].kind == "list"
                and blocks[i + 2].kind == "paragraph"
                and not _FIGURE_RE.match(source[blocks[i + 2].lines[0][0] : blocks[i + 2].lines[0][1]])
            )
            if is_caption:
                # A boxed list with its own heading; body text resumes after it.
                items = [stretch(item) for item in blocks[i + 1].items]
                units.append(Unit("list", (*path(), text), items))
                i += 2
                continue
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            stack.append((block.level, text))
            i += 1
            continue

        if title is None:
            i += 1  # labels above the title ("POLICY MEMO") carry no content
            continue

        if block.kind == "list":
            close_paragraph()
            if not seen_section:
                front.extend(block.lines)
            else:
                units.append(Unit("list", path(), [stretch(item) for item in block.items]))
            i += 1
            continue

        first_line = source[block.lines[0][0] : block.lines[0][1]]
        if _FIGURE_RE.match(first_line):
            pieces = [stretch(block.lines)]
            j = i + 1
            while j < len(blocks) and blocks[j].kind == "paragraph":
                line = source[blocks[j].lines[0][0] : blocks[j].lines[0][1]]
                if not _SOURCE_RE.match(line):
                    break
                pieces.append(stretch(blocks[j].lines))
                j += 1
            unit = Unit("figure", path(), pieces)
            if open_para is not None:
                deferred.append(unit)  # the paragraph around it may continue after it
            else:
                units.append(unit)
            i = j
            continue

        if not seen_section:
            front.extend(block.lines)
            i += 1
            continue

        piece = stretch(block.lines)
        if open_para is not None and _continues(open_para.pieces[-1].text, piece.text):
            repairs.append((open_para.pieces[-1].end, piece.start))
            open_para.pieces[-1].extend(piece)
            open_para.repaired = True
        else:
            close_paragraph()
            open_para = Unit("paragraph", path(), [piece])
            units.append(open_para)
        if _ends_sentence(open_para.pieces[-1].text):
            close_paragraph()
        i += 1
    close_paragraph()

    if front:
        units.insert(0, Unit("front_matter", (), [Stretch.of(source, [seg]) for seg in front]))
    body = [u for u in units if u.kind in ("paragraph", "list")]
    if not body:
        raise CorpusError(f"{name}: no body text found (is it a markdown-like text file?)")
    cited = {n for u in units for n in markers_in(u.raw)}
    missing = sorted(cited - set(endnotes))
    if missing:
        warnings.append(f"{name}: markers cite endnotes that are not in the notes: {missing}")
    return ParsedDocument(title, units, endnotes, abbreviations, repairs, warnings)


def _parse_endnotes(source: str, blocks: list[_Block], warnings: list[str]) -> dict[int, Endnote]:
    notes: dict[int, Endnote] = {}
    parts: dict[int, list[tuple[int, int]]] = {}
    current: int | None = None
    for block in blocks:
        for start, end in block.lines:
            line = source[start:end]
            m = _ENDNOTE_RE.match(line)
            number = int(m.group(1)) if m else None
            if m and number is not None and (current is None or number == current + 1):
                current = number
                parts[number] = [(start + m.start(2), end)]
                continue
            if current is None:
                continue
            bullet = _BULLET_RE.match(line)
            parts[current].append((start + (bullet.end() if bullet else 0), end))
    for number, segments in parts.items():
        raw = " ".join(source[a:b] for a, b in segments)
        notes[number] = Endnote(number, clean_inline(raw, markers="strip"), extract_urls(raw), segments)
    if parts:
        expected = set(range(min(parts), max(parts) + 1))
        if set(parts) != expected:
            warnings.append(f"endnote numbers missing: {sorted(expected - set(parts))}")
    return notes


def _parse_abbreviations(
    source: str, blocks: list[_Block], heading: str, into: dict[str, str]
) -> Unit | None:
    items: list[Stretch] = []
    for block in blocks:
        for start, end in block.lines:
            line = source[start:end]
            m = _ABBR_BOLD_RE.match(line) or _ABBR_PLAIN_RE.match(line)
            if not m:
                continue
            abbr = clean_inline(m.group("abbr")).rstrip(":").strip()
            expansion = clean_inline(m.group("expansion")).lstrip(":").strip()
            if abbr and expansion:
                into[abbr] = expansion
                items.append(Stretch.of(source, [(start, end)]))
    if not items:
        return None
    return Unit("abbreviations", (heading,), items)
