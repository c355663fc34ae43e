"""Generated answers: a language model writes a short answer citing numbered
passages; every sentence is checked against the passage it cites before it
is shown.

The check, in code, costs no model call: a sentence is kept when its cited
passage holds every number and name it states and most of its content words;
a sentence whose cited passage fails but another passage passes is re-cited;
anything else is dropped. If nothing survives, the extractive answer is given
instead (or a refusal). The passages are data: the prompt says so, they are
fenced and numbered, and nothing inside them can change the rules above,
which run after generation.
"""

from __future__ import annotations

import re
import threading
import time
import typing as t
from dataclasses import dataclass, field

from ingest.chunk import quotable_units
from ingest.text import strip_superscripts
from service.answer.extractive import ExtractiveGenerator
from service.answer.prompt import NOT_ANSWERED, SYSTEM_PROMPT
from service.answer.types import Claim, Draft, Evidence
from service.answer.verify import Verifier, _sentences
from service.errors import GenerationError, GeneratorBusy
from service.llm.chat import ChatBackend, GenerationStats, LocalChat
from service.retrieve import Retriever, SearchResult
from service.text import looks_like_instructions

# A model that says in words that the passages do not answer.
_REFUSAL_RE = re.compile(
    r"\b(?:not|never)\s+(?:explicitly\s+|directly\s+|specifically\s+)?(?:stated|mentioned|provided|"
    r"given|specified|available|included|discussed|addressed)\b|\bdo(?:es)?\s+not\s+(?:say|mention|"
    r"state|provide|specify|contain|include|give)\b|\bno\s+(?:information|mention|data|details)\b",
    re.IGNORECASE,
)


def _is_refusal(text: str) -> bool:
    return text.upper().startswith(NOT_ANSWERED) or bool(_REFUSAL_RE.search(text))


@dataclass
class _Writing:
    """The model's answer as it is written and verified."""

    stats: GenerationStats
    pieces: list[str] = field(default_factory=list)
    kept: list[Claim] = field(default_factory=list)
    checked: int = 0  # sentences of the raw answer already verified
    refused: bool = False
    failed: bool = False

    @property
    def raw(self) -> str:
        return "".join(self.pieces).strip()

    def keep(self, claims: list[Claim]) -> list[Claim]:
        self.kept.extend(claims)
        return claims

    def figures(self) -> dict[str, float]:
        return {
            "prompt_tokens": self.stats.prompt_tokens,
            "completion_tokens": self.stats.completion_tokens,
            "ttft_ms": round(self.stats.ttft_ms, 1),
            "generate_ms": round(self.stats.total_ms, 1),
            "queue_ms": round(self.stats.waited_ms, 1),
        }


