"""Does a sentence answer the question as asked? The rules that code can check.

A sentence about a neighbouring fact is not an answer: the papers give
China's trade with all SCO partners, not the Russia–China figure; "in the
summer or early autumn", not the exact date; ten full members, not how many
heads of state attended. For each part of a question (see
`service.answer.question`) the supporting sentences must name what the part names,
give the kind of answer it asks for (a number for "how many", a date for
"when"), and meet its qualifiers. Numbers count in any written form ("three",
"a dozen", "4,000").
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ingest.text import strip_superscripts
from service.answer.question import Part, Qualifier
from service.language import country_of, names_country, phrases
from service.query import is_source_question
from service.text import _TENS, _UNITS, mentions, numbers_in

_ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "twentieth": 20,
}
YEAR_RE = re.compile(r"\b(?:1[89]\d\d|20\d\d)\b")
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
MONTH_RE = re.compile(rf"\b(?:{_MONTHS})\b")
_DAY_DATE_RE = re.compile(
    rf"\b(?:(?:{_MONTHS})\s+\d{{1,2}}(?:\s*[-–]\s*\d{{1,2}})?\b|\d{{1,2}}(?:\s*[-–]\s*\d{{1,2}})?\s+(?:{_MONTHS})\b)"
)
_PERIOD_RE = re.compile(
    r"\b(?:spring|summer|autumn|fall|winter|early|late|mid|since|until|by|decade|century|years?|months?|"
    r"weeks?|days?|quarter|annual(?:ly)?)\b",
    re.IGNORECASE,
)
_VAGUE_QUANTITY_RE = re.compile(
    r"\b(?:several|many|numerous|dozens|hundreds|thousands|millions|billions|most|majority|half|"
    r"minority|few|all|none|no)\b",
    re.IGNORECASE,
)
_APPROXIMATE_RE = re.compile(
    r"\b(?:approximately|roughly|about|around|some|more than|over|nearly|almost|up to|at least|"
    r"fewer than|less than|under)\s+(?:\$|€|£)?\d",
    re.IGNORECASE,
)
_CAPITALISED_RE = re.compile(r"\b[A-Z][\w’'-]+")
_REASON_RE = re.compile(
    r"\b(?:because|since|as a result|due to|owing to|thanks to|so that|in order to|to (?:\w+ ){0,3}"
    r"(?:overcome|avoid|counter|increase|reduce|ensure|secure|protect|promote|advance|strengthen|prevent|"
    r"demonstrate|polish|enhance|project|pursue|challenge|block|address)|aim\w*|seek\w*|sought|goal|purpose|"
    r"reason|motiv\w*|want\w*|value\w*|perceiv\w*|concern\w*|fear\w*|interest\w*|benefit\w*|allow\w*|"
    r"enabl\w*|help\w*|useful|lets?|would|could|can|as a means|tool|lever\w*)\b",
    re.IGNORECASE,
)


def names_something(name: str, text: str, acronyms: dict[str, str]) -> bool:
    """Whether text names `name`: in any spelling `mentions` knows; a name of
    several words by its words in any order ("Department of Education" for
    "Education Department") or its initials ("ITA"); through an abbreviation
    whose spelled-out form holds it ("China" in "PRC"); or, for a country, by
    any name it goes by ("U.S." for "American", "Beijing" for "China")."""
    country = country_of(name)
    if country is not None and names_country(country, text):
        return True
    words = _content_words(name)
    if len(words) >= 2:
        if _spelled_out(name, text, acronyms) or _has_initials(words, text):
            return True
        lowered = {w.lower() for w in re.findall(r"[\w’'-]+", text)}
        return all(any(w.startswith(word[:5]) for w in lowered) for word in words)
    if mentions(name, text, acronyms) or _spelled_out(name, text, acronyms):
        return True
    lowered_name = name.lower()
    stem = lowered_name[:4] if len(lowered_name) > 4 else lowered_name
    for acronym, spelled in acronyms.items():
        if len(name) > 3 and re.search(rf"\b{re.escape(stem)}", spelled.lower()):
            if re.search(rf"\b{re.escape(acronym)}\b", text):
                return True
    return bool(name.isupper() and 2 <= len(name) <= 6 and _spells(name, text))


_NAME_FILLERS = frozenset("of the and for on in to a an de du la".split())


def _content_words(name: str) -> list[str]:
    return [
        w.lower()
        for w in re.findall(r"[\w’'-]+", name)
        if w.lower() not in _NAME_FILLERS and (len(w) >= 2 or w.isdigit())
    ]


def _spelled_out(name: str, text: str, acronyms: dict[str, str]) -> bool:
    """Whether text holds the name's abbreviation, or the abbreviation's spelled-out form."""
    spelled = acronyms.get(name)
    if spelled and spelled.lower() in text.lower():
        return True
    return any(
        full.lower() == name.lower() and re.search(rf"(?<!\w){re.escape(short)}(?!\w)", text)
        for short, full in acronyms.items()
    )


def _has_initials(words: list[str], text: str) -> bool:
    initials = "".join(w[0] for w in words if w[0].isalpha()).upper()
    return len(initials) >= 2 and re.search(rf"\b{initials}s?\b", text) is not None


def _spells(acronym: str, text: str) -> bool:
    """Whether capitalised words in text spell the acronym ("United Nations" -> UN)."""
    words = re.findall(r"[A-Z][\w’'-]*", text)
    n = len(acronym)
    return any(
        "".join(w[0] for w in words[i : i + n]) == acronym for i in range(len(words) - n + 1)
    )


def _new_quantities(text: str, question: str, *, years: bool) -> set[str]:
    """Numbers in text that the question does not already state (years left out
    unless wanted, and day numbers of dates)."""
    plain = strip_superscripts(text)
    if not years:
        plain = _DAY_DATE_RE.sub(" ", plain)
        plain = YEAR_RE.sub(" ", plain)
        plain = re.sub(r"\b\d{4}\s*[-–]\s*\d{2}\b", " ", plain)  # "2023–24"
    got = numbers_in(plain)
    return got - numbers_in(question)


_HOW_MANY_RE = re.compile(
    r"\bhow many\s+((?:[\w’'-]+\s+){0,4}?[\w’'-]+?)\s+(?:did|do|does|were|was|are|is|have|has|had|"
    r"will|would|"
    r"can|could|took|take|attended|joined|participated|sent|came|died|work|worked|live|lived|signed|held)\b",
    re.IGNORECASE,
)
_PLACE_RE = re.compile(
    r"\b(?:in|at|near|based in|headquartered in|located in|city of|capital of|town of|region of|"
    r"province of)\s+"
    r"(?!(?:" + _MONTHS + r")\b)([A-Z][a-z][\w’'.-]*)(?:’s|'s)?((?:\s+[A-Z][\w’'-]*)*)"
)
# Capitalised words that name institutions and events, not places ("in the SCO Plus framework").
_INSTITUTION_WORDS = frozenset(
    """Association Organization Organisation Council Forum Summit Framework Plus Declaration
    Structure Initiative Partnership Union Treaty Convention Program Programme Meeting Ministry
    Institute Center Centre Bank Club Agreement Strategy Concept Group Command Force Forces
    Committee Secretariat""".split()
)
_DURATION_RE = re.compile(
    r"\b(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|several|few)[- ](?:day|week|"
    r"month|year|hour|"
    r"decade)s?\b|\b\d{1,2}\s*[-–]\s*\d{1,2},?\s+\d{4}\b|\b(?:"
    + _MONTHS
    + r")\s+\d{1,2}\s*[-–]\s*\d{1,2}\b",
    re.IGNORECASE,
)
Similarity = Callable[[str, list[str]], list[float]]


_HOW_MANY_WERE_RE = re.compile(
    r"\bhow many(?: of (?:them|these|those|the \w+))?\s+(?:were|are|was|is|have been|had"
    r" been)\s+([^?(]+)",
    re.IGNORECASE,
)


_MEASURE_RE = re.compile(
    r"\bwhat (?:is|was|are|were) the (?:\w+\s+){0,2}?(population|budget|gdp|cost|price|area|length|"
    r"volume|"
    r"turnover|revenue|spending|headcount|death toll|toll|strength|size)\b",
    re.IGNORECASE,
)


def counted_noun(part: Part) -> str | None:
    """What a quantity question counts or measures: "how many heads of state
    attended" -> "heads of state"; "how many were security events" -> "security
    events"; "what is the population of ..." -> "population"."""
    m = (
        _HOW_MANY_WERE_RE.search(part.text)
        or _HOW_MANY_RE.search(part.text)
        or _MEASURE_RE.search(part.text)
    )
    return m.group(1).strip() if m else None


