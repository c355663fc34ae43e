"""Web pages as think tanks publish them: the article body without navigation and
boilerplate, its note markers (`<sup>` numbers, links to `#fn…`, `#_edn…` or
`#_ftn…` anchors) and the notes themselves, wherever the page keeps them.

The page becomes the text the markdown parser reads (headings, paragraphs, lists,
`<sup>N</sup>` markers, an "Endnotes" section of `- N text` items), so every
format shares one document model; character offsets refer to that text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ingest.errors import CorpusError
from ingest.formats.compose import compose, escape

# lxml elements (lxml ships no type information).
_El = Any

# Elements that are never the article.
_DROP_TAGS = (
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "svg",
    "button",
    "select",
    "input",
)
# Class, id or role words of page furniture.
_FURNITURE_RE = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|navigation|menu|breadcrumbs?|share|sharing|social|cookies?|"
    r"subscribe|newsletter|related|sidebar|promo|advert|ads|banner|masthead|site-header|"
    r"site-footer|comments?|skip-link|toolbar|pagination)(?:$|[\s_-])",
    re.IGNORECASE,
)
# A note's own anchor ("fn3", "_edn3", "_ftn3", "footnote-3", "endnote3"); back
# links ("fnref3", "_ednref3") do not match.
_NOTE_ID_RE = re.compile(
    r"^_?(?:edn|ftn|fn|en|endnote|footnote|note)[-_:]?(\d{1,4})$", re.IGNORECASE
)
_NOTE_HREF_RE = re.compile(
    r"#_?(?:edn|ftn|fn|en|endnote|footnote|note)[-_:]?(\d{1,4})$", re.IGNORECASE
)
_BACKLINK_HREF_RE = re.compile(r"#.*ref", re.IGNORECASE)
_MARKER_TEXT_RE = re.compile(r"^\s*[\[(]?\s*(\d{1,4})\s*[\])]?\s*$")
_BLOCK_TAGS = {
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "blockquote",
    "pre",
    "figure",
    "figcaption",
    "table",
    "div",
    "section",
    "article",
    "main",
    "dl",
}
_NOTES_HEADINGS = frozenset({"notes", "endnotes", "end notes", "footnotes", "references and notes"})
_SPACE_RE = re.compile(r"\s+")


@dataclass
class HtmlDocument:
    """What a page holds: its title, body text (for the parser) and notes."""

    title: str | None
    text: str
    notes: dict[int, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)


def read_html(data: bytes, *, name: str) -> HtmlDocument:
    """The article of an HTML page as parser text; a page with no article body
    raises CorpusError naming the file."""
    import lxml.html
    from lxml import etree

    try:
        root = lxml.html.document_fromstring(data)
    except (etree.ParserError, ValueError) as exc:
        raise CorpusError(f"{name}: not a readable HTML page ({exc})") from exc
    meta = _meta(root)
    notes = _take_notes(root)
    _drop_furniture(root)
    body = _article(root)
    blocks = _blocks(body) if body is not None else []
    if not any(kind == "p" for kind, _ in blocks):
        raise CorpusError(f"{name}: no article body found in the HTML page")
    lines = [(kind, escape(text) if kind == "p" else text) for kind, text in blocks]
    return HtmlDocument(meta.get("title"), compose(lines, notes), notes, meta)


def _meta(root: _El) -> dict[str, str]:
    """Title, author, publisher, date and canonical URL from the page's head."""
    found: dict[str, str] = {}
    names = {
        "citation_title": "title",
        "og:title": "title",
        "dc.title": "title",
        "citation_author": "author",
        "author": "author",
        "dc.creator": "author",
        "article:author": "author",
        "citation_publisher": "publisher",
        "og:site_name": "publisher",
        "dc.publisher": "publisher",
        "citation_publication_date": "date",
        "citation_date": "date",
        "article:published_time": "date",
        "dc.date": "date",
        "og:url": "url",
    }
    for tag in root.iter("meta"):
        key = (tag.get("name") or tag.get("property") or "").strip().lower()
        value = _clean(tag.get("content") or "")
        if key in names and value and names[key] not in found:
            found[names[key]] = value
    if "title" not in found:
        title = root.find(".//title")
        if title is not None and _clean(title.text_content()):
            found["title"] = _clean(title.text_content())
    canonical = root.find(".//link[@rel='canonical']")
    if "url" not in found and canonical is not None and canonical.get("href"):
        found["url"] = canonical.get("href")
    if "date" in found:
        found["date"] = found["date"][:10]
    return found


def _take_notes(root: _El) -> dict[int, str]:
    """The notes, by number, removed from the page: elements anchored as notes
    (`id="fn3"`, `id="_edn3"`), or else the numbered list under a "Notes" heading."""
    notes: dict[int, str] = {}
    anchored: list[tuple[_El, int]] = []
    for el in root.iter():
        found = isinstance(el.tag, str) and _NOTE_ID_RE.match(el.get("id") or el.get("name") or "")
        if found:
            anchored.append((el, int(found.group(1))))
    for el, number in anchored:
        holder = el
        # Word's HTML names the anchor inside the note: the note is its block.
        while holder.tag in ("a", "span", "sup") and holder.getparent() is not None:
            holder = holder.getparent()
        text = _note_text(holder)
        # Notes set as a table: the anchor's cell holds the number, the row the note.
        only_number = re.fullmatch(r"[\[(]?\d{1,4}[\])]?[.:]?", text)
        row = holder.getparent()
        if (not text or only_number) and holder.tag in ("td", "th") and row is not None:
            holder = row
            text = _note_text(holder)
        if text and number not in notes:
            notes[number] = text
            _remove(holder)
    if notes:
        return notes
    for heading in root.iter("h1", "h2", "h3", "h4", "h5", "h6", "p", "strong"):
        if _clean(heading.text_content()).lower().rstrip(":") not in _NOTES_HEADINGS:
            continue
        items = heading.getnext()
        if items is None or items.tag != "ol":
            continue
        start = int(items.get("start") or 1)
        for i, li in enumerate(items.findall("li")):
            text = _note_text(li)
            if text:
                notes[start + i] = text
        _remove(items)
        _remove(heading)
        break
    return notes


