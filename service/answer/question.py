"""What a question asks, read in code: its parts, and for each part the kind
of answer it wants, the names it is about, and the qualifiers an answer must
meet ("bilateral", "exact", "full member"), so that a sentence about a
neighbouring fact is not taken for an answer.

"Which country became the tenth full member, and during whose presidency?"
has two parts; "When and where was the charter adopted?" has two parts that
share one clause; a lead-in statement ("China is still trying to set up a
development bank. What stood in its way?") is context for the question, and
also an assumption that the papers may contradict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.text import split_sentences
from service.language import asked_concepts, names
from service.query import is_list_question
from service.text import entities

_WH = (
    r"what|which|who|whom|whose|when|where|why|how|"
    r"(?:in|at|on|from|to|for|by|during|under|with|of|since|until)\s+(?:what|which|whom|whose)"
)
_AUX = r"is|are|was|were|do|does|did|has|have|had|can|could|will|would|should"
# Where one question ends and the next begins inside a sentence: ", and what ...",
# "; how ...", " and why".
_PART_BREAK_RE = re.compile(
    rf"(?:\s*,\s*(?:and|or|but)\s+|\s*;\s*(?:and\s+)?|\s+(?:and|but)\s+(?:also\s+)?|\s*,\s+)"
    rf"(?=(?:{_WH})\b)"
    # ", and has Beijing agreed ...": a yes/no question after a comma
    rf"|\s*[,;]\s*(?:and|or|but)\s+(?=(?:{_AUX})\s+(?:[A-Z]\w*|the|it|they|he|she|this|that|these|any|there)\b)",
    re.IGNORECASE,
)
# "When and where did ...": several question words sharing one clause.
_SHARED_WH_RE = re.compile(
    rf"^\s*((?:{_WH})(?:\s+\w+)?)\s*(?:,\s*|\s+and\s+|,\s*and\s+)((?:{_WH})\b.*)$", re.IGNORECASE
)
_STARTS_WH_RE = re.compile(rf"^\s*(?:{_WH})\b", re.IGNORECASE)
# The question word and what it asks about, before the clause they share:
# "at which summit" | "how many troops" | "who" (then "did the SCO adopt its charter").
_WH_HEAD_RE = re.compile(
    rf"^\s*(?:(?:in|at|on|from|to|for|by|during|under|with|of|since|until)\s+)?"
    rf"(?:(?:what|which|whose)(?:\s+(?!(?:{_AUX})\b)\w+)?|how\s+(?:many|much)\s+\w+|how\s+\w+|who|whom|when|"
    rf"where|why)\s+",
    re.IGNORECASE,
)
_STARTS_AUX_RE = re.compile(rf"^\s*(?:{_AUX})\b", re.IGNORECASE)
_VERB_HINT_RE = re.compile(rf"\b(?:{_AUX}|did|does|do)\b|\w+(?:ed|es)\b", re.IGNORECASE)
# Words that point back at an earlier part's answer ("and what does it ...").
_BACK_REFERENCE_RE = re.compile(
    r"\b(?:it|its|it's|they|them|their|this|that|these|those|he|she|his|her|the same|"
    r"that (?:country|structure|body|summit|person|exercise|organization|member|state|city|"
    r"group))\b",
    re.IGNORECASE,
)
_IMPERATIVE_RE = re.compile(
    r"^\s*(?:name|list|give|tell me|describe|explain|identify|state)\b", re.I
)


@dataclass(frozen=True)
class Qualifier:
    """A word of the question that narrows what counts as an answer; an answer
    must say it too (`needs`, any of them) and must not be only about a
    neighbouring sense of it (`conflicts`)."""

    name: str
    needs: str  # regex: the answer's wording that meets it
    conflicts: str = ""  # regex: wording that answers a different question


# Each entry: what triggers it in the question, and the qualifier it asks an answer to meet.
_QUALIFIERS: tuple[tuple[str, Qualifier], ...] = (
    (
        r"\bbilateral\b|\bbetween (?-i:[A-Z])[\w.’'-]* and (?-i:[A-Z])"
        r"|\b(?-i:[A-Z][a-z]+)\s*[–—]\s*(?-i:[A-Z][a-z]+)"
        r" (?:trade|relations?|ties|talks|agreement|exercises?|cooperation)\b",
        Qualifier(
            "bilateral",
            r"\bbilateral\b|\bbetween\b|\bwith (?:the )?(?-i:[A-Z])",
            r"\baggregate\b|\ball (?:sco )?member|\bwith all\b|\btotal\b",
        ),
    ),
    (
        r"\bexact(?:ly)?\b|\bprecise(?:ly)?\b|\bwhich day\b|\bwhat day\b|\bon what date\b|\bwhat"
        r" date\b",
        Qualifier(
            "exact",
            r"\b\d{1,2}(?:\s*[-–]\s*\d{1,2})?,?\s+\d{4}\b|\b(?:January|February|March|April|May|June|July|"
            r"August|September|October|November|December)\s+\d{1,2}\b|\b\d[\d,.]*\b(?!\s*(?:percent|%))",
            r"\b(?:approximately|roughly|about|around|some|more than|over|nearly|almost|summer|"
            r"autumn|"
            r"fall|winter|spring|early|late|mid)\b",
        ),
    ),
    (
        r"\b(?:in total|total|combined|overall|altogether|aggregate|sum)\b",
        Qualifier(
            "total", r"\b(?:total|combined|overall|altogether|aggregate|all|in all|sum|whole)\b"
        ),
    ),
    (
        r"\b(?:annual(?:ly)?|per year|each year|a year|yearly|every year)\b",
        Qualifier(
            "annual", r"\b(?:annual(?:ly)?|per year|each year|a year|yearly|every year|annually)\b"
        ),
    ),
    (
        r"\bfull(?:[- ]fledged)? members?(?:hip)?\b",
        Qualifier(
            "full member",
            r"\bfull(?:[- ]fledged)?\s+(?:\w+\s+)?members?(?:hip)?\b",
            r"\bobserver|\bpartner|\bassociate member|\bapplicant|\bcandidate|\baspiration"
            r"|\bseeks? (?:permanent )?membership",
        ),
    ),
    (
        r"\bobservers?\b(?! states? and)",
        Qualifier("observer", r"\bobserver", r"\bpartner|\bassociate member|\bcandidate"),
    ),
    (
        r"\b(?:first|inaugural|initial|earliest)\b",
        Qualifier(
            "first",
            r"\b(?:first|inaugural|initial|earliest|founding|original(?:ly)?|began|begin|since|establish\w*|launch\w*|creat\w*)\b",
        ),
    ),
    (
        r"\b(?:latest|most recent|last|newest)\b",
        Qualifier(
            "latest",
            r"\b(?:latest|most recent|last|newest|recent(?:ly)?|current(?:ly)?|now|today|still|"
            r"remains?|"
            r"20(?:2[3-9]))\b",
        ),
    ),
)


@dataclass(frozen=True)
class Part:
    """One thing the question asks."""

    text: str  # the part as a question of its own
    asks: str  # quantity, date, place, person, reason, yesno, list, other
    names: tuple[str, ...] = ()  # names and numbers the answer must be about
    concepts: tuple[str, ...] = ()  # what a "what is" part asks the value of ("annual budget")
    qualifiers: tuple[Qualifier, ...] = ()
    refers_back: bool = False  # leans on an earlier part's answer ("and what does it ...")
    clause: str = (
        ""  # the clause it shares with the part before it ("did the SCO adopt its charter")
    )

    @property
    def search_text(self) -> str:
        return self.text if not self.clause else f"{self.text} {self.clause}"

    @property
    def display(self) -> str:
        """The part as a reader would ask it: a fragment carries its clause
        ("Why (did Russia send troops)?")."""
        return self.text if not self.clause else f"{self.text.rstrip('?')} ({self.clause})?"


@dataclass(frozen=True)
class QuestionPlan:
    question: str
    parts: list[Part]
    context: str = ""  # statements around the question: what the asker takes as given
    assumptions: list[str] = field(default_factory=list)  # what the question takes as true

    @property
    def multi(self) -> bool:
        return len(self.parts) > 1


_NOT_NAMES = frozenset(
    """besides apart according unlike like despite although though now since given after before
    during also other others beyond including excluding among amid while whereas""".split()
)


def names_in(text: str) -> tuple[str, ...]:
    """The names and numbers a question or a claim is about: the names the
    English pipeline finds ("International Trade Administration", "U.S.",
    "Ticketmaster"; not "Shortly" or "Under") and the numbers it states."""
    found: list[str] = []
    for name in names(text):
        if name.lower() not in _NOT_NAMES and name not in found:
            found.append(name)
    for word in entities(text):
        if word in found or any(word in name for name in found):
            continue
        # Numbers, and names made with them ("Interaction-2024") that the pipeline reads as words.
        if word[0].isdigit() or any(c.isdigit() for c in word):
            found.append(word)
    return tuple(found)


_QUANTITY_ASK_RE = re.compile(
    r"^(?:how many|how much|by how much|"
    r"what (?:share|percentage|percent|proportion|number|amount|value|size|sum|fraction|portion)|"
    r"what (?:is|was|are|were) the (?:\w+\s+){0,2}?"
    r"(?:number|value|amount|share|size|total|population|budget|gdp|cost|price|area|length|volume|"
    r"rate|percentage|turnover|revenue|spending|capital|headcount|strength|death toll|toll)\b|"
    r"how (?:large|big|long|far|often))\b"
)
_DATE_ASK_RE = re.compile(
    r"^(?:when|since when|until when|by when|"
    r"(?:in |on |by )?(?:what|which) (?:\w+ )?(?:year|date|month|day)|in what year|what year)\b"
)
# "Where was it reported": where a claim was published, not a place.
_PUBLISHED_RE = re.compile(
    r"\b(?:report\w*|publish\w*|print\w*|appear\w*|come from|came from|quot\w*|cit\w*|"
    r"source\w*|announc\w*|state[ds]?|said|say|write|wrote|written|"
    r"(?:find|found) (?:it|that|this))\b"
)
_PLACE_ASK_RE = re.compile(
    r"^(?:where|"
    r"(?:in|at|from|to) (?:what|which) "
    r"(?:city|country|region|province|oblast|place|town|location|capital)|"
    r"(?:what|which) (?:city|country|region|province|place|town|capital|location)\b)"
)
_NAME_ASK_RE = re.compile(
    r"^(?:who|whom|whose|by whom|(?:during|under|with) whose|(?:which|what) "
    r"(?:official|leader|president|minister|person|scholar|author|analyst|journalist|secretary|"
    r"expert|outlet|publication|newspaper|agency|institution|organization|body|country|countries|"
    r"state|states|member))\b"
)
_REASON_ASK_RE = re.compile(
    r"^(?:why|for what reason|what (?:motivat|explain|drove|prompted|led)|how come)"
)


def answer_kind(text: str) -> str:
    """The kind of answer a question (part) asks for."""
    q = text.strip().lower()
    q = re.sub(r"^(?:and|but|so|also|then)\s+", "", q)
    q = re.sub(r"^(?:roughly|approximately|about|exactly|precisely|so)\s+", "", q)
    if re.match(r"^(?:for )?how long\b(?! (?:after|before|ago|since))", q) or re.search(
        r"\bhow many (?:days|weeks|months|hours)\b", q
    ):
        return "duration"
    if re.match(r"^how long (?:after|before|ago|since)\b|^how many years\b", q):
        return "date"
    if _QUANTITY_ASK_RE.match(q) or re.search(r"\bhow (?:many|much)\b", q):
        return "quantity"
    if _DATE_ASK_RE.match(q) or re.search(
        r"\b(?:what|which) (?:exact |precise )?(?:year|date|month)\b", q
    ):
        return "date"
    if re.match(r"^where\b", q) and _PUBLISHED_RE.search(q):
        return "other"  # an outlet or a document
    if _PLACE_ASK_RE.match(q):
        # "which country" names a place, and often an actor: both are names.
        return "place" if q.startswith(("where", "in ", "at ", "from ", "to ")) else "name"
    if _NAME_ASK_RE.match(q):
        return "name"
    if _REASON_ASK_RE.match(q):
        return "reason"
    if _STARTS_AUX_RE.match(q):
        return "yesno"
    if is_list_question(text):
        return "list"
    return "other"


def qualifiers_of(text: str) -> tuple[Qualifier, ...]:
    found = []
    for trigger, qualifier in _QUALIFIERS:
        if re.search(trigger, text, re.IGNORECASE) and qualifier not in found:
            found.append(qualifier)
    return tuple(found)


def _has_verb(fragment: str) -> bool:
    words = fragment.split()
    return len(words) >= 4 or bool(_VERB_HINT_RE.search(" ".join(words[1:])))


def _split_sentence(sentence: str) -> list[tuple[str, str]]:
    """A question sentence split into its parts: (part text, shared clause)."""
    text = sentence.strip().rstrip("?").strip()
    shared = _SHARED_WH_RE.match(text)
    if shared and not _has_verb(shared.group(1)):
        # "When and at which summit did the SCO adopt its charter"
        first, rest = shared.group(1), shared.group(2)
        parts = _split_sentence(rest)
        clause = _WH_HEAD_RE.sub("", parts[0][0], count=1) if parts else ""
        return [(f"{first} {clause}".strip(), ""), *parts]
    pieces = [p.strip(" ,;") for p in _PART_BREAK_RE.split(text) if p and p.strip(" ,;")]
    if len(pieces) > 1 and not (
        _STARTS_WH_RE.match(pieces[0])
        or _STARTS_AUX_RE.match(pieces[0])
        or _IMPERATIVE_RE.match(pieces[0])
    ):
        # "According to X, which ...": the lead-in qualifies the question after it.
        pieces = [f"{pieces[1]} ({pieces[0]})", *pieces[2:]]
    if len(pieces) == 1:
        return [(pieces[0], "")]
    out: list[tuple[str, str]] = []
    for i, piece in enumerate(pieces):
        if i > 0 and not _has_verb(piece):
            # "..., and why" / "during whose presidency": the clause comes from the first part.
            out.append((piece, _WH_HEAD_RE.sub("", out[0][0], count=1)))
        else:
            out.append((piece, ""))
    return out


def _assumption(part: str) -> str | None:
    """What a why-question takes as true: "Why did Beijing block X" -> "Beijing did block X"."""
    m = re.match(rf"^\s*(?:why|how come|for what reason)\s+({_AUX})\s+(.+)$", part, re.IGNORECASE)
    if not m or len(m.group(2).split()) < 3:
        return None
    aux, rest = m.group(1).lower(), m.group(2).strip()
    subject = re.match(
        r"^((?:the\s+)?(?:[A-Z][\w’'-]*\s+)+(?:(?:government|leadership|authorities|officials|military|side|"
        r"president|ministry|members?|states?|countries|country|chair|presidency)\s+)?)(\S.*)$",
        rest,
    )
    if subject:  # the auxiliary back after its subject, so that the clause reads as a statement
        return f"{subject.group(1)}{aux} {subject.group(2)}"
    return rest


_NOW_THAT_RE = re.compile(
    r"\b(?:now that|given that|since|because)\s+([^,?]{12,}?)(?:,|\?|$)", re.IGNORECASE
)
_SINCE_JOINING_RE = re.compile(
    r"\b(?:since|after|when|upon)\s+(joining|becoming|being (?:made|admitted as))\s+([^,?]+)",
    re.IGNORECASE,
)


def _taken_as_given(question: str) -> list[str]:
    """Clauses a question takes as true: "now that every member is also X, ...";
    "what has Saudi Arabia done since joining as a full member?"."""
    found = []
    for m in _NOW_THAT_RE.finditer(question):
        clause = m.group(1).strip()
        if re.match(r"^(?:when|then|\d{4}|\w+ing)\b", clause, re.IGNORECASE):
            continue
        if len(clause.split()) >= 3:
            found.append(clause)
    for m in _SINCE_JOINING_RE.finditer(question):
        runs = re.findall(r"(?<!^)\b(?:[A-Z][\w’'-]+\s+)*[A-Z][\w’'-]+", question[: m.start()])
        subject = next((r for r in runs if r.split()[0].lower() not in _NOT_NAMES), None)
        if subject:
            verb = {"joining": "joined", "becoming": "became"}.get(m.group(1).lower(), "was made")
            found.append(f"{subject} {verb} {m.group(2).strip()}")
    return found


def analyse_question(question: str) -> QuestionPlan:
    """Split a question into the parts an answer must cover."""
    sentences = [s.strip() for s in split_sentences(question.strip()) if s.strip()]
    asked: list[str] = []
    context: list[str] = []
    for sentence in sentences:
        if (
            sentence.endswith("?")
            or _STARTS_WH_RE.match(sentence)
            or _IMPERATIVE_RE.match(sentence)
        ):
            asked.append(sentence)
        elif _STARTS_AUX_RE.match(sentence) and len(sentence.split()) > 2:
            asked.append(sentence)
        else:
            context.append(sentence)
    if not asked:
        asked, context = [question.strip()], []
    raw: list[tuple[str, str]] = []
    for sentence in asked:
        pieces = _split_sentence(sentence)
        if raw and len(pieces) == 1 and not _has_verb(pieces[0][0]):
            # "What did Putin propose? And when?"
            pieces = [(pieces[0][0], _WH_HEAD_RE.sub("", raw[0][0], count=1))]
        raw += pieces
    if len(raw) > 4:  # a long list of questions: keep the first four, the rest go with the last
        raw = raw[:3] + [(" ".join(p for p, _ in raw[3:]), raw[3][1])]
    parts = []
    for i, (text, clause) in enumerate(raw):
        full = f"{text} {clause}".strip()
        part_text = text[0].upper() + text[1:] if text else text
        parts.append(
            Part(
                text=part_text.rstrip("?") + "?",
                asks=answer_kind(text),
                names=(found := names_in(full)),
                concepts=tuple(asked_concepts(full, list(found))),
                qualifiers=qualifiers_of(full),
                refers_back=i > 0 and bool(_BACK_REFERENCE_RE.search(text)),
                clause=clause,
            )
        )
    assumptions = [a for p in parts if (a := _assumption(p.text.rstrip("?")))]
    assumptions += _taken_as_given(question)
    assumptions += context
    return QuestionPlan(question, parts, " ".join(context), assumptions)