def _counts_it(part: Part, text: str, similar: Similarity | None) -> bool:
    """Whether a number in text counts what the question counts: "4,000 military
    personnel" counts troops; "10 full members" does not count heads of state."""
    noun = counted_noun(part)
    if noun is None or similar is None:
        return True
    plain = strip_superscripts(text)
    windows = []
    for m in re.finditer(
        r"\d[\d,.]*|\b(?:" + "|".join([*_UNITS, *_TENS, "dozen"]) + r")\b", plain, re.I
    ):
        after = re.findall(r"[\w’'/-]+", plain[m.end() : m.end() + 60])[:4]
        before = re.findall(r"[\w’'/-]+", plain[max(0, m.start() - 40) : m.start()])[-3:]
        windows += [" ".join(after), " ".join(before + after)]
    if not windows:
        return False
    return max(similar(noun, windows)) >= COUNTED_NOUN_SIMILARITY


COUNTED_NOUN_SIMILARITY = 0.45


def kind_present(part: Part, text: str, similar: Similarity | None = None) -> bool:
    """Whether text gives the kind of answer the part asks for."""
    asks = part.asks
    plain = strip_superscripts(text)
    if asks == "quantity":
        if re.search(r"\bhow much\b", part.text, re.I) and _VAGUE_QUANTITY_RE.search(plain):
            return True
        return bool(_new_quantities(text, part.text, years=False)) and _counts_it(
            part, text, similar
        )
    if asks == "duration":
        return bool(_DURATION_RE.search(plain))
    if asks == "date":
        asked = set(YEAR_RE.findall(part.text))
        years = set(YEAR_RE.findall(plain)) - asked
        return bool(
            years
            or MONTH_RE.search(plain)
            or re.search(r"\b(?:spring|summer|autumn|fall|winter)\b", plain, re.I)
        )
    if asks == "place":
        asked = {w.lower() for w in part.names}
        for m in _PLACE_RE.finditer(plain):
            words = [m.group(1), *m.group(2).split()]
            if any(w.strip("’'s") in _INSTITUTION_WORDS for w in words):
                continue
            if any(w.lower().removesuffix("’s").removesuffix("'s") not in asked for w in words):
                return True
        return False
    if asks == "name":
        asked = {w.lower() for w in _CAPITALISED_RE.findall(part.text)}
        words = _CAPITALISED_RE.findall(plain)
        return any(w.lower() not in asked and not MONTH_RE.fullmatch(w) for w in words)
    if asks == "reason":
        return bool(_REASON_RE.search(plain))
    return True


