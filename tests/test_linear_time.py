"""Hostile text: every pattern run over article or question text takes time linear in its length.

A pattern that backtracks quadratically took 3 s on 16,000 dots and would hold a request (and the
interpreter) for hours on a pasted 2,000,000-character article; these inputs finish in about a
second. The bound is generous, not a benchmark: a quadratic path takes minutes on them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

import pytest

from assistant import conversation, cues, dates, generate
from assistant.articles import article_from_text, clean_text, clean_title
from assistant.assistant import standalone_query
from assistant.chunking import chunk_article, sentence_spans

SIZE = 1_000_000
BOUND_SECONDS = 5.0
# Runs that made one pattern or another rescan the rest of the run from each of its characters.
RUNS = [
    ".",
    "!?",
    "?!\"')]",
    "…",
    " ",
    "\n",
    " \n",
    "x\n\n",
    "1,",
    "Abc ",
    "Mr. ",
    "A. ",
    "Credit: x",
    "“",
    "[S1 ",
    "on ",
]


def hostile_text() -> str:
    """SIZE characters: an equal share of each run, one after the other."""
    share = SIZE // len(RUNS)
    text = "".join((unit * (share // len(unit) + 1))[:share] for unit in RUNS)
    return text + "." * (SIZE - len(text))


AS_OF = date(2024, 5, 1)
PATHS: dict[str, Callable[[str], object]] = {
    "sentence splitting": sentence_spans,
    "chunking": lambda t: chunk_article("hostile", t),
    "text cleaning": clean_text,
    "title cleaning": clean_title,
    "pasted article": article_from_text,
    "periods a question names": lambda t: dates.question_period(t, AS_OF),
    "recent questions": lambda t: dates.recent_period(t, AS_OF),
    "answer-type cues": lambda t: (cues.new_candidates(t, t), cues.facts(t)),
    "unstated names": lambda t: cues.unmatched_names(t, [t]),
    "follow-up questions": lambda t: standalone_query(t, ["What did Joe Biden say?", t]),
    "written answers": generate.parse_draft,
    "markdown escaping": conversation.md_escape,
}


@pytest.fixture(scope="module")
def text() -> str:
    return hostile_text()


@pytest.mark.parametrize("path", PATHS)
def test_a_million_characters_of_punctuation_runs_finish_in_seconds(text: str, path: str) -> None:
    assert len(text) == SIZE
    started = time.perf_counter()
    PATHS[path](text)
    elapsed = time.perf_counter() - started
    assert elapsed < BOUND_SECONDS, f"{path}: {elapsed:.1f} s on {SIZE:,} characters"


# Each was quadratic on one run: 16,000 dots took 3 s to split, 64,000 characters of "!?" 48 s.
ONE_RUN = [
    ("chunking", "."),
    ("chunking", "!?"),
    ("chunking", "?!\"')]"),
    ("title cleaning", "Credit: x"),
    ("written answers", "\n"),
    ("written answers", " \n"),
]


@pytest.mark.parametrize(("path", "unit"), ONE_RUN)
def test_a_million_characters_of_one_run_finish_in_seconds(path: str, unit: str) -> None:
    text = (unit * (SIZE // len(unit) + 1))[:SIZE] + "\nx"  # a newline after: a title's credit
    started = time.perf_counter()
    PATHS[path](text)
    elapsed = time.perf_counter() - started
    assert elapsed < BOUND_SECONDS, f"{path}, {unit!r}: {elapsed:.1f} s on {SIZE:,} characters"


def test_chunks_of_a_punctuation_run_are_the_text_at_their_offsets() -> None:
    text = "?!\"')] " * 100 + "\n" + "." * 5000 + " Next. Last!?"
    chunks = chunk_article("run", text, max_chars=800, overlap_sentences=0)
    assert chunks and all(text[c.start : c.end] == c.text for c in chunks)
    assert "".join("".join(c.text for c in chunks).split()) == "".join(text.split())
