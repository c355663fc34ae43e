from service.followup import Turn, is_follow_up, standalone_question


def test_follow_ups_are_recognised():
    assert is_follow_up("And when did it officially open?")
    assert is_follow_up("What about China?")
    assert is_follow_up("Who proposed it?")
    assert not is_follow_up("When did the RATS officially open?")
    assert not is_follow_up("How many troops took part in Peace Mission 2021?")


def test_a_follow_up_carries_the_previous_topic():
    history = [
        Turn("user", "Where is the SCO's Regional Antiterrorism Structure based?"),
        Turn("assistant", "The RATS is in Tashkent. [1]"),
    ]
    resolved = standalone_question("And when did it officially open?", history)
    assert resolved.startswith("And when did it officially open?")
    assert "Regional" in resolved and "Antiterrorism" in resolved and "Tashkent" in resolved


def test_a_standalone_question_is_left_alone():
    history = [Turn("user", "Where is the RATS?"), Turn("assistant", "In Tashkent.")]
    question = "How many troops took part in Peace Mission 2021?"
    assert standalone_question(question, history) == question
    assert standalone_question("And when?", []) == "And when?"