def _note_text(el: _El) -> str:
    """A note's text with its links as markdown (the parser extracts their URLs),
    without the back link to the marker or the note's own number."""
    parts: list[str] = []

    def walk(node: _El) -> None:
        tag = node.tag
        if isinstance(tag, str):
            href = node.get("href") or ""
            if tag == "a" and (_BACKLINK_HREF_RE.search(href) or _NOTE_HREF_RE.search(href)):
                pass  # the back link ("↩", "[3]")
            elif tag == "a" and href.startswith(("http://", "https://")):
                label = _clean(node.text_content())
                parts.append(f"<{href}>" if not label or label == href else f"[{label}]({href})")
            else:
                if node.text:
                    parts.append(node.text)
                for child in node:
                    walk(child)
                    if child.tail:
                        parts.append(child.tail)
                return

    walk(el)
    text = _clean("".join(parts)).replace("↩︎", "").replace("↩", "").strip()
    return re.sub(r"^[\[(]?\d{1,4}[\])]?[.:]?\s+", "", text)


def _drop_furniture(root: _El) -> None:
    for el in list(root.iter(*_DROP_TAGS)):
        _remove(el)
    for el in list(root.iter()):
        if not isinstance(el.tag, str) or el.tag in ("html", "body", "main", "article"):
            continue
        words = " ".join(filter(None, (el.get("class"), el.get("id"), el.get("role"))))
        if words and _FURNITURE_RE.search(words) and el.getparent() is not None:
            _remove(el)


def _article(root: _El) -> _El | None:
    """The element that holds the article: an `<article>` or `<main>`, else the
    block with the most paragraph text."""
    candidates = list(root.iter("article")) or list(root.iter("main"))
    candidates += [el for el in root.iter() if el.get("role") == "main"]
    if candidates:
        return max(candidates, key=_paragraph_chars)
    best, best_chars = None, 0
    for el in root.iter("div", "section", "body"):
        chars = _paragraph_chars(el)
        if chars > best_chars * 1.2 or (best is None and chars):
            best, best_chars = el, chars
    return best


def _paragraph_chars(el: _El) -> int:
    return sum(len(_clean(p.text_content())) for p in el.iter("p"))


def _blocks(body: _El) -> list[tuple[str, str]]:
    """(kind, text) of each block in reading order: headings as `#` lines, list
    items as `- ` lines, everything else a paragraph."""
    out: list[tuple[str, str]] = []

    def walk(el: _El) -> None:
        tag = el.tag
        if not isinstance(tag, str):
            return
        if re.fullmatch(r"h[1-6]", tag):
            text = _clean(_inline(el))
            if text:
                out.append(("h", "#" * int(tag[1]) + " " + text))
            return
        if tag in ("ul", "ol"):
            for li in el.findall("li"):
                text = _clean(_inline(li, skip_blocks=True))
                if text:
                    out.append(("li", "- " + escape(text)))
                for sub in li:
                    if isinstance(sub.tag, str) and sub.tag in ("ul", "ol"):
                        walk(sub)
            return
        if tag == "table":
            for row in el.iter("tr"):
                cells = [_clean(_inline(c)) for c in row if c.tag in ("td", "th")]
                if any(cells):
                    out.append(("p", " | ".join(c for c in cells if c)))
            return
        if tag in ("p", "blockquote", "pre", "figcaption", "dd", "dt") or not any(
            isinstance(c.tag, str) and c.tag in _BLOCK_TAGS for c in el
        ):
            text = _clean(_inline(el))
            if text:
                out.append(("p", text))
            return
        if el.text and _clean(el.text):
            out.append(("p", _clean(el.text)))
        for child in el:
            walk(child)
            if child.tail and _clean(child.tail):
                out.append(("p", _clean(child.tail)))

    walk(body)
    return out


def _inline(el: _El, *, skip_blocks: bool = False) -> str:
    """An element's text with note markers as `<sup>N</sup>`."""
    parts: list[str] = []

    def walk(node: _El) -> None:
        tag = node.tag
        if not isinstance(tag, str):
            return
        marker = _marker(node)
        if marker is not None:
            parts.append(f"<sup>{marker}</sup>")
            return
        if tag == "br":
            parts.append(" ")
            return
        if node.text:
            parts.append(node.text)
        for child in node:
            if skip_blocks and isinstance(child.tag, str) and child.tag in ("ul", "ol"):
                pass
            else:
                walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(el)
    return "".join(parts)


def _marker(node: _El) -> int | None:
    """The note number a `<sup>` or a link to a note anchor stands for."""
    tag = node.tag
    if tag == "a":
        found = _NOTE_HREF_RE.search(node.get("href") or "")
        return int(found.group(1)) if found else None
    if tag == "sup":
        for link in node.iter("a"):
            found = _NOTE_HREF_RE.search(link.get("href") or "")
            if found:
                return int(found.group(1))
        text = _MARKER_TEXT_RE.match(node.text_content())
        return int(text.group(1)) if text else None
    return None


def _clean(text: str) -> str:
    return _SPACE_RE.sub(" ", text.replace("\xa0", " ")).strip()


def _remove(el: _El) -> None:
    """Remove an element but keep the text that follows it."""
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail
    if tail:
        previous = el.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(el)
