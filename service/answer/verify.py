"""The check every generated sentence passes, in code and at no model call: its
cited passage holds every number and name it states and most of its content
words; a sentence whose cited passage fails but another passes is re-cited;
anything else is dropped."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.chunk import quotable_units
from ingest.text import plain_text
from service.answer.markers import MARKER_RE, split_answer
from service.answer.types import Claim, Evidence
from service.text import Tokenizer, entities, looks_like_instructions, mentions, numbers_in

_GENERIC_WORDS = frozenset(
    "Organization Organisation Republic People People's Union Treaty Initiative Structure "
    "Council Association Nations States Community Commonwealth".split()
)


@dataclass
class Verified:
    claims: list[Claim]
    dropped: list[str] = field(default_factory=list)
    recited: int = 0


class Verifier:
    """Checks each generated sentence against the passage it cites."""

    def __init__(
        self, tokenizer: Tokenizer, acronyms: dict[str, str], min_overlap: float = 0.6
    ) -> None:
        self.tokenizer = tokenizer
        self.acronyms = acronyms
        self.min_overlap = min_overlap

    def support(self, sentence: str, passage_text: str) -> tuple[float, str | None]:
        """(support, quote). The quote is the passage unit that best matches the
        sentence; the sentence's numbers and names must occur in that unit or
        its neighbours (not merely somewhere in the passage), and support is the
        share of its content words found there."""
        words = set(self.tokenizer(sentence))
        if len(words) < 2:
            return 0.0, None  # a fragment ("TASS") is not a claim that can be checked
        units = [u.strip() for u, _ in _units(passage_text) if not looks_like_instructions(u)]
        if not units:
            return 0.0, None
        overlaps = [len(words & set(self.tokenizer(u))) for u in units]
        best = max(range(len(units)), key=lambda i: overlaps[i])
        window = plain_text(" ".join(units[max(0, best - 1) : best + 2]))
        # Numbers in any written form: "Three countries" needs a three in the passage.
        if numbers_in(sentence) - numbers_in(window):
            return 0.0, None
        if any(not self._named(name, window) for name in entities(sentence)):
            return 0.0, None
        return len(words & set(self.tokenizer(window))) / len(words), units[best]

    def _named(self, name: str, text: str) -> bool:
        if mentions(name, text, self.acronyms):
            return True
        # "PRC" is named by "China" when the abbreviations list spells it out so.
        spelled = self.acronyms.get(name, "")
        heads = [w for w in re.findall(r"[A-Z][a-z]{3,}", spelled) if w not in _GENERIC_WORDS]
        return any(re.search(rf"\b{re.escape(h)}", text) for h in heads)

    def check_one(self, sentence: str, refs: list[int], evidence: list[Evidence]) -> list[Claim]:
        return self._check([(sentence, refs)], evidence).claims

    def check(self, text: str, evidence: list[Evidence]) -> Verified:
        return self._check(_sentences(text), evidence)

    def _check(self, sentences: list[tuple[str, list[int]]], evidence: list[Evidence]) -> Verified:
        result = Verified([])
        for sentence, refs in sentences:
            refs = [r for r in refs if 1 <= r <= len(evidence)]  # numbers that match no passage go
            order = refs + [i for i in range(1, len(evidence) + 1) if i not in refs]
            chosen = None
            for ref in order:
                item = evidence[ref - 1]
                overlap, quote = self.support(sentence, item.passage.text)
                if overlap >= self.min_overlap:
                    chosen = (ref, quote)
                    break
            if chosen is None:
                result.dropped.append(sentence)
                continue
            ref, quote = chosen
            if refs and ref != refs[0]:
                result.recited += 1
            item = evidence[ref - 1]
            notes = next((n for u, n in _units(item.passage.text) if u.strip() == quote), ())
            result.claims.append(Claim(sentence, item.passage.id, quote, tuple(notes)))
        return result


def _units(text: str) -> list[tuple[str, tuple[int, ...]]]:
    kind = "list" if text.lstrip().startswith("- ") else "paragraph"
    return quotable_units(kind, text)


def _sentences(text: str) -> list[tuple[str, list[int]]]:
    """Answer sentences (or list lines) with their markers, markers removed."""
    if re.search(r"(?m)^\s*[-*•] ", text):
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        out = []
        for line in lines:
            refs = [int(n) for n in MARKER_RE.findall(line)]
            clean = MARKER_RE.sub("", line).strip()
            if clean:
                out.append((clean, refs))
        return out
    return split_answer(text)
