"""Answer-type cues: what kind of thing a question asks for, and whether a sentence offers one."""

from __future__ import annotations

import re

# "How many…", "how old…": the words after which a "how" asks for a quantity, not a manner.
_QUANTITY = "many|much|old|long|far|tall|high|big|large"
# Questions whose answer is a quantity, a year or a date: a number answers them, not a name.
_NUMBER_QUESTION = re.compile(
    rf"\bhow ({_QUANTITY})\b"
    r"|\b(what|which) (year|percentage|percent|age|number|price|fee|amount|share|proportion"
    r"|temperature|date|day|month|score|sum|figure|rate)\b",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"[^\W\d_][\w'’&.-]*|\d[\d,.]*%?")
_NUMBER_WORD = re.compile(
    r"\d|^(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|hundred"
    r"|thousand|million|billion|trillion)$",
    re.IGNORECASE,
)


# ", and who pays?": a second question joined to the first.
_SECOND_PART = re.compile(
    r",?\s+and\s+(?=(?:who|whom|whose|what|when|where|why|how|which)\b)", re.IGNORECASE
)


def question_parts(question: str) -> tuple[str, str] | None:
    """The two questions of a two-part one ("What does it cost, and who pays?"), else None."""
    found = _SECOND_PART.search(question)
    if found is None or found.start() == 0:
        return None
    first, second = question[: found.start()].strip(), question[found.end() :].strip()
    return (first, second) if len(second.split()) >= 2 else None


# Questions answered by a yes or no, a reason, a manner or an action rather than by a name, a
# place, a time or a number: "Is he…?", "Why…?", "How did…?", "What did Putin ask Musk not to
# do?". (A quiz's "…the president said it was what?" is left to the pointer, which found
# the phrase on dev.)
_NOT_A_NAME = re.compile(
    r"^\W*(?:is|are|was|were|do|does|did|has|have|had|can|could|will|would|should|may|might)\b"
    r"|\bwhy\b"
    rf"|\bhow\b(?!\s+(?:{_QUANTITY})\b)"
    r"|\bwhat\s+(?:did|does|do|will|would|has|have|had|can|could|should)\b",
    re.IGNORECASE,
)


def asks_for_a_name(question: str) -> bool:
    """True for a question answered by a name, a place, a time or a number ("Which…?",
    "Who…?", "How many…?", "What is the…?"), not by yes or no, a reason or an action."""
    return _NOT_A_NAME.search(question) is None


def wants_number(question: str) -> bool:
    """True for a question answered by a number ("how many", "what year", "what percentage")."""
    return _NUMBER_QUESTION.search(question) is not None


def _key(token: str) -> str:
    return token.casefold().strip(".,'’")


def new_candidates(question: str, sentence: str) -> set[str]:
    """The answers of the expected type the sentence offers that the question does not name.

    A number for a quantity question, otherwise a capitalised word (a name of a person, place,
    group or work), since who, what and where questions are mostly answered by names. A
    sentence that only restates the question's own words offers none, however similar it is
    to the question.
    """
    asked = {_key(t) for t in _TOKEN.findall(question)}
    tokens = _TOKEN.findall(sentence)
    if wants_number(question):
        found = {t for t in tokens if _NUMBER_WORD.search(t)}
    else:
        # The first word is capitalised because it starts the sentence, not because it is a name.
        found = {t for t in tokens[1:] if t[0].isupper() and len(t) > 1}
    return {t for t in found if _key(t) not in asked}


def facts(sentence: str) -> set[str]:
    """The numbers and names a sentence states (its first word aside, capitalised anyway)."""
    tokens = _TOKEN.findall(sentence)
    return {_key(t) for i, t in enumerate(tokens) if t[0].isdigit() or (i > 0 and t[0].isupper())}


# Between two words, a sentence ends ("… in 1980. What") or a quotation opens: the next word is
# capitalised whether or not it is a name.
_SENTENCE_BREAK = re.compile(r"[.?!:;\"“‘(]")
# Capitalised, but they name no subject a story is about ("announced Thursday").
_NOT_NAMES = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}


def _bare(token: str) -> str:
    """The word without its trailing punctuation or possessive: "Trump's" is "Trump"."""
    return re.sub(r"['’]s$", "", token.strip(".,'’%"), flags=re.IGNORECASE)


def _name_key(token: str) -> str:
    """One key for "Trump's" and "trump", for "U.S." and "US"."""
    return _bare(token).casefold().replace(".", "")


def unmatched_names(question: str, texts: list[str]) -> list[str]:
    """The names and numbers the question states that none of the texts does, as the question
    words them.

    A name is a capitalised word that does not start a sentence (in a question typed in
    capitals, only numbers count). A hyphenated one ("Li-Ning") counts as stated when each of
    its parts is.
    """
    shouted = question == question.upper()
    asked: dict[str, str] = {}  # key: the question's wording
    end = 0  # of the previous word
    for m in _TOKEN.finditer(question):
        token = m.group()
        starts = end == 0 or bool(_SENTENCE_BREAK.search(question, end, m.start()))
        starts = starts or question[end - 1] == "."  # "1980." keeps its full stop
        if token[0].isdigit() or (
            token[0].isupper() and len(token) > 1 and not starts and not shouted
        ):
            asked.setdefault(_name_key(token), _bare(token))
        end = m.end()
    stated: set[str] = set()
    for text in texts:
        for token in _TOKEN.findall(text):
            key = _name_key(token)
            stated.add(key)
            stated.update(key.split("-"))
    return [
        word
        for k, word in asked.items()
        if k and k not in _NOT_NAMES and not set(k.split("-")) <= stated
    ]