class LLMGenerator:
    """A language model writes the answer; the verifier decides what is shown."""

    incremental = True  # claims come sentence by sentence, as the model writes

    def __init__(
        self,
        backend: ChatBackend,
        retriever: Retriever,
        fallback: ExtractiveGenerator,
        *,
        max_passages: int = 3,
        sentences_per_passage: int = 3,
        max_tokens: int = 160,
        timeout_s: float = 30.0,
        queue_timeout_s: float = 20.0,
    ) -> None:
        self.backend = backend
        self.retriever = retriever
        self.fallback = fallback
        self.max_passages = max_passages
        self.sentences_per_passage = sentences_per_passage
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.queue_timeout_s = queue_timeout_s
        self.name = backend.name.split(":")[0]
        # The packaged model writes in this process: it cannot also judge a
        # claim until it has finished writing.
        self.shares_model = isinstance(backend, LocalChat)
        self._lock = threading.Lock()
        self.last_stats = GenerationStats()

    def prompt(
        self, question: str, evidence: list[Evidence], search: SearchResult
    ) -> list[dict[str, str]]:
        """The numbered passages, each trimmed to its sentences most relevant to
        the question (kept in their order), then the question."""
        stored = self.retriever.snapshot().sentence_vectors(e.passage.id for e in evidence)
        blocks = []
        for n, item in enumerate(evidence, start=1):
            p = item.passage
            units = quotable_units(p.kind, p.text)
            safe = [i for i, (u, _) in enumerate(units) if not looks_like_instructions(u)]
            text = p.text if len(safe) == len(units) else " ".join(units[i][0] for i in safe)
            vectors = stored.get(p.id)
            if vectors is not None and len(safe) > self.sentences_per_passage and p.kind != "list":
                scores = vectors @ search.query_vector
                best = sorted(safe, key=lambda i: -scores[i])[: self.sentences_per_passage]
                text = " ".join(units[i][0] for i in sorted(best))
            where = p.section.split(" > ")[-1] if p.section else p.document_title
            blocks.append(f"[{n}] ({where}) {strip_superscripts(text)}")
        asked = question
        if search.query.text != question:
            # A follow-up: the retrieval query carries what the conversation was about.
            topic = search.query.text[len(question) :].strip(" ()")
            asked = f"{question} (the conversation is about: {topic})"
        user = "Passages:\n" + "\n\n".join(blocks) + f"\n\nQuestion: {asked}"
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]

    def generate(self, question: str, evidence: list[Evidence], search: SearchResult) -> Draft:
        claims: list[Claim] = []
        for item in self.stream(question, evidence, search):
            if isinstance(item, Draft):
                if item.answered:
                    item.claims = claims
                return item
            claims.append(item)
        raise GenerationError("the generator ended without a draft")

    def stream(
        self,
        question: str,
        evidence: list[Evidence],
        search: SearchResult,
        cancel: threading.Event | None = None,
    ) -> t.Iterator[Claim | Draft]:
        """Verified claims as the model writes them, sentence by sentence, then
        the draft. Closing the iterator stops the model."""
        # The extractive pass is cheap and carries the calibrated relevance signal:
        # it decides whether the corpus answers at all. A source question is
        # answered by the claim and its endnote, a list question by the whole
        # list; neither needs the model.
        extractive = self.fallback.generate(question, evidence, search)
        extractive.generator = self.fallback.name
        whole_list = len(extractive.claims) == 1 and "\n- " in extractive.claims[0].text
        if not extractive.answered or search.query.source or whole_list:
            yield from extractive.claims
            yield extractive
            return
        evidence = evidence[: self.max_passages]
        messages = self.prompt(question, evidence, search)
        writing = _Writing(GenerationStats(prompt_tokens=self.backend.count_tokens(messages)))
        verifier = Verifier(self.retriever.tokenizer, self.retriever.acronyms())
        yield from self._write(messages, evidence, verifier, writing, cancel)
        if not writing.refused and not writing.failed:
            yield from self._verify_rest(evidence, verifier, writing)
        writing.stats.completion_tokens = len(writing.pieces)
        self.last_stats = writing.stats
        yield from self._conclude(writing, extractive)

    def _write(
        self,
        messages: list[dict[str, str]],
        evidence: list[Evidence],
        verifier: Verifier,
        writing: _Writing,
        cancel: threading.Event | None,
    ) -> t.Iterator[Claim]:
        """The model writes, holding it; each sentence is verified as soon as the
        next one starts, and what passes is yielded at once."""
        stats = writing.stats
        started = time.monotonic()
        if not self._lock.acquire(timeout=self.queue_timeout_s):
            raise GeneratorBusy(
                f"the language model is busy; try again in a few seconds "
                f"(waited {self.queue_timeout_s:.0f} s)"
            )
        try:
            stats.waited_ms = (time.monotonic() - started) * 1000
            begun = time.monotonic()
            tokens = self.backend.stream(
                messages, max_tokens=self.max_tokens, deadline=begun + self.timeout_s
            )
            try:
                for piece in tokens:
                    if cancel is not None and cancel.is_set():
                        break  # the client went away: stop the model
                    if not writing.pieces:
                        stats.ttft_ms = (time.monotonic() - begun) * 1000
                    writing.pieces.append(piece)
                    sentences = _sentences("".join(writing.pieces))
                    # All but the last sentence are complete; verify and release them.
                    while writing.checked < len(sentences) - 1:
                        text, refs = sentences[writing.checked]
                        writing.checked += 1
                        if writing.checked == 1 and _is_refusal(text):
                            writing.refused = True
                            break
                        yield from writing.keep(verifier.check_one(text, refs, evidence))
                    if writing.refused:
                        break
            except GenerationError:
                writing.failed = True
            finally:
                close = getattr(tokens, "close", None)
                if close is not None:
                    close()
            stats.total_ms = (time.monotonic() - begun) * 1000
        finally:
            self._lock.release()

    def _verify_rest(
        self, evidence: list[Evidence], verifier: Verifier, writing: _Writing
    ) -> t.Iterator[Claim]:
        """The sentences not yet verified once the model has finished."""
        for text, refs in _sentences(writing.raw)[writing.checked :]:
            if writing.checked == 0 and _is_refusal(text):
                writing.refused = True
                break
            writing.checked += 1
            yield from writing.keep(verifier.check_one(text, refs, evidence))

    def _conclude(self, writing: _Writing, extractive: Draft) -> t.Iterator[Claim | Draft]:
        """The draft: what passed; a refusal when the model found no answer; and
        when nothing it wrote is supported (or it failed), the passages' own words."""
        raw, figures = writing.raw, writing.figures()
        if writing.kept:
            yield Draft(True, writing.kept, raw=raw, relevance=extractive.relevance, stats=figures)
            return
        if (writing.refused or not raw) and not writing.failed:
            yield Draft(
                False,
                reason="the passages retrieved do not answer the question "
                "(the model found no answer)",
                raw=raw,
                relevance=extractive.relevance,
                stats=figures,
            )
            return
        extractive.raw = raw
        extractive.stats = figures
        yield from extractive.claims
        yield extractive
