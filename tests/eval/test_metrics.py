"""Metrics that need no judge, the ALCE citation metrics with a deterministic
judge, and the schema handling that keeps the local judge's JSON valid."""

import asyncio

from ragas.dataset_schema import SingleTurnSample

from eval.judge import bounded, schema_of
from eval.metrics.citations import alce_metrics
from eval.metrics.scores import contains, key_facts_present, retrieval_scores, statements
from eval.metrics.support import support_prompt


def test_spans_match_across_formatting():
    assert contains(
        "Eight members sent approximately 4,000 personnel.² More.", "approximately 4000 personnel"
    )
    assert contains("the organization’s charter", "the organization's charter")
    assert contains(
        "- Promote non-Western international institutions\n- Next",
        "Promote non-Western international institutions",
    )
    assert not contains("approximately 5,000 personnel", "approximately 4,000 personnel")


def test_retrieval_scores():
    passages = ["nothing here", "also nothing", "the RATS opened in June 2004", "June 2004 again"]
    scores = retrieval_scores(passages, ["opened in June 2004", "not anywhere"])
    assert scores["hit@1"] == 0.0 and scores["hit@3"] == 1.0 and scores["hit@10"] == 1.0
    assert scores["mrr@10"] == 1 / 3
    assert scores["evidence_recall@5"] == 0.5


def test_key_facts_and_statements():
    answer = "About 4,000 troops joined. [1] The drill was in Orenburg. [2][1]"
    assert key_facts_present(answer, ["4000", "Orenburg", "Donguz"]) == 2 / 3
    assert statements(answer) == [
        ("About 4,000 troops joined.", [1]),
        ("The drill was in Orenburg.", [2, 1]),
    ]
    assert statements("Goals:\n- a\n- b [1]") == [("Goals:\n- a\n- b", [1])]


def test_schema_is_read_from_a_ragas_prompt_and_bounded():
    prompt = support_prompt()
    text = prompt.to_string(prompt.input_model(premise="p", statement="s"))
    schema = schema_of(text)
    assert schema["required"] == ["verdict"]
    nested = bounded(
        {"type": "object", "properties": {"xs": {"type": "array", "items": {"type": "string"}}}}
    )
    assert (
        nested["properties"]["xs"]["minItems"] == 1 and nested["properties"]["xs"]["maxItems"] == 10
    )


def test_bounded_caps_the_judges_reasons_and_echoes_but_not_what_it_is_judging():
    verdict = {
        "type": "object",
        "properties": {
            "statement": {"type": "string"},
            "reason": {"type": "string"},
            "verdict": {"type": "integer"},
        },
    }
    schema = {
        "$defs": {"Verdict": verdict},
        "type": "object",
        "properties": {
            "statements": {"type": "array", "items": {"type": "string"}},
            "answers": {"type": "array", "items": {"$ref": "#/$defs/Verdict"}},
        },
    }
    out = bounded(schema, limits={"reason": 80, "statement": 60})
    capped = out["$defs"]["Verdict"]["properties"]
    assert capped["reason"]["maxLength"] == 80 and capped["statement"]["maxLength"] == 60
    assert "maxLength" not in capped["verdict"]
    # The statements a judge extracts from an answer are what it then judges: never cut.
    assert "maxLength" not in out["properties"]["statements"]["items"]
    assert "maxLength" not in schema["$defs"]["Verdict"]["properties"]["reason"]  # input untouched


class WordJudge:
    """Supported when every word of the statement occurs in the premise."""

    def __init__(self):
        from eval.judge import ragas_llm

        self.llm = ragas_llm(self)
        self.identity = "words"
        self.calls = 0

    def complete(self, messages, schema=None):
        import json
        import re

        self.calls += 1
        text = messages[0]["content"]
        data = json.loads(text[text.rindex("input: ") + 7 : text.rindex("Output:")])
        words = set(re.findall(r"\w+", data["statement"].lower()))
        return json.dumps(
            {"verdict": int(words <= set(re.findall(r"\w+", data["premise"].lower())))}
        )


def test_alce_citation_recall_and_precision():
    judge = WordJudge()
    recall, precision = alce_metrics()
    recall.llm = precision.llm = judge.llm
    sample = SingleTurnSample(
        user_input="q",
        response="Troops joined the drill. [1][2] Nobody cited this claim. The sky is green. [3]",
        retrieved_contexts=[
            "troops joined the drill in 2021",
            "unrelated text about trade",
            "the sky is blue",
        ],
    )
    # Statement 1 supported by its citations; 2 has none; 3 is not supported.
    assert asyncio.run(recall.single_turn_ascore(sample)) == 1 / 3
    # Citation [2] is irrelevant (does not support alone, [1] suffices); [3] earns nothing.
    assert asyncio.run(precision.single_turn_ascore(sample)) == 1 / 3


def test_per_kind_table_counts_questions():
    from eval.retrieval import StageResult, per_kind

    scores = {"hit@1": 1.0, "hit@5": 1.0, "mrr@10": 1.0, "evidence_recall@10": 0.5}
    result = StageResult(
        "default", {"all": {"n": 3, **scores}, "fact": {"n": 3, **scores}}, 1.0, 2.0
    )
    table = per_kind(result)
    assert (
        "| kind | n | hit@1 |" in table
        and "| fact | 3 | 1.000 |" in table
        and "| all |" not in table
    )
