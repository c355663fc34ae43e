"""The structure of a paper, whatever format it came in, and `parse_document`.

The structure: a title, units of body text (paragraphs, bullet lists, figure
captions with their source lines, front matter, an abbreviations list) each
with its heading path, and the numbered endnotes. Every unit keeps the exact
character ranges of the source file it came from, so a passage can always be
traced back to the text it quotes.

Each format's parser lives in `ingest.formats`; the conventions it handles are
described there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

PARSER_VERSION = "1"
DEFAULT_FORMAT = "markdown"


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


class FormatParser(Protocol):
    """Parses the text of one paper in one format; raises CorpusError naming
    `name` when the text holds nothing to index."""

    def __call__(self, source: str, *, name: str) -> ParsedDocument: ...


def parser_for(format_name: str) -> FormatParser:
    """The parser of a format; imported on use because the parsers build on this module."""
    from ingest.formats import PARSERS

    try:
        return PARSERS[format_name]
    except KeyError:
        known = ", ".join(sorted(PARSERS))
        raise ValueError(f"no parser for format {format_name!r} (known: {known})") from None


def parse_document(source: str, *, name: str = "document") -> ParsedDocument:
    """Parse the text of one paper. Raises CorpusError naming `name` when the
    text holds no body text to index."""
    return parser_for(DEFAULT_FORMAT)(source, name=name)
