"""Answers checked against the question, end to end through `answer_question`
with the deterministic fakes: parts answered one by one, parts the papers do
not answer said, near misses refused, false premises corrected."""

import pytest
from fakes import KeywordVerdicts

from ingest.pipeline import run_ingest
from service.answer.answerability import AnswerCheck
from service.answer.gate import Checks
from service.answer.pipeline import answer_question
from service.answer.select import SelectGenerator
from service.engine import build_engine


@pytest.fixture
def engine(settings, hash_embedder):
    run_ingest(settings, embedder=hash_embedder)
    return build_engine(settings, embedder=hash_embedder)


def ask(engine, question, generator=None, checks=None):
    return answer_question(
        question,
        retriever=engine.retriever,
        generator=generator or engine.generator,
        top_k=5,
        checks=checks or engine.checks,
    )


def selecting(engine, table):
    model = KeywordVerdicts(table)
    checks = Checks(
        rules=True,
        model=AnswerCheck(model),
        similar=engine.checks.similar,
        premises=engine.checks.premises,
    )
    return SelectGenerator(engine.generator, AnswerCheck(model), checks), checks, model


def test_every_part_is_answered_with_its_own_citation(engine):
    result = ask(
        engine,
        "Where is the Regional Antiterrorism Structure based, and when did it officially open?",
    )
    assert result.answered and result.unanswered == []
    assert "Tashkent" in result.answer and "June 2004" in result.answer
    assert result.answer.count("[") >= 2


def test_a_part_the_papers_do_not_answer_is_named(engine):
    gen, checks, _ = selecting(engine, {"based": "Tashkent", "budget": "budget"})
    result = ask(
        engine,
        "Where is the Regional Antiterrorism Structure based, and what is its annual budget?",
        gen,
        checks,
    )
    assert result.answered and "Tashkent" in result.answer
    assert len(result.unanswered) == 1 and "budget" in result.unanswered[0]
    assert "does not answer this part" in result.answer
    assert all(f"[{c.ref}]" in result.answer for c in result.citations)


def test_a_fragment_part_reads_as_what_it_asks(engine):
    gen, checks, _ = selecting(engine, {"tenth full member?": "Belarus", "Why": "because"})
    result = ask(engine, "Which country became the SCO's tenth full member, and why?", gen, checks)
    assert result.answered and "Belarus" in result.answer
    assert result.unanswered == ["Why (became the SCO's tenth full member)?"]
    assert result.answer.endswith("The paper does not say why.")


def test_a_near_miss_is_refused_by_rule_whatever_the_model_says(engine):
    gen, checks, model = selecting(
        engine, {"trade": "trade"}
    )  # the model would accept any trade sentence
    result = ask(
        engine,
        "What was the value of bilateral trade between Russia and China in 2024?",
        gen,
        checks,
    )
    assert not result.answered and result.citations == []
    assert "bilateral" in result.reason or "mention" in result.reason


def test_the_model_verdict_refuses_a_neighbouring_fact(engine):
    gen, checks, model = selecting(engine, {"heads of state": "heads of state"})
    result = ask(
        engine, "How many people from Tajikistan attended the 2024 Astana summit?", gen, checks
    )
    assert not result.answered
    assert model.asked == [] or all("Sentences:" in a for a in model.asked)


def test_an_exact_date_is_not_a_season(engine):
    result = ask(
        engine,
        "On what exact date will the PRC host the Twenty-fifth Meeting of the Council of Heads of"
        " State in Tianjin?",
    )
    assert not result.answered and "exact" in result.reason


def test_swapped_actors_are_corrected_with_a_citation(engine):
    result = ask(engine, "Why did Beijing use the unanimity rule to block the energy club?")
    assert result.answered and result.corrections
    assert "Beijing" in result.corrections[0]
    assert result.answer.startswith("The question assumes that Beijing did use the unanimity rule")
    assert "another actor (Russia, not China)" in result.answer
    assert "unanimity rule to block PRC proposals" in result.citations[0].quote


def test_a_true_assumption_is_not_corrected(engine):
    result = ask(engine, "Why did Russia use the unanimity rule to block the energy club?")
    assert result.corrections == []


def test_a_member_status_the_papers_give_otherwise_is_corrected(engine):
    result = ask(engine, "What has Saudi Arabia brought to the SCO since joining as a full member?")
    assert result.corrections and "full member" in result.corrections[0]
    assert "dialogue partners" in result.answer


def test_the_select_generator_quotes_what_the_model_accepts(engine):
    gen, checks, model = selecting(engine, {"Peace Mission 2021": "4,000"})
    result = ask(
        engine, "How many military personnel took part in Peace Mission 2021?", gen, checks
    )
    assert result.answered and "approximately 4,000 military personnel" in result.answer
    assert result.citations[0].quote in result.citations[0].passage.text
    assert result.confidence == pytest.approx(0.9) and result.stats["completion_tokens"] >= 1
    assert all("(asks for a number)" in a for a in model.asked)


def test_a_plural_ask_is_answered_with_the_whole_list(engine):
    gen, checks, _ = selecting(engine, {"objectives regarding": "Promote non-Western"})
    result = ask(engine, "What are Moscow's objectives regarding the SCO?", gen, checks)
    assert result.answered
    assert "Promote non-Western international institutions" in result.answer
    assert "Encourage use of non-Western financial instruments" in result.answer


def test_a_year_the_paper_calls_this_year_is_met(engine):
    gen, checks, _ = selecting(engine, {"first three months of 2025": "border security"})
    result = ask(
        engine, "Which SCO meetings did China host in the first three months of 2025?", gen, checks
    )
    assert result.answered and "border security leaders" in result.answer
