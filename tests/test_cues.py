"""Answer-type cues: quotes that offer an answer of the kind asked for come first."""

from __future__ import annotations

import re

import pytest

from assistant.answer import Composer, Query
from assistant.articles import Article
from assistant.cues import (
    asks_for_a_name,
    new_candidates,
    question_parts,
    unmatched_names,
    wants_number,
)
from assistant.retrieval import Passage
from assistant.settings import Settings


def test_two_part_questions_are_split_at_the_second_question():
    assert question_parts("What do the repairs cost, and who pays?") == (
        "What do the repairs cost",
        "who pays?",
    )
    assert question_parts("Where was it built and when did it launch?") == (
        "Where was it built",
        "when did it launch?",
    )
    assert question_parts("Who won the cup and the league?") is None  # one question, two things
    assert question_parts("And who pays?") is None
    assert question_parts("What does it cost, and why?") is None  # too short to read alone


def test_quantity_questions_want_numbers():
    assert wants_number("How many tornadoes struck Mississippi?")
    assert wants_number("What percentage of the vote did the AfD receive?")
    assert not wants_number("Which city hosted the summit?")


def test_new_candidates_are_names_or_numbers_the_question_does_not_name():
    question = "Which Dutch city did Nato leaders meet in?"
    assert new_candidates(question, "Nato leaders met in The Hague on Tuesday.") == {
        "The",
        "Hague",
        "Tuesday.",
    }
    # Restating the question's own names offers nothing, and a sentence's first word is no name.
    assert new_candidates(question, "Leaders of Nato met in a Dutch city.") == set()
    assert new_candidates("How many tornadoes struck?", "Tornadoes struck 32 towns.") == {"32"}
    assert new_candidates("How many tornadoes struck?", "Tornadoes struck Texas.") == set()


def _words(texts: list[str]) -> list[dict[str, float]]:
    return [{w: 1.0 for w in re.findall(r"[a-z]+", t.lower())} for t in texts]


def test_a_sentence_offering_a_name_is_quoted_before_one_restating_the_question():
    text = (
        "The Harbor Games final was hosted by a city on the coast this year, organisers said. "
        "The Harbor Games final on the coast this year was played in Glasgow before a crowd."
    )
    article = Article("a1", "Games report", text)
    passage = Passage(
        "a1", "a1:0", text, 0, len(text), 1.0, None, None, "Games report", None, None, None
    )
    composer = Composer(
        Settings(min_confidence=0.0, max_quotes=1),
        embed=lambda texts: [[1.0, 0.0] for _ in texts],  # every sentence equally close in meaning
        term_weights=_words,
        articles=lambda ids: {"a1": article},
    )
    question = "Which city hosted the Harbor Games final on the coast this year?"
    answer = composer.compose(Query(question, question, [passage], [1.0, 0.0]))
    assert [c.quote for c in answer.citations] == [text[text.index("The Harbor Games final on") :]]
    # The restating sentence shares 10 of the question's 11 words, the other 8: its relevance
    # is the confidence, the cue only decides what is quoted.
    assert answer.confidence == pytest.approx(0.7 + 0.3 * 10 / 11)


def test_near_identical_sentences_with_different_facts_are_both_quoted():
    # The near-duplicate filter is for the same sentence twice (syndicated copies), not for
    # two members' two different budgets.
    from assistant.answer import _same_statement

    seven = "Council member number 7 proposed a plan costing 7000 dollars."
    assert _same_statement(seven, seven.replace("7000 dollars", "7000 dollars,"))
    assert not _same_statement(seven, seven.replace("7", "77"))
    assert not _same_statement(seven, seven.replace("Council member", "Council member Ames"))
    assert not _same_statement(seven, "The vote was postponed until the next session.")


@pytest.mark.parametrize(
    ("question", "named"),
    [
        ("Which university built the Kestrel-1 satellite?", True),
        ("Who did Rovers beat in the final?", True),
        ("How many people watched the Northern Cup final?", True),
        ("What is the world's top infectious killer?", True),
        ("Since when has Musk been in contact with Putin?", True),
        ("The president said it was what?", True),
        ("What did Putin ask Musk not to do?", False),
        ("Is Musk talking regularly with the Russian president?", False),
        ("Why did the ferry stop running?", False),
        ("How did the students build it?", False),
    ],
)
def test_a_question_answered_by_a_name_or_number_is_told_apart(question: str, named: bool):
    assert asks_for_a_name(question) is named


def test_unmatched_names_are_the_questions_names_and_numbers_no_text_states():
    texts = ["Lakeside Rovers beat Harwick City 5-4 on penalties.", "A crowd of 21,400 watched."]
    question = "Which keeper saved for Lakeside Rovers in the 2031 final at Wembley on Sunday?"
    # "Which" starts the question; Sunday names no subject; Lakeside and Rovers are stated.
    assert unmatched_names(question, texts) == ["2031", "Wembley"]  # as the question words them
    assert unmatched_names("Did 21,400 people watch? Which Rovers won?", texts) == []
    assert unmatched_names("What is the U.S. doing?", ["The US said no."]) == []
    assert unmatched_names("What did Trump's envoy say?", ["Trump said no."]) == []
    assert unmatched_names("Which star signed with Li-Ning?", ["Li Ning, the brand"]) == []
    assert unmatched_names("Which star signed with Li-Ning?", ["Li, the brand"]) == ["Li-Ning"]
    assert unmatched_names("Did Madrid's mayor and MADRID agree?", []) == ["Madrid", "MADRID"][:1]
    assert unmatched_names("who won?", []) == []
    assert unmatched_names("WHO WON AT WEMBLEY IN 2031?", texts) == [
        "2031"
    ]  # capitals tell nothing
