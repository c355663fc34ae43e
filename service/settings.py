"""memoqa's settings: the index's sections (from ingest) and the service's own,
read from the environment.

Every field can be set as `MEMOQA_<SECTION>__<FIELD>`, e.g.
`MEMOQA_INDEX__CHROMA_HOST=chroma.internal` or `MEMOQA_RETRIEVAL__TOP_K=8`.
Read it through `get_settings()`; nothing builds it at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ingest.settings import IngestSettings

# The longest question any deployment may allow (`api.max_question_chars` is
# the limit in force; request schemas state this ceiling).
MAX_QUESTION_CEILING = 20000


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetrievalSettings(_Section):
    top_k: int = Field(default=5, ge=1, le=20, description="Passages retrieved for an answer.")
    search_k: int = Field(
        default=10, ge=1, le=50, description="Default number of /v1/search results."
    )
    paper_scope: bool = Field(
        default=True,
        description="In a library of several papers, the paper the lexical ranking puts "
        "first also has its best passages reranked when the dense candidates hold few of "
        "them (papers alike can fill the dense candidates with their copies of a passage).",
    )


class AnswerSettings(_Section):
    generator: str = Field(
        default="local",
        description="Answer generator: local (the packaged model in-process), openai (any "
        "OpenAI-compatible endpoint) or extractive (no language model).",
    )
    openai_base_url: str | None = Field(
        default=None, description="Endpoint for the openai generator."
    )
    openai_model: str | None = Field(
        default=None, description="Model name for the openai generator."
    )
    openai_api_key: SecretStr | None = Field(
        default=None, description="Key for the openai generator."
    )
    max_tokens: int = Field(
        default=160, ge=16, le=2048, description="Longest generated answer, in tokens."
    )
    timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="Time budget of one generation."
    )
    queue_timeout_s: float = Field(
        default=20.0, gt=0, le=600, description="Longest wait for the model before a 503."
    )
    max_sentences: int = Field(
        default=3, ge=1, le=8, description="Sentences in an extractive answer."
    )
    min_relevance: float = Field(
        default=0.40,
        ge=0.0,
        le=1.0,
        description="Relevance below which the corpus is taken not to answer the question.",
    )
    mode: str = Field(
        default="select",
        description="How the local model answers: select (it decides which of the passages' "
        "sentences answer; they are quoted) or write (it writes the answer; each sentence is "
        "verified against its passage).",
    )
    check: str = Field(
        default="auto",
        description="What every answer passes, whatever wrote it: rules (names, kind of answer "
        "and qualifiers, checked in code), model (the rules, then the local model's verdict that "
        "the sentences answer the question as asked), none, or auto (model with the local "
        "generator, rules with the others).",
    )
    reader: str = Field(
        default="verdict",
        description="In select mode, how the model decides which candidate sentence answers: "
        "verdict (its yes/no probability for each) or span (it copies the words that answer "
        "from one of them, under a grammar, or NONE; code checks the words' kind).",
    )
    min_confidence: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="The model's verdict (0..1) below which a sentence does not answer.",
    )
    relevance_weight: float = Field(
        default=1.0,
        ge=0.0,
        le=5.0,
        description="In select mode, how much a sentence's relevance to the question counts, "
        "beside the model's verdict, in which accepted sentence answers first.",
    )


class LLMSettings(_Section):
    model_path: Path = Field(
        default=Path(".memoqa/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
        description="GGUF file of the local language model (assembled by `make setup`).",
    )
    n_ctx: int = Field(default=4096, ge=512, le=32768, description="Context window, in tokens.")
    threads: int | None = Field(
        default=None, ge=1, le=256, description="CPU threads (default: all)."
    )


class SecuritySettings(_Section):
    keys_file: Path | None = Field(
        default=None,
        description="API keys, one JSON record per line with the key's sha256 and scopes "
        "(`memoqa keys create` writes them). With no keys the service serves loopback only.",
    )
    keys: str | None = Field(
        default=None, description="More keys inline: name:sha256:scope+scope, comma separated."
    )
    rate_per_minute: int = Field(
        default=120, ge=1, le=100000, description="Requests a minute per key."
    )
    burst: int = Field(default=30, ge=1, le=100000, description="Requests a key may make at once.")
    limit_loopback: bool = Field(
        default=False,
        description="With no keys configured, rate-limit callers on this machine too; by "
        "default a local script is never answered 429 for its request rate.",
    )
    concurrent_answers: int = Field(
        default=2, ge=1, le=1000, description="Answers one key may have in progress at once."
    )
    max_body_bytes: int = Field(
        default=65536, ge=1024, le=10_000_000, description="Largest request body."
    )


class ApiSettings(_Section):
    host: str = Field(default="127.0.0.1", description="Interface `memoqa serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `memoqa serve` listens on.")
    max_question_chars: int = Field(
        default=2000, ge=10, le=MAX_QUESTION_CEILING, description="Longest question accepted."
    )
    state_path: Path | None = Field(
        default=None,
        description="SQLite file where the workers on one machine share conversations and "
        "per-key limits; unset means each process keeps its own (`memoqa serve --workers N` "
        "uses `state.sqlite` beside the ingest lock file).",
    )
    state_url: str | None = Field(
        default=None,
        description="Redis server (redis://host:port/db) where workers on several machines "
        "share conversations and per-key limits; when set, `state_path` is not used.",
    )


class Settings(IngestSettings):
    """All of the service's configuration."""

    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment, with keyword overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
