"""The service's parts, built once from settings: embedder, index, retriever, generator."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ingest.embed import Embedder
from ingest.errors import MemoqaError
from ingest.index.reader import IndexReader
from ingest.settings import load_configured_embedder
from service.answer.extractive import ExtractiveGenerator
from service.answer.gate import Checks
from service.answer.pipeline import answer_events, answer_question
from service.answer.types import AnswerResult, DoneEvent, Generator, TextEvent
from service.errors import DocumentNotFoundError
from service.followup import Turn, standalone_question
from service.retrieve import RetrievalOptions, Retriever, SearchResult
from service.settings import Settings
from service.text import Tokenizer

if TYPE_CHECKING:
    from service.answer.answerability import AnswerCheck
    from service.llm.chat import ChatBackend
    from service.llm.local import LocalLLM

GENERATORS = ("local", "openai", "extractive")


@dataclass
class Engine:
    settings: Settings
    embedder: Embedder
    index: IndexReader
    retriever: Retriever
    generator: Generator
    checks: Checks

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        history: list[Turn] | None = None,
        documents: list[str] | None = None,
    ) -> AnswerResult:
        """Answer `question` (from some papers only, when `documents` names them);
        with earlier turns, a follow-up is made standalone first."""
        query = standalone_question(question, history) if history else None
        return answer_question(
            question,
            retriever=self.scoped(documents),
            generator=self.generator,
            top_k=top_k or self.settings.retrieval.top_k,
            query=query,
            checks=self.checks,
        )

    def ask_events(
        self,
        question: str,
        top_k: int | None = None,
        history: list[Turn] | None = None,
        cancel: threading.Event | None = None,
        documents: list[str] | None = None,
    ) -> Iterator[TextEvent | DoneEvent]:
        """The answer as it is made (see `answer_events`)."""
        query = standalone_question(question, history) if history else None
        return answer_events(
            question,
            retriever=self.scoped(documents),
            generator=self.generator,
            top_k=top_k or self.settings.retrieval.top_k,
            query=query,
            cancel=cancel,
            checks=self.checks,
        )

    def search(
        self, query: str, k: int | None = None, documents: list[str] | None = None
    ) -> SearchResult:
        return self.scoped(documents).search(query, k or self.settings.retrieval.search_k)

    def scoped(self, documents: list[str] | None) -> Retriever:
        """The retriever over the named papers (all, when none are named); an id
        the index does not hold is refused by name."""
        if not documents:
            return self.retriever
        indexed = self.retriever.snapshot().documents
        unknown = [d for d in dict.fromkeys(documents) if d not in indexed]
        if unknown:
            raise DocumentNotFoundError(
                f"no indexed paper with id {', '.join(repr(d) for d in unknown)} "
                f"(indexed: {', '.join(sorted(indexed)) or 'none'})"
            )
        return self.retriever.within(documents)


MODES = ("select", "write")
READERS = ("verdict", "span")
CHECKS = ("auto", "model", "rules", "none")


def check_answer_settings(settings: Settings) -> None:
    if settings.answer.mode not in MODES:
        raise MemoqaError(
            f"unknown answer mode '{settings.answer.mode}'; choose one of: {', '.join(MODES)}"
        )
    if settings.answer.reader not in READERS:
        raise MemoqaError(
            f"unknown answer reader '{settings.answer.reader}'; choose one of: {', '.join(READERS)}"
        )
    if settings.answer.check not in CHECKS:
        raise MemoqaError(
            f"unknown answer check '{settings.answer.check}'; choose one of: {', '.join(CHECKS)}"
        )


def check_mode(settings: Settings) -> str:
    a = settings.answer
    if a.check == "auto":
        return "model" if a.generator == "local" else "rules"
    return a.check


def phrase_similarity(embedder: Embedder) -> Callable[[str, list[str]], list[float]]:
    """Cosine similarity of a short phrase to others, with the embedding model."""

    def similar(phrase: str, others: list[str]) -> list[float]:
        vectors = np.asarray(embedder.embed_texts([phrase, *others]), dtype=np.float32)
        return [float(v @ vectors[0]) for v in vectors[1:]]

    return similar


def make_generator(
    settings: Settings, embedder: Embedder, retriever: Retriever
) -> tuple[Generator, Checks]:
    """The configured generator and the checks every answer passes; language-model
    generators fall back to the extractive one when they fail or time out."""
    check_answer_settings(settings)
    a = settings.answer
    check = check_mode(settings)
    similar = phrase_similarity(embedder)
    extractive = ExtractiveGenerator(
        embedder,
        retriever,
        min_relevance=a.min_relevance,
        max_sentences=a.max_sentences,
        rules=check != "none",
        similar=similar,
    )
    local = _local_model(settings) if a.generator == "local" or check == "model" else None
    model_check = _answer_check(local) if local is not None else None
    checks = Checks(
        rules=check != "none",
        model=model_check if check == "model" else None,
        min_confidence=a.min_confidence,
        similar=similar,
    )
    if checks.rules:
        from service.answer.premises import PremiseCheck

        checks.premises = PremiseCheck(extractive)
    if a.generator == "extractive":
        return extractive, checks
    if a.generator == "local" and a.mode == "select":
        assert model_check is not None
        # The generator already asks the model about every sentence it quotes.
        assert local is not None
        return _select_generator(settings, extractive, model_check, checks, local), checks
    from service.answer.write import LLMGenerator

    backend = _chat_backend(settings, local)
    generator = LLMGenerator(
        backend,
        retriever,
        extractive,
        max_tokens=a.max_tokens,
        timeout_s=a.timeout_s,
        queue_timeout_s=a.queue_timeout_s,
    )
    return generator, checks


def _local_model(settings: Settings) -> LocalLLM:
    from service.llm.local import LocalLLM

    llm = settings.llm
    return LocalLLM(llm.model_path, n_ctx=llm.n_ctx, threads=llm.threads)


def _answer_check(local: LocalLLM) -> AnswerCheck:
    from service.answer.answerability import AnswerCheck

    return AnswerCheck(local)


def _select_generator(
    settings: Settings,
    extractive: ExtractiveGenerator,
    check: AnswerCheck,
    checks: Checks,
    local: LocalLLM,
) -> Generator:
    from service.answer.reader import SpanReader
    from service.answer.select import SelectGenerator

    a = settings.answer
    return SelectGenerator(
        extractive,
        check,
        checks,
        reader=SpanReader(local) if a.reader == "span" else None,
        model_name="local",
        min_confidence=a.min_confidence,
        relevance_weight=a.relevance_weight,
        queue_timeout_s=a.queue_timeout_s,
    )


def _chat_backend(settings: Settings, local: LocalLLM | None) -> ChatBackend:
    """What a writing generator writes through: the packaged model, or an
    OpenAI-compatible endpoint."""
    from service.llm.chat import LocalChat, OpenAIChat

    a = settings.answer
    if a.generator == "local":
        assert local is not None
        return LocalChat(local)
    if a.generator == "openai":
        if not a.openai_base_url or not a.openai_model:
            raise MemoqaError(
                "the openai generator needs MEMOQA_ANSWER__OPENAI_BASE_URL and "
                "MEMOQA_ANSWER__OPENAI_MODEL"
            )
        key = a.openai_api_key.get_secret_value() if a.openai_api_key else None
        return OpenAIChat(a.openai_base_url, a.openai_model, key, a.timeout_s)
    raise MemoqaError(
        f"unknown answer generator '{a.generator}'; choose one of: {', '.join(GENERATORS)}"
    )


def preflight(settings: Settings) -> None:
    """Fail at start, with a clear message, when a configured model is missing."""
    from ingest.embed import resolve_model
    from ingest.errors import ModelNotFoundError

    resolve_model(settings.embedding.model)
    if settings.answer.generator == "local" and not settings.llm.model_path.is_file():
        raise ModelNotFoundError(
            f"language model file {settings.llm.model_path} not found: run `make setup`, "
            "or set MEMOQA_LLM__MODEL_PATH, or MEMOQA_ANSWER__GENERATOR=extractive"
        )
    if settings.answer.generator not in GENERATORS:
        raise MemoqaError(
            f"unknown answer generator '{settings.answer.generator}'; "
            f"choose one of: {', '.join(GENERATORS)}"
        )
    check_answer_settings(settings)
    if check_mode(settings) == "model" and not settings.llm.model_path.is_file():
        raise ModelNotFoundError(
            f"language model file {settings.llm.model_path} not found: the answer check needs it; "
            "run `make setup`, or set MEMOQA_ANSWER__CHECK=rules"
        )


def build_engine(settings: Settings, *, embedder: Embedder | None = None) -> Engine:
    """Load the models and open the index (lazily: a missing index makes the
    service not ready, not dead)."""
    if embedder is None:
        embedder = load_configured_embedder(settings)
    index = IndexReader(settings.index, embedder.ref, embedder.dim)
    options = RetrievalOptions(paper_scope=settings.retrieval.paper_scope)
    retriever = Retriever(index, embedder, Tokenizer(), options=options)
    generator, checks = make_generator(settings, embedder, retriever)
    return Engine(settings, embedder, index, retriever, generator, checks)
