"""The trained reader: the shipped model loads offline, ranks as trained, and answers."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_assistant import HARROW

from assistant.assistant import Assistant
from assistant.embeddings import ModelEmbedder
from assistant.ranker import MODEL_DIR, Reader, SentenceFacts, best_span
from assistant.settings import PROJECT_DIR, Settings

SAMPLE = PROJECT_DIR / "corpus" / "musk-putin-contact.txt"
ARTICLES = Path(__file__).parent / "data" / "articles"
QUESTION = "Is Musk talking regularly with the Russian president?"
TESLA = "The Tesla C.E.O. has been in regular contact with Putin since late 2022"


def test_the_shipped_reader_is_small_and_described():
    spec = json.loads((MODEL_DIR / "reader.json").read_text(encoding="utf-8"))
    pointer = MODEL_DIR / spec["pointer"]["file"]
    files = [MODEL_DIR / spec["encoder"], pointer, MODEL_DIR / "tokenizer.json"]
    assert all(f.is_file() for f in files)
    assert hashlib.sha256(pointer.read_bytes()).hexdigest() == spec["pointer"]["sha256"]
    assert sum(f.stat().st_size for f in MODEL_DIR.iterdir()) < 50 * 1024 * 1024
    card = (MODEL_DIR / "MODEL_CARD.md").read_text(encoding="utf-8")
    # The card says how to rebuild it and from what: the command, the data's digest, the seed.
    assert "make train" in card and f"seed {spec['seed']}" in card
    assert spec["train_sha256"]["questions.jsonl"] in card
    # The card's encoder digest is the shipped file's: the weights are the ones described.
    digest = hashlib.sha256((MODEL_DIR / spec["encoder"]).read_bytes()).hexdigest()
    assert digest == spec["encoder_sha256"]


def test_the_reader_prefers_the_sentence_that_answers(embedder: ModelEmbedder):
    reader = Reader()
    title = "A Musk-Putin bombshell"
    sentences = [
        f"{TESLA}, according to The Wall Street Journal.",
        "Trump has long praised Putin and has said he would end the war in Ukraine in a day.",
    ]
    vectors = [
        np.asarray(v) for v in embedder.embed_documents([f"{title}\n{s}" for s in sentences])
    ]
    question = np.asarray(embedder.embed_query(QUESTION))
    facts = [SentenceFacts(0.3, float(question @ v), 2) for v in vectors]
    probs, answerable = reader.read(QUESTION, vectors, facts)
    assert probs[0] > probs[1]
    assert 0.0 < answerable < 1.0


def test_the_pointer_marks_the_answers_words_and_only_where_they_are():
    reader = Reader()
    # The test collection's story (tests/data/articles/wire.jsonl).
    title = "University team launches weather satellite built by students"
    question = "Which university built the Kestrel-1 satellite?"
    answering = (
        "The Kestrel-1, a weather satellite built by students at Carrow State University, "
        "reached orbit on Friday aboard a commercial rocket."
    )
    silent = "The Kestrel-1 will measure humidity in the upper atmosphere for two years."
    found, other = reader.point(question, [(title, answering), (title, silent)])
    assert answering[found.start : found.end] == "Carrow State University"
    threshold = Settings().answer_highlight_min
    assert found.score >= threshold > other.score
    # What it finds raises the sentence it finds it in, at the same reader probability.
    assert reader.rerank(0.3, found) > reader.rerank(0.3, other)
    assert reader.point(question, []) == []


@given(st.lists(st.floats(-10, 10), min_size=1, max_size=20), st.integers(1, 5), st.data())
def test_best_span_is_the_best_allowed_span_of_at_most_the_longest(
    starts: list[float], longest: int, data: st.DataObject
):
    n = len(starts)
    ends = data.draw(st.lists(st.floats(-10, 10), min_size=n, max_size=n))
    allowed = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    if not any(allowed):
        return
    score, a, b = best_span(np.array(starts), np.array(ends), np.array(allowed), longest)
    spans = [
        (starts[i] + ends[j], i, j)
        for i in range(n)
        for j in range(i, min(n, i + longest))
        if allowed[i] and allowed[j]
    ]
    assert allowed[a] and allowed[b] and 0 <= b - a < longest
    assert math.isclose(score + starts[0] + ends[0], max(spans)[0], abs_tol=1e-9)


@pytest.mark.xfail(
    strict=True,
    reason="the reader still puts the sentences on Trump's and Musk's ties to Putin first: "
    "'regular contact with Putin' for 'talking regularly with the Russian president' is a "
    "paraphrase the MiniLM vectors rank below them (docs/reader.md)",
)
def test_the_sample_question_is_answered_with_the_tesla_sentence_first(
    data_dir: Path, embedder: ModelEmbedder
):
    settings = Settings(data_dir=data_dir, answer_ranker="trained")
    assistant = Assistant(settings, embedder=embedder)
    try:
        assert assistant.add([SAMPLE]).count("added") == 1
        answer = assistant.ask(QUESTION)
        assert not answer.abstained
        assert answer.citations[0].quote.startswith(TESLA), answer.text
        assert len(answer.citations) <= settings.reader_max_quotes
    finally:
        assistant.close()


def test_the_hand_set_answer_step_stays_selectable(data_dir: Path, embedder: ModelEmbedder):
    assistant = Assistant(Settings(data_dir=data_dir, answer_ranker="heuristic"), embedder=embedder)
    try:
        assert assistant.composer.reader is None and not assistant.composer.trained
        assistant.add([SAMPLE])
        answer = assistant.ask(QUESTION)
        assert answer.citations and all(
            c.quote == assistant.get(c.article_id).text[c.start : c.end]  # type: ignore[union-attr]
            for c in answer.citations
        )
    finally:
        assistant.close()


@pytest.mark.parametrize("ranker", ["trained", "heuristic"])
def test_an_unrelated_question_is_declined(data_dir: Path, embedder: ModelEmbedder, ranker: str):
    assistant = Assistant(Settings(data_dir=data_dir, answer_ranker=ranker), embedder=embedder)
    try:
        assistant.add([SAMPLE])
        answer = assistant.ask("Which team won the 2026 Stanley Cup final in overtime?")
        assert answer.abstained, answer.text
    finally:
        assistant.close()


@pytest.mark.parametrize("ranker", ["trained", "heuristic"])
def test_a_question_naming_what_no_passage_states_is_declined(
    data_dir: Path, embedder: ModelEmbedder, ranker: str
):
    # The cup final story never mentions 2019 or Madrid: the question is about another match.
    unstated = "How many people watched the 2019 Northern Cup final in Madrid?"
    settings = Settings(data_dir=data_dir, answer_ranker=ranker)
    assistant = Assistant(settings, embedder=embedder)
    try:
        assistant.add([ARTICLES])
        plain = assistant.ask("How many people watched the Northern Cup final?")
        assert not plain.abstained and plain.notice is None, plain.text
        # Answered, but the reader is told the story never mentions Wembley.
        at = assistant.ask("Who saved the decisive penalty in the Northern Cup final at Wembley?")
        assert not at.abstained and "Lindqvist" in at.text, at.text
        assert at.notice == "None of the closest passages mentions “Wembley”.", at.notice
        declined = assistant.ask(unstated)
        assert declined.abstained, declined.text
        # It says which of the question's words the closest passages never mention.
        why = "None of the closest passages mentions “2019” or “Madrid”."
        assert declined.notice == why and why in declined.text
    finally:
        assistant.close()
    # Without the rule, the same passages are close enough to answer it.
    unruled = Assistant(
        settings.model_copy(update={"unstated_name_penalty": 0.0}), embedder=embedder
    )
    try:
        answered = unruled.ask(unstated)
        assert not answered.abstained and "21,400" in answered.text
        assert answered.confidence > declined.confidence
    finally:
        unruled.close()


EMMYS = [
    {
        "id": "emmys-2023",
        "title": "Emmy nominations: a last lap for the Roy family",
        "published": "2023-07-12",
        "text": "“Succession” is the most-nominated TV show at this year’s Emmys, with 27 nods, "
        "including one for outstanding drama series.\n\nThe HBO drama about a media dynasty "
        "ended its run this spring. The ceremony was later postponed because of the strikes.",
    },
    {
        "id": "emmys-2025",
        "title": "Emmys 2025: the nominations",
        "published": "2025-07-15",
        "text": "Apple TV+’s “Severance” leads with 27 nominations, followed by HBO’s “The "
        "Penguin” with 24.\n\nThe workplace thriller returned for a second season in January. "
        "The ceremony airs in September.",
    },
]


def test_the_reader_prefers_the_story_that_names_what_the_question_names(
    data_dir: Path, embedder: ModelEmbedder, tmp_path: Path
):
    # The 2023 story's sentence words the question more closely, but never says 2025.
    wire = tmp_path / "emmys.jsonl"
    wire.write_text("".join(json.dumps(r) + "\n" for r in EMMYS), encoding="utf-8")
    question = "What is the most-nominated TV show for the 2025 Emmys?"
    settings = Settings(data_dir=data_dir)
    assistant = Assistant(settings, embedder=embedder)
    try:
        assistant.add([ARTICLES, wire])
        answer = assistant.ask(question)
        assert answer.citations[0].quote.startswith("Apple TV+’s “Severance” leads"), answer.text
    finally:
        assistant.close()
    unruled = Assistant(
        settings.model_copy(update={"reader_unstated_factor": 0.0}), embedder=embedder
    )
    try:
        first = unruled.ask(question).citations[0].quote
        assert first.startswith("“Succession” is the most-nominated"), first
    finally:
        unruled.close()


def test_a_question_asked_long_after_the_newest_story_needs_stronger_evidence(
    data_dir: Path, embedder: ModelEmbedder, tmp_path: Path
):
    record = {
        "id": "harbor-2024",
        "title": "Harbor storm closes the ferry",
        "published": "2024-01-10",
        "text": "A winter storm closed the Harbor ferry on Tuesday. The ferry will reopen on "
        "Friday once the pier is repaired, the port authority said.",
    }
    wire = tmp_path / "wire.jsonl"
    wire.write_text(json.dumps(record) + "\n", encoding="utf-8")
    # Every answer passes min_confidence; a stale one would need more than any can have.
    settings = Settings(data_dir=data_dir, min_confidence=0.0, stale_min_confidence=1.01)
    assistant = Assistant(settings, embedder=embedder)
    try:
        assistant.add([wire])
        question = "When will the Harbor ferry reopen?"
        assert not assistant.ask(question).abstained  # no day given: nothing is stale
        assert not assistant.ask(question, as_of=date(2024, 1, 12)).abstained
        late = assistant.ask(question, as_of=date(2025, 6, 1))  # 508 days after the story
        assert late.abstained, late.text
        assert not assistant.ask(question, as_of=date(2024, 12, 1)).abstained  # 326 days
    finally:
        assistant.close()


@pytest.fixture(scope="module")
def both_steps(
    embedder: ModelEmbedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Assistant]]:
    """The test articles and a two-part story, answered by each answer step."""
    folder = tmp_path_factory.mktemp("both-steps")
    store = Assistant(Settings(data_dir=folder), embedder=embedder)
    assert store.add([ARTICLES]).count("failed") == 0
    store.add_text(HARROW)
    store.close()
    steps = {
        ranker: Assistant(Settings(data_dir=folder, answer_ranker=ranker), embedder=embedder)
        for ranker in ("trained", "heuristic")
    }
    yield steps
    for step in steps.values():
        step.close()


@pytest.mark.parametrize("ranker", ["trained", "heuristic"])
def test_a_quantity_question_is_answered_by_the_count_not_the_score(
    both_steps: dict[str, Assistant], ranker: str
):
    # "5-4 on penalties" offers more numbers; "A crowd of 21,400 watched" answers.
    answer = both_steps[ranker].ask("How many people watched the Northern Cup final?")
    assert "21,400" in answer.citations[0].quote, answer.text
    if ranker == "trained":  # no padding: the storm story's "140 people" is not about the final
        assert all("Red Cross" not in c.quote for c in answer.citations), answer.text


@pytest.mark.parametrize("ranker", ["trained", "heuristic"])
def test_a_which_question_is_answered_by_the_name_asked_for(
    both_steps: dict[str, Assistant], ranker: str
):
    step = both_steps[ranker]
    answer = step.ask("Which university built the Kestrel-1 satellite?")
    first = answer.citations[0]
    assert "Carrow State University" in first.quote, answer.text
    if ranker == "trained":  # the reader also points at the answer's words (shown bold)
        assert first.answer is not None
        text = step.get(first.article_id).text  # type: ignore[union-attr]
        assert text[first.answer[0] : first.answer[1]] == "Carrow State University"
    else:
        assert first.answer is None


@pytest.mark.parametrize("ranker", ["trained", "heuristic"])
def test_a_two_part_question_gets_both_parts(both_steps: dict[str, Assistant], ranker: str):
    answer = both_steps[ranker].ask("What do the Harrow Bridge deck repairs cost, and who pays?")
    quotes = " ".join(c.quote for c in answer.citations)
    assert "4 million dollars" in quotes and "paid for by the county" in quotes, answer.text
    if ranker == "trained":  # no padding: the repair dates answer neither part
        assert "until June" not in quotes, answer.text


def test_the_readme_question_is_answered_by_its_sentence_first(
    data_dir: Path, embedder: ModelEmbedder
):
    starlink = "On one occasion, the Russian president asked Musk not to activate"
    settings = Settings(data_dir=data_dir)
    assert settings.rarity_background_chunks == 30.0
    firsts = {}
    for chunks in (30.0, 0.0):  # one store: the background weighs words at question time
        update = {"rarity_background_chunks": chunks}
        assistant = Assistant(settings.model_copy(update=update), embedder=embedder)
        try:
            if chunks:
                assistant.add([SAMPLE])
            answer = assistant.ask("What did Putin ask Musk not to do?")
            firsts[chunks] = answer.citations[0].quote
        finally:
            assistant.close()
    assert firsts[30.0].startswith(starlink), firsts
    # Without the background, in a one-article collection "what" weighs as much as "ask", and
    # "what role Musk should play" seems to share as much as "asked Musk not to".
    assert not firsts[0.0].startswith(starlink), firsts


@pytest.mark.xfail(
    strict=True,
    reason="the hand-set step puts 'what role — if any — Musk should play', closer by cosine, "
    "before 'asked Musk not to activate', sharing as many of the question's rare words",
)
def test_the_hand_set_step_answers_the_readme_question_by_its_sentence_first(
    data_dir: Path, embedder: ModelEmbedder
):
    settings = Settings(data_dir=data_dir, answer_ranker="heuristic")
    assistant = Assistant(settings, embedder=embedder)
    try:
        assistant.add([SAMPLE])
        answer = assistant.ask("What did Putin ask Musk not to do?")
        assert answer.citations[0].quote.startswith(
            "On one occasion, the Russian president asked Musk not to activate"
        ), answer.text
    finally:
        assistant.close()
