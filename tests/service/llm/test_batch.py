"""Judgements decoded together give the replies they give one at a time, and a
verdict that reuses the previous verdict's prompt gives the verdict read afresh.

Greedy decoding is not bit-identical across batch shapes on every CPU's kernels
(the same JSON can come out with other whitespace, a close token can flip), so
these compare what must hold everywhere: valid JSON of the schema, the same
verdict, statements drawn from their own passage, probabilities within rounding.
"""

import json
import re

import pytest

from service.answer.prompt import ANSWERS_PROMPT
from service.llm.batch import BatchedChat, ChatRequest
from service.llm.local import LocalLLM
from service.settings import get_settings

pytestmark = pytest.mark.slow

SCHEMA = {
    "type": "object",
    "properties": {
        "statements": {
            "type": "array",
            "minItems": 1,
            "maxItems": 4,
            "items": {"type": "string", "maxLength": 60},
        },
        "verdict": {"type": "integer"},
    },
    "required": ["statements", "verdict"],
}
INSTRUCTIONS = (
    "Break the passage into short statements, then give verdict 1 if the passage "
    "names a date and 0 if it does not. Reply in JSON.\n\nPassage: "
)
PASSAGES = [
    "The SCO opened its Regional Antiterrorism Structure in Tashkent in June 2004.",
    "Russia blocked China's proposal for an SCO development bank.",
    "Eight members sent about 4,000 troops to Peace Mission 2021.",
    "India and Pakistan joined the SCO as full members in 2017.",
    "Iran became a member in 2023.",
]


@pytest.fixture(scope="module")
def llm():
    settings = get_settings()
    model = LocalLLM(settings.llm.model_path, n_ctx=2048, threads=settings.llm.threads)
    yield model
    model.close()


def one_at_a_time(llm, messages, max_tokens):
    reply = llm.chat(messages, schema=SCHEMA, max_tokens=max_tokens, repeat_penalty=1.1)
    choice = reply["choices"][0]
    return choice["message"]["content"], choice["finish_reason"]


def _words(text):
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _closest_passage(statements):
    """The passage whose words the statements share most."""
    said = _words(" ".join(statements))
    return max(range(len(PASSAGES)), key=lambda i: len(said & _words(PASSAGES[i])))


def _valid(text):
    data = json.loads(text)
    assert set(data) == {"statements", "verdict"} and isinstance(data["verdict"], int)
    assert 1 <= len(data["statements"]) <= 4
    assert all(isinstance(s, str) and len(s) <= 60 for s in data["statements"])
    return data


def test_a_batch_gives_the_replies_of_single_calls(llm):
    batched = BatchedChat(llm, max_sequences=3, n_ctx_per_sequence=2048)
    try:
        requests = [
            ChatRequest([{"role": "user", "content": INSTRUCTIONS + p}], SCHEMA, 120, 1.1)
            for p in PASSAGES
        ]
        requests.append(ChatRequest(requests[0].messages, SCHEMA, 5, 1.1))  # cut short
        # Two batches of 3: the second reuses the first's shared prefix.
        replies = batched.complete(requests)
        assert [r.finish_reason for r in replies] == ["stop"] * 5 + ["length"]
        for number, (request, reply) in enumerate(zip(requests[:5], replies, strict=False)):
            text, finish = one_at_a_time(llm, request.messages, request.max_tokens)
            assert finish == reply.finish_reason == "stop"
            together, alone = _valid(reply.text), _valid(text)
            assert together["verdict"] == alone["verdict"], (reply.text, text)
            # Each sequence wrote about its own passage, not a neighbour's.
            assert _closest_passage(together["statements"]) == number, reply.text
        _, cut_finish = one_at_a_time(llm, requests[5].messages, 5)
        assert cut_finish == "length" and replies[5].text.lstrip().startswith("{")
        assert 0 < len(replies[5].text) < len(replies[0].text)
    finally:
        batched.close()


def test_a_verdict_after_the_same_question_matches_one_read_afresh(llm):
    system = ANSWERS_PROMPT
    lead = "Question: When did the RATS open? (asks for a date)\nSentences:"
    first = llm.yes_probability(system, f" {PASSAGES[1]}\nAnswer:", lead=lead)
    reused = llm.yes_probability(system, f" {PASSAGES[0]}\nAnswer:", lead=lead)
    llm.llama.reset()  # nothing cached: the instructions and the question read anew
    llm._prefixes.clear()
    fresh = llm.yes_probability(system, f" {PASSAGES[0]}\nAnswer:", lead=lead)
    assert reused == pytest.approx(fresh, abs=0.01)
    assert first < fresh
    # Another question between them changes nothing either.
    llm.yes_probability(system, " Iran.\nAnswer:", lead="Question: Who joined in 2023?")
    assert llm.yes_probability(system, f" {PASSAGES[0]}\nAnswer:", lead=lead) == pytest.approx(
        fresh, abs=0.01
    )
