from service.text import Tokenizer, entities, mentions, numbers_in, plain_number


def test_tokenizer_normalises_numbers_and_stems():
    tokens = Tokenizer()("How many troops: 4,000 blocked Russia's plans?")
    assert "4000" in tokens and "block" in tokens and "russia" in tokens
    assert "how" not in tokens


def test_entities_and_mentions():
    assert entities("What is the population of Kyrgyzstan?") == ["Kyrgyzstan"]
    assert entities("How many troops joined Peace Mission 2021?") == ["Peace", "Mission", "2021"]
    acronyms = {"SCO": "Shanghai Cooperation Organization"}
    assert mentions("SCO", "the Shanghai Cooperation Organization said", acronyms)
    assert mentions("Russia", "the PRC blocked Russian efforts", acronyms)
    assert not mentions("India", "this indicates nothing", acronyms)
    assert mentions("4000", "approximately 4,000 personnel", acronyms)


def test_numbers_have_one_written_form():
    assert plain_number("4,000") == "4000"
    assert plain_number("2025.") == "2025"
    assert numbers_in("a dozen states sent 4,000 troops and three observers in 2021.") == {
        "12",
        "4000",
        "3",
        "2021",
    }
