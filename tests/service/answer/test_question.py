"""Reading what a question asks: its parts, the kind of answer each wants, its
names and qualifiers."""

import pytest

from service.answer.question import analyse_question, answer_kind, names_in, qualifiers_of


def parts(question: str) -> list[str]:
    return [p.display for p in analyse_question(question).parts]


def test_a_plain_question_is_one_part():
    plan = analyse_question("When did the RATS officially open?")
    assert [p.text for p in plan.parts] == ["When did the RATS officially open?"]
    assert plan.parts[0].asks == "date" and not plan.multi


def test_two_questions_joined_by_and_are_two_parts():
    assert parts(
        "Which country moved from observer to full member in 2023, and what trade arrangement does"
        " it have with the EAEU?"
    ) == [
        "Which country moved from observer to full member in 2023?",
        "What trade arrangement does it have with the EAEU?",
    ]


def test_a_trailing_question_word_borrows_the_clause():
    plan = analyse_question("Who proposed the energy club and why?")
    assert [p.asks for p in plan.parts] == ["name", "reason"]
    assert plan.parts[1].display == "Why (proposed the energy club)?"


def test_question_words_sharing_one_clause():
    assert parts("When and at which summit did the SCO adopt its charter?") == [
        "When did the SCO adopt its charter?",
        "At which summit did the SCO adopt its charter?",
    ]
    assert parts("Where and when did Russia host the first forum?") == [
        "Where did Russia host the first forum?",
        "When did Russia host the first forum?",
    ]


def test_three_parts_and_a_fragment():
    plan = analyse_question(
        "Which country became the tenth full member, during whose presidency, and what does its"
        " accession mean?"
    )
    assert len(plan.parts) == 3
    assert plan.parts[1].display == "During whose presidency (became the tenth full member)?"
    assert plan.parts[2].refers_back


def test_a_lead_in_statement_is_context_and_an_assumption():
    plan = analyse_question(
        "China is still trying to set up a development bank. What has stood in the way of such"
        " proposals?"
    )
    assert len(plan.parts) == 1 and plan.context.startswith("China is still trying")
    assert "China is still trying to set up a development bank." in plan.assumptions


def test_why_questions_carry_their_assumption():
    plan = analyse_question("Why did Beijing use the unanimity rule to block the energy club?")
    assert plan.assumptions == ["Beijing did use the unanimity rule to block the energy club"]


def test_a_lead_in_phrase_is_not_a_part():
    plan = analyse_question(
        "According to the 2023 concept, on which organizations should the partnership be based?"
    )
    assert len(plan.parts) == 1 and plan.parts[0].text.startswith("On which organizations")


def test_and_inside_one_question_does_not_split():
    assert len(analyse_question("How did relations between Russia and China change?").parts) == 1
    assert (
        len(analyse_question("How many events and documents did the presidency produce?").parts)
        == 1
    )


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many troops took part?", "quantity"),
        ("What share of trade used national currencies?", "quantity"),
        ("How long did the drill last?", "duration"),
        ("How long after the convention did the RATS open?", "date"),
        ("In what year did the summits start?", "date"),
        ("Since when has the SCO stopped the drills?", "date"),
        ("Where is the RATS based?", "place"),
        ("In which city is the headquarters?", "place"),
        ("Where was the plan for the strategy reported?", "other"),
        ("Where did the journalist publish that assessment?", "other"),
        ("Where does the quotation come from?", "other"),
        ("Where was the summit held?", "place"),
        ("Who wrote the memo?", "name"),
        ("Which country became the tenth member?", "name"),
        ("Why did Russia block the bank?", "reason"),
        ("Does the SCO have a payment system?", "yesno"),
        ("What are Moscow's objectives?", "list"),
        ("What does Article IV say?", "other"),
    ],
)
def test_answer_kinds(question, kind):
    assert answer_kind(question) == kind


def test_qualifiers():
    names = lambda q: [x.name for x in qualifiers_of(q)]  # noqa: E731
    assert names("What was bilateral China–Russia trade?") == ["bilateral"]
    assert names("On what date does the summit open?") == ["exact"]
    assert names("Which countries are full members?") == ["full member"]
    assert names("Which countries are observers?") == ["observer"]
    assert names("When was the first forum held?") == ["first"]
    assert names("How much did China trade with SCO countries?") == []


def test_names_leave_out_words_that_only_open_a_sentence():
    assert names_in("Besides China, which countries opposed it?") == ("China",)
    assert names_in("What does the PLA-run forum include?") == ("PLA",)
    assert names_in("Where was Interaction-2024 held?") == ("Interaction-2024",)


@pytest.mark.parametrize(
    ("question", "wanted", "not_wanted"),
    [
        # An adverb or a conjunction that opens a sentence is not a name.
        (
            "Shortly after the conflict started, how many dry bulk carriers left Ukrainian ports?",
            {"Ukrainian"},
            {"Shortly"},
        ),
        ("Under the final rule, what limit applies to G-SIBs?", {"G-SIBs"}, {"Under", "SIBs"}),
        # A name of several words stays one name.
        (
            "How much did Congress appropriate to the International Trade Administration?",
            {"Congress", "International Trade Administration"},
            {"International"},
        ),
        ("What did U.S. officials say?", {"U.S."}, {"U"}),
        ("When did Live Nation and Ticketmaster merge?", {"Live Nation", "Ticketmaster"}, set()),
    ],
)
def test_names_come_from_the_english_pipeline(question, wanted, not_wanted):
    found = set(names_in(question))
    assert wanted <= found, found
    assert not (not_wanted & found), found


def test_a_bilateral_qualifier_is_read_from_any_pair_of_names():
    assert [q.name for q in qualifiers_of("What was Brazil–Argentina trade in 2020?")] == [
        "bilateral"
    ]
    assert [q.name for q in qualifiers_of("What is trade between Chile and Peru?")] == ["bilateral"]
    assert qualifiers_of("What was Brazil's trade in 2020?") == ()
