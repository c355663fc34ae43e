"""The service's parts, built once from settings: embedder, index, retriever, generator."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from ingest.embed import Embedder, load_embedder
from ingest.errors import MemoqaError
from ingest.index import IndexReader
from ingest.settings import Settings
from ingest.text import Tokenizer
from service.answer import (
    AnswerResult,
    DoneEvent,
    ExtractiveGenerator,
    Generator,
    TextEvent,
    answer_events,
    answer_question,
)
from service.conversation import Turn, standalone_question
from service.retrieve import Retriever, SearchResult

GENERATORS = ("local", "openai", "extractive")


@dataclass
class Engine:
    settings: Settings
    embedder: Embedder
    index: IndexReader
    retriever: Retriever
    generator: Generator

    def ask(
        self, question: str, top_k: int | None = None, history: list[Turn] | None = None
    ) -> AnswerResult:
        """Answer `question`; with earlier turns, a follow-up is made standalone first."""
        query = standalone_question(question, history) if history else None
        return answer_question(
            question,
            retriever=self.retriever,
            generator=self.generator,
            top_k=top_k or self.settings.retrieval.top_k,
            query=query,
        )

    def ask_events(
        self,
        question: str,
        top_k: int | None = None,
        history: list[Turn] | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[TextEvent | DoneEvent]:
        """The answer as it is made (see `answer_events`)."""
        query = standalone_question(question, history) if history else None
        return answer_events(
            question,
            retriever=self.retriever,
            generator=self.generator,
            top_k=top_k or self.settings.retrieval.top_k,
            query=query,
            cancel=cancel,
        )

    def search(self, query: str, k: int | None = None) -> SearchResult:
        return self.retriever.search(query, k or self.settings.retrieval.search_k)


def make_generator(settings: Settings, embedder: Embedder, retriever: Retriever) -> Generator:
    """The configured generator; language-model generators fall back to the
    extractive one when they fail or time out."""
    a = settings.answer
    extractive = ExtractiveGenerator(
        embedder, retriever, min_relevance=a.min_relevance, max_sentences=a.max_sentences
    )
    if a.generator == "extractive":
        return extractive
    from service.generate import LLMGenerator, LocalChat, OpenAIChat

    backend: LocalChat | OpenAIChat
    if a.generator == "local":
        from service.local_llm import LocalLLM

        llm = settings.llm
        backend = LocalChat(LocalLLM(llm.model_path, n_ctx=llm.n_ctx, threads=llm.threads))
    elif a.generator == "openai":
        if not a.openai_base_url or not a.openai_model:
            raise MemoqaError(
                "the openai generator needs MEMOQA_ANSWER__OPENAI_BASE_URL and MEMOQA_ANSWER__OPENAI_MODEL"
            )
        key = a.openai_api_key.get_secret_value() if a.openai_api_key else None
        backend = OpenAIChat(a.openai_base_url, a.openai_model, key, a.timeout_s)
    else:
        raise MemoqaError(
            f"unknown answer generator '{a.generator}'; choose one of: {', '.join(GENERATORS)}"
        )
    return LLMGenerator(
        backend,
        retriever,
        extractive,
        max_tokens=a.max_tokens,
        timeout_s=a.timeout_s,
        queue_timeout_s=a.queue_timeout_s,
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
            f"unknown answer generator '{settings.answer.generator}'; choose one of: {', '.join(GENERATORS)}"
        )


def build_engine(settings: Settings, *, embedder: Embedder | None = None) -> Engine:
    """Load the models and open the index (lazily: a missing index makes the
    service not ready, not dead)."""
    embedder = embedder or load_embedder(
        settings.embedding.model, batch_size=settings.embedding.batch_size
    )
    index = IndexReader(settings.index, embedder.ref, embedder.dim)
    retriever = Retriever(index, embedder, Tokenizer())
    generator = make_generator(settings, embedder, retriever)
    return Engine(settings, embedder, index, retriever, generator)
