"""The trained reader: which candidate sentence answers the question, and whether any does.

A copy of all-MiniLM-L6-v2 fine-tuned on 2022–2024 news-quiz questions (train/reader.py) reads
the question and each candidate sentence with its headline; a logistic model, fitted on other
questions of the same data, combines that closeness with what the answer step already knows
(shared rare words, the base model's cosine, the answer-type cue) into the
probability that the sentence holds the answer. The best such probability, with a few more
per-question signals, gives the probability that some candidate does, which decides abstention.
A second fine-tuned copy, the pointer, rereads the best few sentences with the question and
points at the answer's words: how sure it is reorders them, and its words are shown bold.
The files (ONNX weights, tokenizer, the fitted weights and a model card) ship in
assistant/models/reader/ and are only ever read: installing or running never trains.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_DIR = Path(__file__).resolve().parent / "models" / "reader"
MAX_TOKENS = 128  # a headline and one sentence; longer ones are cut
SPAN_TOKENS = 12  # the longest answer the pointer marks, in word pieces


@dataclass(frozen=True)
class SentenceFacts:
    """What the combiner reads of one candidate sentence (besides the encoder's closeness)."""

    overlap: float  # share of the question's rare-word weight in the sentence or its headline
    cosine: float  # the base model's cosine to the question
    offered: int  # answers of the asked-for kind it offers (cues.new_candidates)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x))))


def sentence_features(closeness: float, facts: SentenceFacts) -> dict[str, float]:
    """The named inputs of the sentence model."""
    return {
        "reader": closeness,
        "cosine": facts.cosine,
        "overlap": facts.overlap,
        # Whether it offers an answer of the asked-for kind at all: a count would favour a
        # sentence crowded with names or numbers over the one that answers.
        "cue": 1.0 if facts.offered else 0.0,
    }


def question_features(
    probs: Sequence[float], closeness: Sequence[float], facts: Sequence[SentenceFacts]
) -> dict[str, float]:
    """The named inputs of the abstention model: how well the best candidates fit."""
    ordered = sorted(probs, reverse=True)
    best = ordered[0] if ordered else 0.0
    second = ordered[1] if len(ordered) > 1 else 0.0
    return {
        "best": logit(best),
        "margin": best - second,
        "closeness": max(closeness, default=0.0),
        "overlap": max((f.overlap for f in facts), default=0.0),
        "cosine": max((f.cosine for f in facts), default=0.0),
    }


def logit(p: float) -> float:
    """log(p / (1 - p)), p kept off 0 and 1."""
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class Linear:
    """A fitted logistic model over named features."""

    weights: dict[str, float]
    bias: float

    def __call__(self, features: dict[str, float]) -> float:
        return _sigmoid(self.bias + sum(w * features[k] for k, w in self.weights.items()))


@dataclass(frozen=True)
class Pointed:
    """Where the pointer puts the answer in one sentence, and how sure it is of it."""

    score: float  # the best span's logits over those of "not in this sentence"
    start: int  # characters within the sentence, widened to whole words
    end: int


def _word_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The span widened to whole words (a word piece never starts or ends the bold)."""
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return start, end


def pointer_input(title: str, sentence: str) -> tuple[str, int]:
    """The pointer's second segment (the headline, then the sentence) and where the sentence
    starts in it: the same in training (train/span.py) and here."""
    head = f"{title}\n" if title else ""
    return head + sentence, len(head)


def pointable(sequence_ids: Sequence[int | None], offsets: Sequence[Any], start: int) -> Any:
    """Which tokens the pointer may point at: the second segment's, from the sentence on (the
    headline is read, never pointed at)."""
    import numpy as np

    pieces = zip(sequence_ids, offsets, strict=True)
    return np.asarray([sid == 1 and o[0] >= start for sid, o in pieces], dtype=bool)


def best_span(starts: Any, ends: Any, allowed: Any, longest: int) -> tuple[float, int, int]:
    """The (score, first token, last token) of the best span of at most `longest` tokens among
    the `allowed` ones, its score against that of the [CLS] token ("not here")."""
    import numpy as np

    s = np.where(allowed, starts, -np.inf)
    e = np.where(allowed, ends, -np.inf)
    total = s[:, None] + e[None, :]
    n = len(s)
    band = np.triu(np.ones((n, n), dtype=bool)) & ~np.triu(np.ones((n, n), dtype=bool), longest)
    total = np.where(band, total, -np.inf)
    a, b = np.unravel_index(int(np.argmax(total)), total.shape)
    return float(total[a, b] - (starts[0] + ends[0])), int(a), int(b)


class Reader:
    """The shipped reader, loaded at first use from `folder`."""

    def __init__(self, folder: Path = MODEL_DIR) -> None:
        self.folder = folder
        self._encoder: Any = None
        self._pointer: Any = None
        self._lock = threading.Lock()
        spec = json.loads((folder / "reader.json").read_text(encoding="utf-8"))
        self.sentence_model = Linear(spec["sentence"]["weights"], spec["sentence"]["bias"])
        self.question_model = Linear(spec["question"]["weights"], spec["question"]["bias"])
        rerank = spec["pointer"]["rerank"]
        self.rerank_model = Linear(rerank["weights"], rerank["bias"])
        self.spec = spec

    def _tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(self.folder / "tokenizer.json"))

    @property
    def encoder(self) -> Any:
        with self._lock:
            if self._encoder is None:
                from assistant.embeddings import OnnxEmbedder, session_for

                tokenizer = self._tokenizer()
                tokenizer.enable_truncation(MAX_TOKENS)
                tokenizer.no_padding()
                session = session_for(self.folder / self.spec["encoder"])
                self._encoder = OnnxEmbedder(session, tokenizer, batch_size=16)
            return self._encoder

    @property
    def pointer(self) -> tuple[Any, Any]:
        """The answer-span model's session and its tokenizer (question, then headline and
        sentence, the second cut when too long)."""
        with self._lock:
            if self._pointer is None:
                from assistant.embeddings import session_for

                tokenizer = self._tokenizer()
                tokenizer.enable_truncation(MAX_TOKENS, strategy="only_second")
                tokenizer.no_padding()
                self._pointer = (session_for(self.folder / self.spec["pointer"]["file"]), tokenizer)
            return self._pointer

    def point(self, question: str, sentences: Sequence[tuple[str, str]]) -> list[Pointed]:
        """For each (headline, sentence): the words most likely to be the answer, and how
        likely they are to be it at all (the headline is read, never pointed at)."""
        return [self._point_one(question, title, sentence) for title, sentence in sentences]

    def _point_one(self, question: str, title: str, sentence: str) -> Pointed:
        import numpy as np

        session, tokenizer = self.pointer
        text, offset = pointer_input(title, sentence)
        e = tokenizer.encode(question, text)
        # One sentence per run: with int8 weights the activations' scale is set per run, so a
        # sentence padded beside longer ones would score differently than alone.
        feeds = {
            "input_ids": np.asarray([e.ids], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask], dtype=np.int64),
            "token_type_ids": np.asarray([e.type_ids], dtype=np.int64),
        }
        logits = session.run(None, feeds)[0][0]
        allowed = pointable(e.sequence_ids, e.offsets, offset)
        if not allowed.any():
            return Pointed(-math.inf, 0, 0)
        score, a, b = best_span(logits[:, 0], logits[:, 1], allowed, SPAN_TOKENS)
        start, end = _word_bounds(sentence, e.offsets[a][0] - offset, e.offsets[b][1] - offset)
        return Pointed(score, start, end)

    def rerank(self, prob: float, pointed: Pointed) -> float:
        """A sentence's probability of holding the answer, with what the pointer found in it."""
        return self.rerank_model({"reader": logit(prob), "span": pointed.score})

    def question_vector(self, question: str) -> Any:
        """The question read by the fine-tuned encoder (unit length)."""
        import numpy as np

        return np.asarray(self.encoder.embed_query(question), dtype=np.float32)

    def closeness(self, question: str, vectors: Sequence[Any]) -> list[float]:
        """The fine-tuned question vector's cosine to each sentence vector (as stored)."""
        import numpy as np

        q = self.question_vector(question)
        return [float(np.dot(q, np.asarray(v, dtype=np.float32))) for v in vectors]

    def read(
        self, question: str, vectors: Sequence[Any], facts: Sequence[SentenceFacts]
    ) -> tuple[list[float], float]:
        """Each candidate's probability of holding the answer, and that of any holding it.

        `vectors`: the base model's vectors of the candidate sentences (as stored).
        """
        if not facts:
            return [], 0.0
        close = self.closeness(question, vectors)
        probs = [
            self.sentence_model(sentence_features(c, f)) for c, f in zip(close, facts, strict=True)
        ]
        return probs, self.question_model(question_features(probs, close, facts))
