"""Parsers of the source formats a paper can come in, by format name."""

from __future__ import annotations

from ingest.formats.markdown import parse_markdown
from ingest.parse import FormatParser

PARSERS: dict[str, FormatParser] = {
    "markdown": parse_markdown,
}
