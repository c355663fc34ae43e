"""Questions that arrive together are embedded in one pass, each getting the
vector it would get alone."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from fakes import fake_embedder

from ingest.embed import onnx_queries


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
def test_the_packaged_model_embeds_a_question_alone_and_in_a_pass_alike(real_embedder):
    assert real_embedder.batches_queries
    questions = ["When did Peace Mission 2021 take place?", "Who chairs the SCO?", "Why?"]
    together = real_embedder.model.get_text_embedding_batch(questions)
    for q, vector in zip(questions, together, strict=True):
        single = real_embedder.model.get_query_embedding(q)
        assert float(np.dot(single, vector)) > 1 - 1e-5


@pytest.mark.slow
def test_the_onnx_export_gives_the_packaged_models_vectors(real_embedder, tmp_path):
    fast = onnx_queries(real_embedder, tmp_path)
    assert fast is not None
    assert [p.suffix for p in tmp_path.iterdir()] == [".onnx"]  # no partial file left
    questions = [
        "How many military personnel took part in Peace Mission 2021?",
        "Which country became the tenth full member of the SCO, and when?",
        "RATS",
        "What did the memo say about the SCO's development bank " * 40,  # past the token cap
    ]
    ours = np.asarray(fast(questions))
    theirs = np.asarray(real_embedder.model.get_text_embedding_batch(questions))
    assert np.min(np.sum(ours * theirs, axis=1)) > 1 - 1e-3
    # A second start reuses the export.
    written = next(tmp_path.iterdir()).stat().st_mtime_ns
    assert onnx_queries(real_embedder, tmp_path) is not None
    assert next(tmp_path.iterdir()).stat().st_mtime_ns == written


def test_questions_go_through_the_faster_runtime_when_one_is_set():
    embedder = fake_embedder()
    embedder.batches_queries = True
    asked: list[list[str]] = []

    def runtime(texts: list[str]) -> list[list[float]]:
        asked.append(texts)
        return embedder.model.get_text_embedding_batch(texts)

    embedder.queries = runtime
    expected = fake_embedder().embed_query("a question")
    assert np.allclose(embedder.embed_query("a question"), expected)
    assert asked == [["a question"]]


def test_a_model_of_another_shape_keeps_its_questions_on_torch(tmp_path):
    embedder = fake_embedder()  # not a sentence-transformers model
    assert onnx_queries(embedder, tmp_path) is None
    assert not list(tmp_path.iterdir())
