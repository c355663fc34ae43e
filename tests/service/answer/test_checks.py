"""The rules code checks before an answer is shown: a sentence about a
neighbouring fact is not an answer."""

from service.answer.checks import counted_noun, kind_present, names_something, unmet
from service.answer.question import analyse_question
from service.text import numbers_in

ACRONYMS = {"PRC": "People's Republic of China", "SCO": "Shanghai Cooperation Organization"}


def part(question: str):
    return analyse_question(question).parts[0]


def lexical_similarity(phrase: str, others: list[str]) -> list[float]:
    """A stand-in for the embedding model: shared words."""
    words = set(phrase.lower().split())
    return [len(words & set(o.lower().split())) / max(len(words), 1) for o in others]


def test_numbers_in_any_written_form():
    assert numbers_in("approximately 4,000 military personnel") == {"4000"}
    assert numbers_in("Three countries sent delegations") == {"3"}
    assert numbers_in("more than a dozen dialogue partners") == {"12"}
    assert numbers_in("twenty-five members and $890 billion") == {"25", "890"}
    assert "3" not in numbers_in("Three", words=False)


def test_capitals_and_abbreviations_name_their_countries():
    assert names_something("Beijing", "the PRC blocked Russian efforts", ACRONYMS)
    assert names_something("China", "the PRC blocked Russian efforts", ACRONYMS)
    assert names_something("Moscow", "the Russian government", ACRONYMS)
    assert not names_something("Kazakhstan", "the Russian government", ACRONYMS)


def test_an_aggregate_figure_is_not_a_bilateral_one():
    p = part("What was the value of bilateral China–Russia trade in 2024?")
    aggregate = (
        "The PRC's aggregate trade with all SCO member states reached a record $890 billion "
        "in 2024."
    )
    assert unmet(p, [aggregate], "", ACRONYMS) is not None
    bilateral = "Bilateral trade between Russia and China reached $240 billion in 2024."
    assert unmet(p, [bilateral], "", ACRONYMS) is None


def test_a_rough_period_is_not_an_exact_date():
    p = part("On what date does the Tianjin summit open?")
    assert unmet(
        p, ["The PRC will host the summit in the summer or early autumn in Tianjin."], "", ACRONYMS
    )
    assert unmet(p, ["The summit opens on August 31, 2025, in Tianjin."], "", ACRONYMS) is None


def test_a_count_must_count_what_was_asked():
    p = part("How many heads of state attended the 2024 Astana summit?")
    assert counted_noun(p) == "heads of state"
    members = "Due to the 2024 Astana summit's decision, the organization now has 10 full members."
    assert not kind_present(p, members, lexical_similarity)
    assert kind_present(p, "At the 2024 Astana summit, 12 heads of state met.", lexical_similarity)


def test_a_how_many_question_needs_a_number_it_did_not_state():
    p = part("How many countries sent delegations to the first forum in 2025?")
    assert (
        unmet(p, ["In April 2025, Russia hosted the first forum in Omsk Oblast."], "", {})
        is not None
    )
    assert (
        unmet(p, ["Three countries sent delegations to the first forum in 2025."], "", {}) is None
    )


def test_where_needs_a_place_and_how_long_a_duration():
    where = part("Where is the new investors association headquartered?")
    assert not kind_present(where, "The summit also launched a new investors association.")
    assert kind_present(where, "The new investors association is based in Astana.")
    long = part("How long did the drill last?")
    assert not kind_present(long, "The drill marks the first time all members took part.")
    assert kind_present(long, "The one-day drill was held in September 2023.")


def test_names_the_question_asks_about_must_be_there():
    p = part("When did Kyrgyzstan join the investors association?")
    reason = unmet(p, ["The association was launched in July 2024."], "", {})
    assert reason is not None and "Kyrgyzstan" in reason
    # ...unless only the kind and qualifiers are checked (names may be in another sentence)
    assert unmet(p, ["The association was launched in July 2024."], "", {}, names=False) is None


def test_full_membership_is_not_dialogue_partnership():
    p = part("When did Turkey become a full member?")
    partner = "New dialogue partners include Turkey, which joined in 2022."
    assert unmet(p, [partner], "", {}) is not None


def test_a_measure_must_be_what_the_number_measures():
    p = part("What is the population of Kyrgyzstan?")
    assert counted_noun(p) == "population"
    four = (
        "China and the four newly independent countries (Kazakhstan, Kyrgyzstan, Tajikistan, "
        "and Russia)."
    )
    assert not kind_present(p, four, lexical_similarity)
    assert kind_present(p, "Kyrgyzstan has a population of 7 million.", lexical_similarity)


def test_any_country_is_named_by_its_people_capital_or_short_forms():
    # Countries the memo is not about: the general rule is tested, not a list of its words.
    assert names_something("American", "U.S. officials said", {})
    assert names_something("Brazil", "Brasília announced", {})
    assert names_something("Brazilian", "Brazil's exports", {})
    assert names_something("Korea", "the Republic of Korea", {})
    assert names_something("UK", "the United Kingdom", {})
    assert not names_something("Brazil", "Argentina announced", {})
    assert not names_something("American", "Canadian officials said", {})


def test_a_name_of_several_words_is_named_by_its_words_its_initials_or_its_abbreviation():
    name = "International Trade Administration"
    assert names_something(name, "Congress funded ITA", {})
    assert names_something(name, "the administration's international trade work", {})
    assert names_something("Education Department", "the Department of Education", {})
    assert names_something(name, "the agency (ITA) said", {"ITA": name})
    assert not names_something(name, "the International Monetary Fund", {})


def test_what_a_what_is_question_asks_the_value_of_must_be_spoken_of(real_embedder):
    from service.engine import phrase_similarity

    similar = phrase_similarity(real_embedder)
    part = analyse_question("What is the council's annual budget?").parts[0]
    assert part.concepts == ("annual budget",)
    # Spoken of in other words.
    assert unmet(part, ["Its yearly funding is 40 million euros."], "", {}, similar=similar) is None
    # Only a neighbouring thing: annual meetings.
    why = unmet(part, ["The council holds annual summits of its members."], "", {}, similar=similar)
    assert why == "they do not speak of annual budget"
    # "The share of X" asks about X; a how-question asks about no one phrase.
    share = analyse_question("What is Chile's share of the bloc's combined output?").parts[0]
    assert share.concepts == ("combined output",)
    assert analyse_question("How did the minister describe the talks?").parts[0].concepts == ()
