"""Questions that arrive together are embedded in one pass, each getting the
vector it would get alone."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from fakes import fake_embedder
from support import MEMO, ONNX, ROOT

from ingest.embed import export_onnx, load_embedder


def test_questions_waiting_for_the_model_share_one_pass():
    embedder = fake_embedder()
    embedder.batches_queries = True
    passes: list[int] = []
    original = embedder.model.get_text_embedding_batch

    def slow(texts, **kwargs):
        passes.append(len(texts))
        time.sleep(0.05)
        return original(texts, **kwargs)

    embedder.model.__dict__["get_text_embedding_batch"] = slow
    questions = [f"question number {i}" for i in range(20)]
    got: dict[str, list[float]] = {}

    def ask(q: str) -> None:
        got[q] = embedder.embed_query(q)

    threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(passes) == 20 and len(passes) < 20, passes
    alone = fake_embedder()
    for q in questions:
        assert np.allclose(got[q], alone.embed_query(q))


def test_a_failed_pass_fails_every_question_in_it():
    embedder = fake_embedder()
    embedder.batches_queries = True

    def broken(texts, **kwargs):
        raise RuntimeError("model gone")

    embedder.model.__dict__["get_text_embedding_batch"] = broken
    with pytest.raises(RuntimeError, match="model gone"):
        embedder.embed_query("anything")


@pytest.mark.slow
def test_the_packaged_model_embeds_a_question_alone_and_in_a_pass_alike(torch_embedder):
    assert torch_embedder.batches_queries
    questions = ["When did Peace Mission 2021 take place?", "Who chairs the SCO?", "Why?"]
    together = torch_embedder.model.get_text_embedding_batch(questions)
    for q, vector in zip(questions, together, strict=True):
        single = torch_embedder.model.get_query_embedding(q)
        assert float(np.dot(single, vector)) > 1 - 1e-5


@pytest.mark.slow
def test_the_onnx_export_gives_the_packaged_models_vectors(torch_embedder, tmp_path):
    fast = export_onnx(torch_embedder, tmp_path)
    assert fast is not None and fast.runtime == "onnx" and fast.batches_queries
    assert sorted(p.name.split(".", 1)[1] for p in tmp_path.iterdir()) == [
        "check.json",
        "onnx",
        "tokenizer.json",
    ]  # and no partial file left
    texts = [
        "How many military personnel took part in Peace Mission 2021?",
        "Which country became the tenth full member of the SCO, and when?",
        "RATS",
        "What did the memo say about the SCO's development bank " * 40,  # past the token cap
        MEMO.read_text()[:3000],
    ]
    ours = np.asarray(fast.embed_texts(texts))
    theirs = np.asarray(torch_embedder.embed_texts(texts))
    assert np.min(np.sum(ours * theirs, axis=1)) > 1 - 1e-3
    for text, vector in zip(texts[:3], ours[:3], strict=True):
        assert float(np.dot(fast.embed_query(text), vector)) > 1 - 1e-6


@pytest.mark.slow
def test_a_checked_export_is_loaded_without_torch(real_embedder, tmp_path):
    """A later start reads the export and its check, and never imports torch."""
    assert real_embedder.runtime == "onnx"
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ingest.embed import load_embedder\n"
        f"e = load_embedder('all-MiniLM-L6-v2', onnx_folder=Path({str(ONNX)!r}))\n"
        "assert e.runtime == 'onnx', e.runtime\n"
        "v = e.embed_query('Who chairs the SCO?')\n"
        "print(len(v), 'torch' in sys.modules)\n"
    )
    written = {p: p.stat().st_mtime_ns for p in ONNX.iterdir()}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(real_embedder.dim), "False"]
    assert {p: p.stat().st_mtime_ns for p in ONNX.iterdir()} == written


@pytest.mark.slow
def test_a_damaged_or_foreign_export_is_made_again(torch_embedder, tmp_path):
    assert export_onnx(torch_embedder, tmp_path) is not None
    onnx = next(tmp_path.glob("*.onnx"))
    record = next(tmp_path.glob("*.check.json"))
    onnx.write_bytes(b"not a model")
    again = load_embedder("all-MiniLM-L6-v2", onnx_folder=tmp_path)
    assert again.runtime == "onnx" and onnx.stat().st_size > 1_000_000
    # An export checked with another onnxruntime is checked again.
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "onnxruntime": "0.0.1"}))
    assert load_embedder("all-MiniLM-L6-v2", onnx_folder=tmp_path).runtime == "onnx"
    assert json.loads(record.read_text())["onnxruntime"] == data["onnxruntime"]


def test_a_model_of_another_shape_stays_on_torch(tmp_path):
    embedder = fake_embedder()  # not a sentence-transformers model
    assert export_onnx(embedder, tmp_path) is None
    assert not list(tmp_path.iterdir())


def test_the_earlier_switch_for_question_embedding_still_chooses_torch():
    from ingest.settings import EmbeddingSettings

    assert EmbeddingSettings().runtime == "onnx"
    assert EmbeddingSettings.model_validate({"onnx_queries": "false"}).runtime == "torch"
    assert EmbeddingSettings.model_validate({"onnx_queries": True}).runtime == "onnx"


@pytest.mark.slow
def test_many_batches_at_once_give_each_texts_own_vector(real_embedder):
    """Ingest's batches run one per core at once; each text gets the vector it gets alone."""
    assert real_embedder.encoder is not None
    texts = [p for p in MEMO.read_text().split("\n\n") if len(p.strip()) > 40][:40]
    together = np.asarray(real_embedder.embed_texts(texts))
    alone = np.asarray([real_embedder.encoder([t])[0] for t in texts])
    assert together.shape == (len(texts), real_embedder.dim)
    assert np.min(np.sum(together * alone, axis=1)) > 1 - 1e-5
