"""Questions that arrive together are embedded in one pass, each getting the
vector it would get alone."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from fakes import fake_embedder


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
