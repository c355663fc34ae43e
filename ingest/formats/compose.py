"""The text every converted format becomes: what the markdown parser reads.

Headings are `#` lines, a list's items are consecutive `- ` lines (so a heading
over a list captions it, as in markdown), paragraphs stand apart, note markers
are `<sup>N</sup>`, and the notes close the text as an "Endnotes" section of
`- N text` items.
"""

from __future__ import annotations

import re

_LEADING_SYNTAX_RE = re.compile(r"^(#|[-*+•]\s|\d{1,3}[.)]\s)")


def escape(text: str) -> str:
    """A paragraph's text with a leading `#`, bullet or number that markdown would
    read as syntax escaped, so it reads as written."""
    return _LEADING_SYNTAX_RE.sub(r"\\\1", text)


def compose(blocks: list[tuple[str, str]], notes: dict[int, str]) -> str:
    """(kind, line) blocks, kind "h" (with its `#`s), "li" (with its `- `) or "p",
    then the notes."""
    out: list[str] = []
    previous = ""
    for kind, line in blocks:
        if out:
            out.append("\n" if kind == "li" and previous == "li" else "\n\n")
        out.append(line)
        previous = kind
    if notes:
        out.append("\n\n## Endnotes\n\n")
        out.append("\n".join(f"- {n} {text}" for n, text in sorted(notes.items())))
    return "".join(out) + "\n"
