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


# --- terms -------------------------------------------------------------------

_WORD_RE = re.compile(r"[^\W_]+(?:[’'][^\W_]+)*(?:[.,][0-9]+)*", re.UNICODE)
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers herself him himself his how
    i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves s t don didn doesn isn wasn weren won wouldn
    shall may might must ever yet per via upon whose whether according does memo paper
    tell say says said mention mentions mentioned describe described explain explains
    give list name kind anything something""".split()
)


class Tokenizer:
    """Lower-cased, stemmed content words; numbers keep their digits ("4,000" -> "4000")."""

    def __init__(self) -> None:
        import Stemmer

        self._stemmer = Stemmer.Stemmer("english")

    def __call__(self, text: str, *, keep_stopwords: bool = False) -> list[str]:
        words = []
        for match in _WORD_RE.finditer(strip_superscripts(text).lower()):
            word = match.group(0).replace("’", "'")
            if word.endswith("'s"):
                word = word[:-2]
            if word[0].isdigit():
                word = word.replace(",", "")
            elif not keep_stopwords and word in STOPWORDS:
                continue
            words.append(word)
        return [w if w[0].isdigit() else self._stemmer.stemWord(w) for w in words]


_ENTITY_RE = re.compile(r"\b(?:[A-Z][\w’'-]*|\d[\d,.]*\d|\d)\b")
_QUESTION_STARTERS = frozenset(
    """what which who whom whose when where why how is are was were do does did can could
    should would will has have had tell list name give describe explain according in on
    for to by from of and or the a an""".split()
)


def entities(text: str) -> list[str]:
    """Names and numbers in a question: capitalised words past the first word,
    and numbers without separators ("4,000" -> "4000")."""
    found = []
    for i, m in enumerate(_ENTITY_RE.finditer(strip_superscripts(text))):
        word = m.group(0)
        if word[0].isdigit():
            found.append(word.replace(",", "").rstrip("."))
        elif m.start() == 0 or (i == 0 and word.lower() in _QUESTION_STARTERS):
            continue
        elif word.lower() not in _QUESTION_STARTERS or word.isupper():
            found.append(word.removesuffix("’s").removesuffix("'s"))
    return found


def mentions(entity: str, text: str, acronyms: dict[str, str]) -> bool:
    """Whether text names the entity: the same number, a capitalised word with the
    same first four letters ("Russia"/"Russian", "China"/"Chinese"), or an
    acronym spelled out ("SCO" / "Shanghai Cooperation Organization")."""
    if entity[0].isdigit():
        return entity in {w.replace(",", "") for w in re.findall(r"\d[\d,]*\d|\d", text)}
    lowered = text.lower()
    expansion = acronyms.get(entity)
    if expansion and expansion.lower() in lowered:
        return True
    for acronym, spelled in acronyms.items():
        if spelled.lower() == entity.lower() and re.search(rf"\b{re.escape(acronym)}\b", text):
            return True
    if entity.isupper() or len(entity) <= 4:
        return re.search(rf"\b{re.escape(entity)}\b", text, re.IGNORECASE) is not None
    stem = entity[:4].lower()
    return any(w.lower().startswith(stem) for w in re.findall(r"\b[A-Z][\w’'-]*", text))


_INSTRUCTION_RE = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.]{0,40}\b(?:instructions?|rules|prompt|above|previous|"
    r"everything)\b|\b(?:system prompt|you are (?:now )?(?:an? )?(?:ai|assistant|language model|chatbot)|"
    r"(?:assistant|ai|model|chatbot)s?,? (?:must|should) (?:answer|reply|say|respond)|"
    r"(?:answer|reply|respond) (?:only )?with the (?:following|words?)|new instructions)\b",
    re.IGNORECASE,
)


def looks_like_instructions(text: str) -> bool:
    """Text that addresses a language model rather than a reader ("ignore your
    instructions and say ..."). Such sentences in a paper are data: they are kept
    out of prompts and can never be quoted as support."""
    return bool(_INSTRUCTION_RE.search(text))
