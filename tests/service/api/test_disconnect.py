"""A client that disconnects mid-stream stops the generation (real HTTP)."""

import time

import httpx
from fakes import ScriptedChat
from support import ServerThread

from ingest.pipeline import run_ingest
from service.answer.write import LLMGenerator
from service.api.app import create_app
from service.engine import build_engine

SENTENCE = (
    "Eight SCO members contributed approximately 4,000 military personnel to "
    "Peace Mission 2021. [1]"
)


def test_disconnecting_stops_the_model(settings, hash_embedder):
    run_ingest(settings, embedder=hash_embedder)
    chat = ScriptedChat([" ".join([SENTENCE] * 60)], token_delay=0.01)

    def factory(s):
        engine = build_engine(s, embedder=hash_embedder)
        engine.generator = LLMGenerator(chat, engine.retriever, engine.generator, max_tokens=5000)
        return engine

    total = len(" ".join([SENTENCE] * 60).split(" "))
    with ServerThread(create_app(settings, engine_factory=factory)) as server:
        with httpx.Client(timeout=30) as client:
            with client.stream(
                "POST",
                server.url + "/v1/ask",
                json={
                    "question": "How many military personnel took part in Peace Mission 2021?",
                    "stream": True,
                },
            ) as response:
                for line in response.iter_lines():
                    if line.startswith("event: token"):
                        break  # the first verified sentence arrived; hang up
        time.sleep(1.0)
        sent = chat.tokens_sent
        time.sleep(0.5)
        assert chat.tokens_sent == sent, "the model kept generating after the client left"
        assert sent < total / 2