def _qualifier_met(name: str, part: Part, text: str, near: str) -> bool:
    """Qualifiers a supporting sentence must meet; `near` adds the sentence before it."""
    if name == "exact":
        if part.asks == "date":
            return bool(_DAY_DATE_RE.search(text))
        if part.asks == "quantity":
            return bool(
                _new_quantities(text, part.text, years=False)
            ) and not _APPROXIMATE_RE.search(text)
        return True
    for qualifier in part.qualifiers:
        if qualifier.name == name:
            return qualifier_met(qualifier, near)
    return True


def qualifier_met(qualifier: Qualifier, text: str) -> bool:
    """Whether text says what the qualifier asks for, as a fact, not a prospect."""
    for m in re.finditer(qualifier.needs, text, re.IGNORECASE):
        if not _PROSPECTIVE_RE.search(text[max(0, m.start() - 40) : m.start()]):
            return True
    return False


# Words that make a status a prospect, not a fact ("a designation that can lead to
# eventual observer status", "membership aspirations").
_PROSPECTIVE_RE = re.compile(
    r"\b(?:eventual(?:ly)?|can lead to|could lead to|may lead to|aspir\w*|seek\w*|sought|request\w*"
    r"|bid|"
    r"hope\w*|want\w*|propos\w*|plan\w*|would|might|future)\b[^.;]*$",
    re.IGNORECASE,
)


