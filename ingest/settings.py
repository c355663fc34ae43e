"""The index's settings: where the corpus is, where and how it is indexed.

The sections here are the bottom layer of memoqa's one settings object
(`service.settings.Settings` composes them with the service's own).

Every field can be set as `MEMOQA_<SECTION>__<FIELD>`, e.g.
`MEMOQA_INDEX__CHROMA_HOST=chroma.internal` or `MEMOQA_RETRIEVAL__TOP_K=8`.
Read it through `get_settings()`; nothing builds it at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from ingest.embed import Embedder


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CorpusSettings(_Section):
    manifest: Path = Field(
        default=Path("corpus/manifest.json"),
        description="Manifest listing the documents to ingest "
        "(relative paths resolve from its folder).",
    )


class IndexSettings(_Section):
    path: Path = Field(
        default=Path(".memoqa/index"),
        description="Folder of the embedded Chroma store; unused when chroma_host is set.",
    )
    chroma_host: str | None = Field(
        default=None,
        description="Host of a Chroma server (`chroma run`); unset means embedded Chroma.",
    )
    chroma_port: int = Field(default=8000, ge=1, le=65535, description="Port of the Chroma server.")
    chroma_ssl: bool = Field(default=False, description="Use HTTPS to reach the Chroma server.")
    collection_prefix: str = Field(
        default="memoqa",
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{1,40}$",
        description="Prefix of every Chroma collection this index owns.",
    )
    keep_generations: int = Field(
        default=2,
        ge=2,
        le=10,
        description="Index generations kept (the active one and the ones before it), so a "
        "service mid-query never loses the collection it is reading.",
    )
    follow_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="How long a service trusts its view of the active generation before it "
        "reads the registry again (seconds); 0 reads it for every request. An ingest through "
        "the service itself is seen at once.",
    )
    lock_path: Path = Field(
        default=Path(".memoqa/ingest.lock"), description="Lock file that keeps two ingests apart."
    )
    extracted_path: Path | None = Field(
        default=None,
        description="Folder of the texts read from PDF, Word and HTML papers, kept by "
        "content hash so unchanged papers are not read again; unset means `extracted` "
        "beside the lock file.",
    )

    lexical_path: Path | None = Field(
        default=None,
        description="Folder of the lexical (BM25) index saved with each generation, read "
        "memory-mapped by the service; unset means `lexical` beside the lock file.",
    )
    onnx_path: Path | None = Field(
        default=None,
        description="Folder of the embedding model's ONNX export (made once per model and "
        "onnxruntime version, shareable by indexes); unset means `onnx` beside the lock file.",
    )

    @property
    def extracted_folder(self) -> Path:
        return self.extracted_path or self.lock_path.parent / "extracted"

    @property
    def lexical_folder(self) -> Path:
        return self.lexical_path or self.lock_path.parent / "lexical"

    @property
    def onnx_folder(self) -> Path:
        """Where the embedding model's ONNX export is kept."""
        return self.onnx_path or self.lock_path.parent / "onnx"


class EmbeddingSettings(_Section):
    model: str = Field(
        default="all-MiniLM-L6-v2",
        description="A packaged model name (see ingest.embed.PACKAGED_MODELS) or a local "
        "sentence-transformers folder.",
    )
    batch_size: int = Field(
        default=4,
        ge=1,
        le=512,
        description="Texts embedded per batch (ingest sorts them by length first; on 2 "
        "cores small batches of like length embed fastest).",
    )
    runtime: Literal["onnx", "torch"] = Field(
        default="onnx",
        description="What runs the model: onnx (its ONNX export on onnxruntime, made and "
        "checked against torch once, then used for passages and questions) or torch.",
    )

    @model_validator(mode="before")
    @classmethod
    def _onnx_queries(cls, data: Any) -> Any:
        """The earlier switch `onnx_queries=false` still means torch."""
        if isinstance(data, dict) and "onnx_queries" in data:
            data = dict(data)
            wanted = str(data.pop("onnx_queries")).strip().lower()
            if wanted in {"false", "0", "no", "off"}:
                data.setdefault("runtime", "torch")
        return data


class ChunkingSettings(_Section):
    max_chars: int = Field(
        default=1100,
        ge=300,
        le=8000,
        description="Paragraphs longer than this are split at sentence boundaries.",
    )
    min_chars: int = Field(
        default=160,
        ge=0,
        le=1000,
        description="Paragraphs shorter than this are merged with a neighbour in the same section.",
    )


class _EnvSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MEMOQA_", env_nested_delimiter="__", extra="forbid"
    )


class IngestSettings(_EnvSettings):
    """What ingest needs: the corpus, the index, the embedding model, the chunking."""

    corpus: CorpusSettings = Field(default_factory=CorpusSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)


def load_configured_embedder(settings: IngestSettings) -> Embedder:
    """The embedding model the settings name, on the runtime they name."""
    from ingest.embed import load_embedder

    onnx = settings.index.onnx_folder if settings.embedding.runtime == "onnx" else None
    return load_embedder(
        settings.embedding.model, batch_size=settings.embedding.batch_size, onnx_folder=onnx
    )
