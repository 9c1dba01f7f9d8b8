"""The trained reader: which candidate sentence answers the question, and whether any does.

A copy of all-MiniLM-L6-v2 fine-tuned on 2022–2024 news-quiz questions (train/reader.py) reads
the question and each candidate sentence with its headline; a logistic model, fitted on other
questions of the same data, combines that closeness with what the answer step already knows
(shared rare words, the base model's cosine, the answer-type cue) into the
probability that the sentence holds the answer. The best such probability, with a few more
per-question signals, gives the probability that some candidate does, which decides abstention.
The files (ONNX weights, tokenizer, the fitted weights and a model card) ship in
assistant/models/reader/ and are only ever read: installing or running never trains.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_DIR = Path(__file__).resolve().parent / "models" / "reader"
MAX_TOKENS = 128  # a headline and one sentence; longer ones are cut


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
        "best": _logit(best),
        "margin": best - second,
        "closeness": max(closeness, default=0.0),
        "overlap": max((f.overlap for f in facts), default=0.0),
        "cosine": max((f.cosine for f in facts), default=0.0),
    }


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class Linear:
    """A fitted logistic model over named features."""

    weights: dict[str, float]
    bias: float

    def __call__(self, features: dict[str, float]) -> float:
        return _sigmoid(self.bias + sum(w * features[k] for k, w in self.weights.items()))


class Reader:
    """The shipped reader, loaded at first use from `folder`."""

    def __init__(self, folder: Path = MODEL_DIR) -> None:
        self.folder = folder
        self._encoder: Any = None
        self._lock = threading.Lock()
        spec = json.loads((folder / "reader.json").read_text(encoding="utf-8"))
        self.sentence_model = Linear(spec["sentence"]["weights"], spec["sentence"]["bias"])
        self.question_model = Linear(spec["question"]["weights"], spec["question"]["bias"])
        self.spec = spec

    @property
    def encoder(self) -> Any:
        with self._lock:
            if self._encoder is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                from assistant.embeddings import OnnxEmbedder

                options = ort.SessionOptions()
                options.intra_op_num_threads = min(os.cpu_count() or 1, 4)
                options.inter_op_num_threads = 1
                options.log_severity_level = 3
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session = ort.InferenceSession(
                    str(self.folder / self.spec["encoder"]),
                    options,
                    providers=["CPUExecutionProvider"],
                )
                tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
                tokenizer.enable_truncation(MAX_TOKENS)
                tokenizer.no_padding()
                self._encoder = OnnxEmbedder(session, tokenizer, batch_size=16)
            return self._encoder

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
