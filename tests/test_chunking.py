"""Sentences and chunks: exact offsets for any text, news abbreviations respected."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.chunking import SentenceCache, chunk_article, sentence_spans

WORDS = st.sampled_from(
    [
        "U.S.",
        "C.E.O.",
        "Dr.",
        "Mr. Smith",
        "said",
        "the",
        "council",
        "Jan. 5",
        "3.5%",
        "“Yes.”",
        "(AP)",
        "a.m.",
        "no",
        "J. Doe",
        "!",
        "?",
        ".",
        "\n",
        "\n\n",
        " ",
        "Vote.",
        "Ünïcode",
        "…",
        "?!",
        "!!!",
        "...",
        "?”",
        "!)",
        '."',
        "Wait...",
        "(“Why?!”)",
    ]
)
TEXTS = st.one_of(
    st.text(max_size=3000),
    st.lists(WORDS, max_size=400).map(" ".join),
    st.lists(WORDS, max_size=400).map("".join),
)


def _sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def test_news_abbreviations_do_not_end_sentences() -> None:
    text = (
        "The Tesla C.E.O. has been in contact with Putin. Dr. Reyes of the U.S. Department of "
        "Transportation spoke at 9 a.m. on Jan. 5. J. R. Smith agreed. “It works,” he said."
    )
    assert _sentences(text) == [
        "The Tesla C.E.O. has been in contact with Putin.",
        "Dr. Reyes of the U.S. Department of Transportation spoke at 9 a.m. on Jan. 5.",
        "J. R. Smith agreed.",
        "“It works,” he said.",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            'He said: "We won." Then he left!\nNew paragraph without a stop\nAnother? Yes.',
            ['He said: "We won."', "Then he left!", "New paragraph without a stop", "Another?"]
            + ["Yes."],
            id="quotes and paragraphs end sentences",
        ),
        pytest.param(
            'Really?!? "No way!!!" He left... (“Why?!”) Then. . . silence.\n!?!? Done.',
            ["Really?!?", '"No way!!!"', "He left...", "(“Why?!”)", "Then. . . silence."]
            + ["!?!?", "Done."],
            id="runs of punctuation end a sentence once",
        ),
    ],
)
def test_sentence_ends(text: str, expected: list[str]) -> None:
    assert _sentences(text) == expected


# The end-of-sentence pattern before it was made linear: it tried again from every character of
# a run of punctuation, rescanning the rest of the run each time.
_BACKTRACKING_END = re.compile(r"[.!?…]+[\"'”’)\]»]*(?=\s)")


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.integers(min_value=20, max_value=2000))
def test_linear_end_pattern_splits_as_the_backtracking_one_did(text: str, max_chars: int) -> None:
    with mock.patch("assistant.chunking._END", _BACKTRACKING_END):
        before = sentence_spans(text, max_chars)
    assert sentence_spans(text, max_chars) == before


def test_repeated_text_gets_each_occurrence_its_own_offsets() -> None:
    # str.find (LangChain's add_start_index) would place both chunks at the first copy.
    para = "The vote was 7-2. The mayor was pleased."
    text = "\n\n".join([para] * 6)
    chunks = chunk_article("a", text, max_chars=50, overlap_sentences=0)
    starts = [c.start for c in chunks]
    assert len(chunks) == 6 and len(set(starts)) == 6
    assert all(text[c.start : c.end] == c.text == para for c in chunks)


def test_a_sentence_longer_than_a_chunk_is_cut_at_spaces() -> None:
    text = " ".join(f"word{i}" for i in range(500))  # 4,000 characters, no full stop
    chunks = chunk_article("a", text, max_chars=300)
    assert all(len(c.text) <= 300 for c in chunks)
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert " ".join(c.text for c in chunks) == text


def test_chunks_overlap_by_one_sentence() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    chunks = chunk_article("a", text, max_chars=120, overlap_sentences=1)
    assert len(chunks) > 3
    for before, after in zip(chunks, chunks[1:], strict=False):
        last_sentence = _sentences(before.text)[-1]
        assert after.text.startswith(last_sentence)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert [c.id for c in chunks[:2]] == ["a:0", "a:1"]


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.integers(min_value=20, max_value=1200), st.integers(min_value=0, max_value=2))
def test_every_chunk_is_the_text_at_its_offsets(text: str, max_chars: int, overlap: int) -> None:
    spans = sentence_spans(text, max_chars)
    for (_s1, e1), (s2, _) in zip(spans, spans[1:], strict=False):
        assert e1 <= s2, "sentences must not overlap"
    for start, end in spans:
        piece = text[start:end]
        assert piece and piece == piece.strip() and end - start <= max_chars
    covered = "".join(text[s:e] for s, e in spans)
    assert "".join(covered.split()) == "".join(text.split()), "no text may be lost"
    for chunk in chunk_article("x", text, max_chars, overlap):
        assert text[chunk.start : chunk.end] == chunk.text
        assert len(chunk.text) <= max_chars


def test_abbreviation_look_back_reads_a_short_window(monkeypatch) -> None:
    # Looking back from the text's start made splitting quadratic: 14 s for one long article.
    import assistant.chunking as chunking

    windows: list[int] = []
    real = chunking._WORD_BEFORE

    class Spy:
        def search(self, text: str, pos: int, endpos: int):
            windows.append(endpos - pos)
            return real.search(text, pos, endpos)

    monkeypatch.setattr(chunking, "_WORD_BEFORE", Spy())
    text = "Mr. Smith went to Washington. " * 2000
    assert len(sentence_spans(text)) == 2000
    assert windows and max(windows) <= 64


def test_sentence_cache_gives_the_spans_of_the_text_it_is_asked_about() -> None:
    cache = SentenceCache(max_chars=1000)
    old = "The bakery closed after 92 years. It opened in 1931."
    new = "Correction: the bakery closed after 93 years. It opened in 1930. Staff wept."
    assert list(cache(old)) == sentence_spans(old)
    # A replaced article (same id, new text) never gets the old text's offsets.
    assert list(cache(new)) == sentence_spans(new)
    assert list(cache(old)) == sentence_spans(old)
    assert len(cache) == 2


def test_sentence_cache_forgets_the_oldest_texts_beyond_its_size() -> None:
    cache = SentenceCache(max_chars=60)
    texts = [f"Article number {i} is here. It has two sentences." for i in range(4)]
    for text in texts:
        cache(text)
    assert len(cache) == 1  # each text is 47 characters: only the newest fits
    huge = "Word. " * 100
    assert list(cache(huge)) == sentence_spans(huge) and len(cache) == 1  # too big to keep
