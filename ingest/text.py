"""Inline text helpers shared by ingest and the service: markdown clean-up,
endnote markers, and a sentence splitter that knows the papers' conventions."""

from __future__ import annotations

import re

SUP_TAG_RE = re.compile(r"<sup>\s*(\d{1,4})\s*</sup>", re.IGNORECASE)
_TO_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_FROM_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
SUPERSCRIPT_DIGITS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
SUPERSCRIPT_RE = re.compile(f"[{SUPERSCRIPT_DIGITS}]+")

_LINK_RE = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
_AUTOLINK_RE = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_BOLD_RE = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_RE = re.compile(r"(?<![\w*\\])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])")
_ESCAPE_RE = re.compile(r"\\+([\\`*_{}\[\]()#+\-.!$&%<>|~\"'])")
_HTML_TAG_RE = re.compile(r"</?[a-zA-Z][^>]*>")
_SPACE_RE = re.compile(r"\s+")
URL_RE = re.compile(r"(?:https?|mailto):[^\s<>()\"\]]+[^\s<>()\"\].,;:]")


def unescape_markdown(text: str) -> str:
    r"""Undo markdown backslash escapes (`\\_` -> `_`, `\$` -> `$`)."""
    return _ESCAPE_RE.sub(r"\1", text)


def to_superscript(number: int) -> str:
    return str(number).translate(_TO_SUPERSCRIPT)


def consecutive_runs(values: list[int]) -> list[list[int]]:
    """Sorted whole numbers cut into runs of consecutive ones: [1, 2, 3, 7, 8] ->
    [[1, 2, 3], [7, 8]]."""
    runs: list[list[int]] = []
    for n in values:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return runs


def markers_in(raw: str) -> list[int]:
    """Endnote numbers cited by `<sup>N</sup>` markers, in order of appearance."""
    return [int(m.group(1)) for m in SUP_TAG_RE.finditer(raw)]


def superscript_markers(text: str) -> list[int]:
    """Endnote numbers shown as superscript digits in display text."""
    return [int(m.group(0).translate(_FROM_SUPERSCRIPT)) for m in SUPERSCRIPT_RE.finditer(text)]


def strip_superscripts(text: str) -> str:
    return SUPERSCRIPT_RE.sub("", text)


def _links_to_text(text: str) -> str:
    def link(m: re.Match[str]) -> str:
        label, url = m.group(1).strip(), m.group(2).strip()
        bare = re.sub(r"^(?:https?://|mailto:)", "", unescape_markdown(url)).rstrip("/")
        if not label or unescape_markdown(label).rstrip("/") in (unescape_markdown(url), bare):
            return url if not label or "://" in label else label
        return f"{label} ({url})"

    text = _LINK_RE.sub(link, text)
    return _AUTOLINK_RE.sub(r"\1", text)


def clean_inline(raw: str, *, markers: str = "superscript") -> str:
    """Markdown-like source text -> the plain text shown to users.

    markers: "superscript" shows `<sup>29</sup>` as `²⁹`; "strip" removes it.
    """
    if markers == "superscript":
        text = SUP_TAG_RE.sub(lambda m: to_superscript(int(m.group(1))), raw)
    else:
        text = SUP_TAG_RE.sub("", raw)
    text = _links_to_text(text)
    text = _HTML_TAG_RE.sub("", text)
    text = _BOLD_RE.sub(r"\2", text)
    text = _ITALIC_RE.sub(r"\1", text)
    text = unescape_markdown(text)
    return _SPACE_RE.sub(" ", text).strip()


def plain_text(display: str) -> str:
    """Display text without endnote superscripts: what gets embedded and matched."""
    return _SPACE_RE.sub(" ", strip_superscripts(display)).strip()


def extract_urls(raw: str) -> list[str]:
    """URLs in a markdown-like string, unescaped, deduplicated in order."""
    found: list[str] = []
    for m in _LINK_RE.finditer(raw):
        found.append(m.group(2))
    for m in _AUTOLINK_RE.finditer(raw):
        found.append(m.group(1))
    rest = _AUTOLINK_RE.sub(" ", _LINK_RE.sub(" ", raw))
    found.extend(m.group(0) for m in URL_RE.finditer(rest))
    seen: dict[str, None] = {}
    for url in found:
        url = unescape_markdown(url).strip()
        if url.startswith(("http://", "https://")) and url not in seen:
            seen[url] = None
    return list(seen)


# --- sentences --------------------------------------------------------------

# Tokens that end in a period without ending a sentence.
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof st sr jr gen col lt maj capt sgt adm gov sen rep pres
    ed eds inc ltd co corp dept univ assn est approx
    vs etc al cf e.g i.e a.m p.m jan feb mar apr jun jul aug sep sept oct nov dec""".split()
)
_BOUNDARY_RE = re.compile(
    r"[.!?]+(?P<close>(?:[\"'”’)\]]|<sup>\s*\d+\s*</sup>|[" + SUPERSCRIPT_DIGITS + r"])*)"
    r"(?P<space>\s+)(?=[\"“‘'(\[]?[A-Z0-9])"
)
# Abbreviations that stand before a number ("no. 3", "pp. 65").
_NUMBER_ABBREVIATIONS = frozenset("no nos vol vols pp p fig figs art ch sec".split())
_INITIALS_RE = re.compile(r"(?:\b[A-Z]\.)+[A-Z]?$")


def _is_abbreviation(before: str) -> bool:
    token = before.rsplit(None, 1)[-1] if before.strip() else ""
    token = token.lstrip("(\"“‘'[")
    if not token:
        return False
    if _INITIALS_RE.search(token + "."):
        # "U.S." or an initial such as "J." in "J. Smith".
        return True
    return token.lower().rstrip(".") in _ABBREVIATIONS


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Split text into sentences; returns (start, end) spans that cover the text
    without its outer whitespace. Endnote markers and closing quotes stay with
    the sentence they follow; "U.S.", initials and ". . ." ellipses do not split."""
    spans: list[tuple[int, int]] = []
    start = len(text) - len(text.lstrip())
    for m in _BOUNDARY_RE.finditer(text):
        end = m.start("space")
        if end <= start:
            continue
        before = text[start : m.start()]
        if text[m.start()] == "." and _is_abbreviation(before):
            continue
        following = text[m.end("space") : m.end("space") + 1]
        token = before.rsplit(None, 1)[-1].lower() if before.strip() else ""
        if following.isdigit() and token in _NUMBER_ABBREVIATIONS:
            continue
        # ". . . to" style ellipses are handled by the lookahead (lower case);
        # a lone ". . ." before a capital is still an ellipsis, not an end.
        if text[max(0, m.start() - 2) : m.start() + 1].endswith(". ."):
            continue
        spans.append((start, end))
        start = m.end("space")
    tail_end = len(text.rstrip())
    if tail_end > start:
        spans.append((start, tail_end))
    return spans


def split_sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]
