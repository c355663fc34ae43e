"""The openai generator against a small OpenAI-compatible server on loopback."""

from support import OpenAICompatibleServer

from ingest.pipeline import run_ingest
from service.engine import build_engine

ANSWER = (
    "Eight SCO members contributed approximately 4,000 military personnel to "
    "Peace Mission 2021. [1]"
)


def test_openai_generator_answers_through_an_endpoint(settings, hash_embedder):
    run_ingest(settings, embedder=hash_embedder)
    with OpenAICompatibleServer(lambda messages: ANSWER) as server:
        configured = settings.model_copy(
            update={
                "answer": settings.answer.model_copy(
                    update={
                        "generator": "openai",
                        "openai_base_url": server.url,
                        "openai_model": "any-model",
                    }
                )
            }
        )
        engine = build_engine(configured, embedder=hash_embedder)
        result = engine.ask("How many military personnel took part in Peace Mission 2021?")
    assert result.answered and result.generator == "openai"
    assert "4,000" in result.answer and result.citations[0].ref == 1
    sent = server.requests[0]
    assert sent["model"] == "any-model" and sent["stream"] is True
    assert sent["messages"][0]["role"] == "system" and "Passages:" in sent["messages"][1]["content"]


def test_an_unreachable_endpoint_falls_back(settings, hash_embedder):
    run_ingest(settings, embedder=hash_embedder)
    configured = settings.model_copy(
        update={
            "answer": settings.answer.model_copy(
                update={
                    "generator": "openai",
                    "openai_base_url": "http://127.0.0.1:9/v1",
                    "openai_model": "m",
                }
            )
        }
    )
    engine = build_engine(configured, embedder=hash_embedder)
    result = engine.ask("How many military personnel took part in Peace Mission 2021?")
    assert result.answered and result.generator == "extractive"
