"""One settings object with nested sections, read from the environment.

Every field can be set as `MEMOQA_<SECTION>__<FIELD>`, e.g.
`MEMOQA_INDEX__CHROMA_HOST=chroma.internal` or `MEMOQA_RETRIEVAL__TOP_K=8`.
Read it through `get_settings()`; nothing builds it at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CorpusSettings(_Section):
    manifest: Path = Field(
        Path("corpus/manifest.json"),
        description="Manifest listing the documents to ingest (relative paths resolve from its folder).",
    )


class IndexSettings(_Section):
    path: Path = Field(
        Path(".memoqa/index"),
        description="Folder of the embedded Chroma store; unused when chroma_host is set.",
    )
    chroma_host: str | None = Field(
        None, description="Host of a Chroma server (`chroma run`); unset means embedded Chroma."
    )
    chroma_port: int = Field(8000, ge=1, le=65535, description="Port of the Chroma server.")
    chroma_ssl: bool = Field(False, description="Use HTTPS to reach the Chroma server.")
    collection_prefix: str = Field(
        "memoqa",
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{1,40}$",
        description="Prefix of every Chroma collection this index owns.",
    )
    keep_generations: int = Field(
        2,
        ge=2,
        le=10,
        description="Index generations kept (the active one and the ones before it), so a "
        "service mid-query never loses the collection it is reading.",
    )
    lock_path: Path = Field(
        Path(".memoqa/ingest.lock"), description="Lock file that keeps two ingests apart."
    )


class EmbeddingSettings(_Section):
    model: str = Field(
        "all-MiniLM-L6-v2",
        description="A packaged model name (see ingest.embed.PACKAGED_MODELS) or a local "
        "sentence-transformers folder.",
    )
    batch_size: int = Field(32, ge=1, le=512, description="Passages embedded per batch.")


class ChunkingSettings(_Section):
    max_chars: int = Field(
        1100,
        ge=300,
        le=8000,
        description="Paragraphs longer than this are split at sentence boundaries.",
    )
    min_chars: int = Field(
        160,
        ge=0,
        le=1000,
        description="Paragraphs shorter than this are merged with a neighbour in the same section.",
    )


class RetrievalSettings(_Section):
    top_k: int = Field(5, ge=1, le=20, description="Passages retrieved for an answer.")
    search_k: int = Field(10, ge=1, le=50, description="Default number of /v1/search results.")


class AnswerSettings(_Section):
    generator: str = Field(
        "local",
        description="Answer generator: local (the packaged model in-process), openai (any "
        "OpenAI-compatible endpoint) or extractive (no language model).",
    )
    openai_base_url: str | None = Field(None, description="Endpoint for the openai generator.")
    openai_model: str | None = Field(None, description="Model name for the openai generator.")
    openai_api_key: SecretStr | None = Field(None, description="Key for the openai generator.")
    max_tokens: int = Field(160, ge=16, le=2048, description="Longest generated answer, in tokens.")
    timeout_s: float = Field(30.0, gt=0, le=600, description="Time budget of one generation.")
    queue_timeout_s: float = Field(
        20.0, gt=0, le=600, description="Longest wait for the model before a 503."
    )
    max_sentences: int = Field(3, ge=1, le=8, description="Sentences in an extractive answer.")
    min_relevance: float = Field(
        0.40,
        ge=0.0,
        le=1.0,
        description="Relevance below which the corpus is taken not to answer the question.",
    )
    mode: str = Field(
        "select",
        description="How the local model answers: select (it decides which of the passages' "
        "sentences answer; they are quoted) or write (it writes the answer; each sentence is "
        "verified against its passage).",
    )
    check: str = Field(
        "auto",
        description="What every answer passes, whatever wrote it: rules (names, kind of answer "
        "and qualifiers, checked in code), model (the rules, then the local model's verdict that "
        "the sentences answer the question as asked), none, or auto (model with the local "
        "generator, rules with the others).",
    )
    min_confidence: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="The model's verdict (0..1) below which a sentence does not answer.",
    )
    relevance_weight: float = Field(
        1.0,
        ge=0.0,
        le=5.0,
        description="In select mode, how much a sentence's relevance to the question counts, "
        "beside the model's verdict, in which accepted sentence answers first.",
    )


class LLMSettings(_Section):
    model_path: Path = Field(
        Path(".memoqa/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
        description="GGUF file of the local language model (assembled by `make setup`).",
    )
    n_ctx: int = Field(4096, ge=512, le=32768, description="Context window, in tokens.")
    threads: int | None = Field(None, ge=1, le=256, description="CPU threads (default: all).")


class JudgeSettings(_Section):
    base_url: str | None = Field(
        None,
        description="OpenAI-compatible endpoint of the evaluation judge (e.g. "
        "https://host/v1); unset means the local packaged model.",
    )
    model: str | None = Field(None, description="Model name sent to that endpoint.")
    api_key: SecretStr | None = Field(None, description="Key for that endpoint.")
    timeout_s: float = Field(120.0, gt=0, le=3600, description="Time allowed per judgement.")
    max_tokens: int = Field(600, ge=16, le=8192, description="Longest judgement.")
    cache_path: Path = Field(
        Path(".memoqa/judge-cache.sqlite"),
        description="Judgements cached by their inputs, so a re-run only judges what changed.",
    )


class SecuritySettings(_Section):
    keys_file: Path | None = Field(
        None,
        description="API keys, one JSON record per line with the key's sha256 and scopes "
        "(`memoqa keys create` writes them). With no keys the service serves loopback only.",
    )
    keys: str | None = Field(
        None, description="More keys inline: name:sha256:scope+scope, comma separated."
    )
    rate_per_minute: int = Field(120, ge=1, le=100000, description="Requests a minute per key.")
    burst: int = Field(30, ge=1, le=100000, description="Requests a key may make at once.")
    concurrent_answers: int = Field(
        2, ge=1, le=1000, description="Answers one key may have in progress at once."
    )
    max_body_bytes: int = Field(65536, ge=1024, le=10_000_000, description="Largest request body.")


class ApiSettings(_Section):
    host: str = Field("127.0.0.1", description="Interface `memoqa serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `memoqa serve` listens on.")
    max_question_chars: int = Field(2000, ge=10, le=20000, description="Longest question accepted.")


class Settings(BaseSettings):
    """All of memoqa's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="MEMOQA_", env_nested_delimiter="__", extra="forbid"
    )

    corpus: CorpusSettings = Field(default_factory=CorpusSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment, with keyword overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
