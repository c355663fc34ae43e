"""Papers in markdown-like text -> their structure (`ingest.parse.ParsedDocument`).

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
from ingest.parse import Endnote, ParsedDocument, Stretch, Unit
from ingest.text import clean_inline, extract_urls, markers_in

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
class _Block:
    """Source lines that belong together: a heading, a paragraph or a list."""

    kind: str  # heading | paragraph | list
    lines: list[tuple[int, int]]  # stripped line ranges
    level: int = 0  # of a heading
    heading: str = ""  # of a heading: its text without the hashes
    items: list[list[tuple[int, int]]] = field(default_factory=list)  # of a list


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
    """The source cut into blocks: a blank line or a heading ends a paragraph or a list."""
    blocks: list[_Block] = []
    current: _Block | None = None
    for start, end, _indent in _lines(source):
        if start == end:
            current = None
            continue
        line = source[start:end]
        heading = _HEADING_RE.match(line)
        if heading:
            level = len(heading.group(1))
            blocks.append(_Block("heading", [(start, end)], level, heading.group(2)))
            current = None
            continue
        item = _LIST_ITEM_RE.match(line)
        if item:
            if current is None or current.kind != "list":
                current = _Block("list", [])
                blocks.append(current)
            current.lines.append((start, end))
            current.items.append([(start + item.start(2), end)])
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


@dataclass
class _Parser:
    """One pass over a document's blocks. Each step takes the index of the block
    it handles and returns the index of the next block to look at, because some
    steps (a notes section, a figure with its source lines) consume several."""

    source: str
    name: str
    blocks: list[_Block]
    units: list[Unit] = field(default_factory=list)
    endnotes: dict[int, Endnote] = field(default_factory=dict)
    abbreviations: dict[str, str] = field(default_factory=dict)
    repairs: list[tuple[int, int]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    title: str | None = None
    seen_section: bool = False  # text before the first section heading is front matter
    stack: list[tuple[int, str]] = field(default_factory=list)  # (level, text) of open headings
    front: list[tuple[int, int]] = field(default_factory=list)
    open_para: Unit | None = None  # the paragraph the next one may continue
    deferred: list[Unit] = field(default_factory=list)  # figures that interrupted open_para

    def parse(self) -> ParsedDocument:
        i = 0
        while i < len(self.blocks):
            i = self._step(i)
        self._close_paragraph()
        return self._finish()

    def _step(self, i: int) -> int:
        """Hand the block at i to the step for its kind."""
        block = self.blocks[i]
        if block.kind == "heading":
            return self._heading(i)
        if self.title is None:
            return i + 1  # labels above the title ("POLICY MEMO") carry no content
        if block.kind == "list":
            return self._list(i)
        if _FIGURE_RE.match(self._first_line(block)):
            return self._figure(i)
        if not self.seen_section:
            self.front.extend(block.lines)
            return i + 1
        return self._paragraph(i)

    def _heading(self, i: int) -> int:
        """The title, a notes or abbreviations section, a boxed list's caption, or a section."""
        self._close_paragraph()
        block = self.blocks[i]
        text = _title_case_key(block.heading)
        if self.title is None:
            if block.level == 1:
                self.title = text
            return i + 1
        key = _heading_key(text)
        if key in ENDNOTE_HEADINGS:
            end = self._section_end(i)
            self.endnotes.update(
                _parse_endnotes(self.source, self.blocks[i + 1 : end], self.warnings)
            )
            return end
        if key in ABBREVIATION_HEADINGS:
            end = self._section_end(i)
            section = self.blocks[i + 1 : end]
            unit = _parse_abbreviations(self.source, section, text, self.abbreviations)
            if unit is not None:
                self.units.append(unit)
            return end
        self.seen_section = True
        if self._captions_list(i):
            # A boxed list with its own heading; body text resumes after it.
            items = [self._stretch(item) for item in self.blocks[i + 1].items]
            self.units.append(Unit("list", (*self._path(), text), items))
            return i + 2
        while self.stack and self.stack[-1][0] >= block.level:
            self.stack.pop()
        self.stack.append((block.level, text))
        return i + 1

    def _section_end(self, i: int) -> int:
        """The index after the last block of the section the heading at i opens."""
        level = self.blocks[i].level
        end = i + 1
        while end < len(self.blocks) and not (
            self.blocks[end].kind == "heading" and self.blocks[end].level <= level
        ):
            end += 1
        return end

    def _captions_list(self, i: int) -> bool:
        """Whether the heading at i only introduces the list under it, with body text after."""
        blocks = self.blocks
        return (
            i + 2 < len(blocks)
            and blocks[i + 1].kind == "list"
            and blocks[i + 2].kind == "paragraph"
            and not _FIGURE_RE.match(self._first_line(blocks[i + 2]))
        )

    def _list(self, i: int) -> int:
        """A list is front matter before the first section, else a unit of its own."""
        self._close_paragraph()
        block = self.blocks[i]
        if not self.seen_section:
            self.front.extend(block.lines)
        else:
            items = [self._stretch(item) for item in block.items]
            self.units.append(Unit("list", self._path(), items))
        return i + 1

    def _figure(self, i: int) -> int:
        """A figure caption keeps the source lines under it."""
        pieces = [self._stretch(self.blocks[i].lines)]
        j = i + 1
        while j < len(self.blocks) and self.blocks[j].kind == "paragraph":
            if not _SOURCE_RE.match(self._first_line(self.blocks[j])):
                break
            pieces.append(self._stretch(self.blocks[j].lines))
            j += 1
        unit = Unit("figure", self._path(), pieces)
        if self.open_para is not None:
            self.deferred.append(unit)  # the paragraph around it may continue after it
        else:
            self.units.append(unit)
        return j

    def _paragraph(self, i: int) -> int:
        """A paragraph, joined to the open one when a page break cut a sentence in two."""
        piece = self._stretch(self.blocks[i].lines)
        para = self.open_para
        if para is not None and _continues(para.pieces[-1].text, piece.text):
            self.repairs.append((para.pieces[-1].end, piece.start))
            para.pieces[-1].extend(piece)
            para.repaired = True
        else:
            self._close_paragraph()
            para = Unit("paragraph", self._path(), [piece])
            self.open_para = para
            self.units.append(para)
        if _ends_sentence(para.pieces[-1].text):
            self._close_paragraph()
        return i + 1

    def _close_paragraph(self) -> None:
        """No later paragraph continues the open one; the figures held back follow it."""
        self.open_para = None
        self.units.extend(self.deferred)
        self.deferred.clear()

    def _finish(self) -> ParsedDocument:
        """Front matter goes first; the checks that need the whole document run last."""
        if self.front:
            lines = [Stretch.of(self.source, [segment]) for segment in self.front]
            has_body = any(u.kind in ("paragraph", "list") for u in self.units)
            # A paper with no sections at all: the text before its notes is its body.
            self.units.insert(0, Unit("front_matter" if has_body else "paragraph", (), lines))
        if not any(u.kind in ("paragraph", "list") for u in self.units):
            raise CorpusError(f"{self.name}: no body text found (is it a markdown-like text file?)")
        cited = {n for u in self.units for n in markers_in(u.raw)}
        missing = sorted(cited - set(self.endnotes))
        if missing:
            self.warnings.append(
                f"{self.name}: markers cite endnotes that are not in the notes: {missing}"
            )
        return ParsedDocument(
            self.title, self.units, self.endnotes, self.abbreviations, self.repairs, self.warnings
        )

    def _path(self) -> tuple[str, ...]:
        return tuple(text for _, text in self.stack)

    def _stretch(self, lines: list[tuple[int, int]]) -> Stretch:
        return Stretch.of(self.source, lines)

    def _first_line(self, block: _Block) -> str:
        start, end = block.lines[0]
        return self.source[start:end]


def parse_markdown(source: str, *, name: str = "document") -> ParsedDocument:
    """Parse the text of one paper. Raises CorpusError naming `name` when the
    text holds no body text to index."""
    return _Parser(source, name, _blocks(source)).parse()


def _parse_endnotes(source: str, blocks: list[_Block], warnings: list[str]) -> dict[int, Endnote]:
    """The numbered notes of a notes section; lines that start no next number continue
    the note before them."""
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
    notes: dict[int, Endnote] = {}
    for number, segments in parts.items():
        raw = " ".join(source[a:b] for a, b in segments)
        text = clean_inline(raw, markers="strip")
        notes[number] = Endnote(number, text, extract_urls(raw), segments)
    if parts:
        expected = set(range(min(parts), max(parts) + 1))
        if set(parts) != expected:
            warnings.append(f"endnote numbers missing: {sorted(expected - set(parts))}")
    return notes


def _parse_abbreviations(
    source: str, blocks: list[_Block], heading: str, into: dict[str, str]
) -> Unit | None:
    """The abbreviations section as one unit; each entry also goes into `into`."""
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
