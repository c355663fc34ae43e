"""False premises: what a question takes as true that the papers contradict.

"Why did Beijing use the unanimity rule to block the energy club?" assumes
Beijing did; the memo says Russia did. A question's assumptions (a why
clause, a statement before the question) are each checked against the
sentence of the papers that is most about them:

- a status the sentence gives otherwise: the assumption says "full member",
  the sentence that names the country says "dialogue partner";
- actors swapped: the sentence tells of the same act (the assumption's verb
  and most of its words) with another government doing it.

A contradicted assumption is answered with its correction, quoted and cited,
instead of an answer that would accept it.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass

from ingest.text import plain_text
from service.answer.checks import names_something, qualifier_met
from service.answer.evidence import gather_evidence, previous_unit, unit_context
from service.answer.extractive import ExtractiveGenerator
from service.answer.question import QuestionPlan, names_in, qualifiers_of
from service.language import country_of
from service.retrieve import Retriever


@dataclass(frozen=True)
class Correction:
    assumption: str
    passage_id: str
    quote: str
    reason: str
    notes: tuple[int, ...] = ()

    @property
    def sentence(self) -> str:
        return f"The question assumes that {self.assumption.rstrip('.')}; {self.reason}:"


def _actor_group(name: str, acronyms: dict[str, str]) -> str | None:
    """The government a name stands for (its country), if it names one: the
    country, its people or its capital ("Beijing" for China), or an abbreviation
    the paper spells out as one ("PRC")."""
    country = country_of(name) or country_of(acronyms.get(name, ""))
    return country.name if country else None


class PremiseCheck:
    def __init__(self, extractive: ExtractiveGenerator, *, candidates: int = 5) -> None:
        self.extractive = extractive
        self.retriever = extractive.retriever
        self.candidates = candidates

    def corrections(
        self, plan: QuestionPlan, retriever: Retriever | None = None
    ) -> list[Correction]:
        """The assumptions the papers contradict (those `retriever` searches)."""
        found = []
        for assumption in plan.assumptions:
            correction = self._check(assumption, retriever or self.retriever)
            if correction is not None:
                found.append(correction)
        return found

    def _check(self, assumption: str, retriever: Retriever) -> Correction | None:
        search = retriever.search(assumption, 4)
        evidence = gather_evidence(search.hits, retriever, 4)
        ranked = sorted(self.extractive.rank(assumption, evidence, search), key=lambda u: -u.score)
        snapshot = self.retriever.snapshot()
        acronyms = self.retriever.acronyms()
        names = [n for n in names_in(assumption) if not n[0].isdigit()]
        for unit in [u for u in ranked if u.position >= 0][: self.candidates]:
            passage = evidence[unit.evidence].passage
            before = plain_text(previous_unit(passage, unit.text))
            sentence = plain_text(unit.text)
            context = unit_context(passage, unit.text, snapshot)
            about = f"{snapshot.known_as(passage.document_id)} {context} {sentence}"
            named = [n for n in names if names_something(n, about, acronyms)]
            if len(named) < max(1, len(names) - 1):
                continue  # about something else
            reason = self._status(assumption, sentence, before)
            act = self._actors_of_act(assumption, sentence, before)
            if reason is None and act is not None:
                asked, said = act
                if asked == said:
                    return None  # the paper tells it as the question does
                reason = (
                    f"the paper names another actor ({said.capitalize()}, not {asked.capitalize()})"
                )
            if reason is not None:
                return Correction(assumption, passage.id, unit.text.strip(), reason, unit.notes)
        return None

    @staticmethod
    def _status(assumption: str, sentence: str, before: str) -> str | None:
        for qualifier in qualifiers_of(assumption):
            if not qualifier.conflicts or not re.search(
                qualifier.conflicts, sentence, re.IGNORECASE
            ):
                continue
            if not qualifier_met(qualifier, f"{before} {sentence}"):
                return f"the paper gives another status than '{qualifier.name}'"
        return None

    def _actors_of_act(self, assumption: str, sentence: str, before: str) -> tuple[str, str] | None:
        """(who the assumption says did it, who the sentence says did it), when
        the sentence tells of the same act: the assumption's verb, and at least
        half of its words."""
        acronyms = self.retriever.acronyms()
        tokenize = self.retriever.tokenizer
        actors = [n for n in names_in(assumption) if _actor_group(n, acronyms)]
        actor_terms = {t for a in actors for t in tokenize(a)}
        words = [w for w in tokenize(assumption) if w not in actor_terms]
        if not actors or len(words) < 2:
            return None
        if len(set(words) & set(tokenize(sentence))) < 0.5 * len(set(words)):
            return None  # another act
        for verb in _verbs(assumption, actors[0], tokenize):
            asked = _agent(assumption, verb, tokenize, acronyms, "")
            said = _agent(sentence, verb, tokenize, acronyms, before)
            if asked and said:
                return asked, said
        return None


# Verbs that carry another ("kept blocking", "tried to set up").
_CARRIERS = frozenset(
    "kept keep keeps continued continue continues tried try tries has have had did does do been "
    "is are was were used use uses sought seek seeks wanted want wants".split()
)


def _verbs(statement: str, actor: str, tokenize: t.Callable[[str], list[str]]) -> list[str]:
    """Stems of the statement's verbs: the word after its first actor (past
    "kept", "has", ...) and every word after "to"."""
    words = _WORD_RE.findall(plain_text(statement))
    found: list[str] = []
    start = next((i for i, w in enumerate(words) if w.startswith(actor)), None)
    if start is not None:
        i = start + 1
        while i < len(words) and words[i].lower() in _CARRIERS:
            found += tokenize(words[i])
            i += 1
        if i < len(words):
            found += tokenize(words[i])
    for i, word in enumerate(words[:-1]):
        if word.lower() == "to":
            found += tokenize(words[i + 1])
    return list(dict.fromkeys(found))


_WORD_RE = re.compile(r"[\w’'-]+")


def _agent(
    text: str,
    stem: str,
    tokenize: t.Callable[[str], list[str]],
    acronyms: dict[str, str],
    before: str,
) -> str | None:
    """The government that does what `stem` says in text: the first one named in
    its clause before the verb, or, for "it", the first one the sentence before names."""
    words = _WORD_RE.findall(plain_text(text))
    for i, word in enumerate(words):
        if tokenize(word) != [stem]:
            continue
        clause = words[:i]
        for j in range(len(clause) - 1, -1, -1):  # back to the start of the clause
            if clause[j].lower() in ("which", "that", "who", "while", "whereas", "but"):
                clause = clause[j + 1 :]
                break
        for candidate in clause:
            group = _actor_group(candidate.removesuffix("’s").removesuffix("'s"), acronyms)
            if group:
                return group
        if any(w.lower() in ("it", "they") for w in clause) and before:
            for candidate in _WORD_RE.findall(plain_text(before)):
                group = _actor_group(candidate.removesuffix("’s").removesuffix("'s"), acronyms)
                if group:
                    return group
        return None
    return None
