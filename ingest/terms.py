"""Search terms: the tokenizer the lexical index is built with at ingest and
queried with at search time (one set of rules for both)."""

from __future__ import annotations

import re

from ingest.text import strip_superscripts

_WORD_RE = re.compile(r"[^\W_]+(?:[’'][^\W_]+)*(?:[.,][0-9]+)*", re.UNICODE)


def plain_number(written: str) -> str:
    """A number as digits alone, the one form every comparison uses: "4,000" -> "4000",
    "2025." (a sentence's end) -> "2025"."""
    return written.replace(",", "").rstrip(".")


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
                word = plain_number(word)
            elif not keep_stopwords and word in STOPWORDS:
                continue
            words.append(word)
        return [w if w[0].isdigit() else self._stemmer.stemWord(w) for w in words]