def unnamed(
    part: Part,
    quotes: list[str],
    context: str,
    acronyms: dict[str, str],
    *,
    always_named: str = "",
    around: str = "",
) -> str | None:
    """Which of the part's names and numbers the quotes leave out. They are read
    with their context and `always_named` (what the paper is known by); a name
    may also stand in the text `around` them (their passage): "the Commission"
    three sentences on is still the one the passage named. A number must stand
    in the quotes or their context."""
    near = f"{always_named} {context} {strip_superscripts(' '.join(quotes))}"
    for name in part.names:
        if name[0].isdigit():
            if name not in numbers_in(near, words=True):
                return f"they do not mention {name}"
        elif not names_something(name, f"{near} {around}", acronyms):
            return f"they do not mention {name}"
    return None


def unmet(
    part: Part,
    quotes: list[str],
    context: str,
    acronyms: dict[str, str],
    *,
    always_named: str = "",
    around: str = "",
    names: bool = True,
    similar: Similarity | None = None,
) -> str | None:
    """Why the quotes (with `context`: the sentence before each, the section,
    their endnotes) do not answer the part; None when they do. `always_named`
    is text every passage is about (what its paper is known by), `around` the
    passages the quotes stand in. With `names` off, only
    what one sentence must meet on its own is checked (kind and qualifiers);
    the names may be spread over several sentences."""
    text = strip_superscripts(" ".join(quotes))
    near = f"{context} {text}"
    if names and (
        missing := unnamed(
            part, quotes, context, acronyms, always_named=always_named, around=around
        )
    ):
        return missing
    if not kind_present(part, text, similar):
        what = {
            "quantity": "number of what it asks about",
            "duration": "length of time",
            "date": "date",
            "place": "place",
            "name": "name",
            "reason": "reason",
        }.get(part.asks, "answer")
        return f"they give no {what} for it"
    for qualifier in part.qualifiers:
        if not _qualifier_met(qualifier.name, part, text, near):
            return f"they do not say it with the qualifier '{qualifier.name}'"
    if (concept := unspoken(part, near, similar)) is not None:
        return f"they do not speak of {concept}"
    return None


# How close in meaning (cosine of the packaged embedder) a phrase of the text must
# come to what a question asks the value of ("yearly funding" for "annual budget").
CONCEPT_SIMILARITY = 0.5


def unspoken(part: Part, text: str, similar: Similarity | None) -> str | None:
    """The first thing the part asks the value of ("annual budget") that text
    speaks of neither in the same words nor in a phrase of like meaning. A
    question about a source is answered by a note, not in the same words."""
    if similar is None or not part.concepts or is_source_question(part.text):
        return None
    words = [w.lower() for w in re.findall(r"[\w’'-]+", text)]
    candidates: list[str] | None = None
    for concept in part.concepts:
        stems = [w.lower()[:5] for w in re.findall(r"[\w’'-]+", concept) if len(w) > 2]
        if stems and all(any(w.startswith(s) for w in words) for s in stems):
            continue
        candidates = phrases(text) if candidates is None else candidates
        if not candidates or max(similar(concept, candidates)) < CONCEPT_SIMILARITY:
            return concept
    return None
