"""Training examples for the reader from ../shared/train: candidate sentences per question.

For each quiz question with search results, the sentences of its result articles are ranked by
the question's rare words they (or their headline) share, as the answer step does at query
time, and the best few dozen are kept with a distant label: does the sentence contain the answer
(matched as the benchmark's scorer does)?
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from assistant.chunking import sentence_spans  # noqa: E402
from assistant.cues import new_candidates  # noqa: E402
from bench.matching import contains_answer  # noqa: E402

MIN_WORDS = 6  # as Settings.min_quote_words: shorter lines are never quoted


@dataclass
class Candidate:
    text: str
    title: str
    previous: str  # the sentence before it in its paragraph ("" at a paragraph start)
    article_rank: int  # the article's place in the question's search results
    index: int  # the sentence's place in its article
    overlap: float  # share of the question's rare-word weight found in sentence or headline
    offered: int  # answers of the asked-for kind it offers (assistant.cues.new_candidates)
    evidence_overlap: float  # the same share, of the quiz's evidence paragraph
    label: bool  # contains the answer string


@dataclass
class Question:
    id: str
    question: str
    answer: str
    evidence: str
    has_gold: bool  # one of its search results contains the answer
    candidates: list[Candidate] = field(default_factory=list)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def clean_positive(c: Candidate) -> bool:
    """A labelled sentence that also shares words with the question or the quiz's evidence
    (not a sentence that holds the answer string by coincidence)."""
    return c.label and (c.overlap >= 0.2 or c.evidence_overlap >= 0.2)


def evidence_sentences(evidence: str) -> list[str]:
    """The sentences of a quiz's evidence paragraph long enough to stand as an answer's context
    (at least 6 words)."""
    parts = evidence.replace("\n", " ").split(". ")
    return [s.strip() for s in parts if len(s.split()) >= 6]


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def in_fit_split(qid: str, percent: int) -> bool:
    """A fixed share of the training questions, kept from the neural model to fit the combiner."""
    return int(hashlib.sha256(f"reader-fit/{qid}".encode()).hexdigest(), 16) % 100 < percent


class Terms:
    """Stemmed, stop-word-free terms (the keyword index's) and their rarity over paragraphs."""

    def __init__(self) -> None:
        import Stemmer

        self._stem = Stemmer.Stemmer("english")
        self.df: Counter[str] = Counter()
        self.n = 0

    def terms(self, texts: list[str]) -> list[set[str]]:
        import bm25s

        out = bm25s.tokenize(
            texts, stopwords="en", stemmer=self._stem, show_progress=False, return_ids=False
        )
        return [set(t) for t in out]

    def count(self, paragraphs: list[str]) -> None:
        for terms in self.terms(paragraphs):
            self.df.update(terms)
        self.n += len(paragraphs)

    def idf(self, term: str) -> float:
        df = self.df.get(term, 0)
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))


def share(weights: dict[str, float], terms: set[str]) -> float:
    total = sum(weights.values()) or 1.0
    return sum(w for t, w in weights.items() if t in terms) / total


def build(train_dir: Path, per_question: int = 40, limit: int | None = None) -> list[Question]:
    """Candidate sentences with labels for every training question that has search results."""
    rows = [q for q in read_jsonl(train_dir / "questions.jsonl") if q["search_ids"]]
    if limit:
        rows = rows[:limit]
    wanted = {i for q in rows for i in q["search_ids"]}
    articles = {a["id"]: a for a in read_jsonl(train_dir / "articles.jsonl") if a["id"] in wanted}
    terms = Terms()
    for a in articles.values():
        terms.count([p for p in a["text"].split("\n\n") if p.strip()])
    split: dict[str, list[tuple[int, int]]] = {}
    sentence_terms: dict[str, list[set[str]]] = {}
    out: list[Question] = []
    for n, q in enumerate(rows):
        q_weights = {t: terms.idf(t) for t in terms.terms([q["question"]])[0]}
        e_weights = {t: terms.idf(t) for t in terms.terms([q.get("evidence") or ""])[0]}
        pool: list[Candidate] = []
        for rank, aid in enumerate(q["search_ids"]):
            a = articles.get(aid)
            if a is None:
                continue
            text = a["text"]
            if aid not in split:
                split[aid] = sentence_spans(text)
                sentence_terms[aid] = terms.terms([text[s:e] for s, e in split[aid]])
            head = terms.terms([a["title"]])[0]
            spans = split[aid]
            for index, (s, e) in enumerate(spans):
                body = text[s:e]
                if len(body.split()) < MIN_WORDS:
                    continue
                previous = ""
                if index > 0 and "\n" not in text[spans[index - 1][1] : s]:
                    previous = text[spans[index - 1][0] : spans[index - 1][1]]
                own = sentence_terms[aid][index]
                pool.append(
                    Candidate(
                        text=body,
                        title=a["title"],
                        previous=previous,
                        article_rank=rank,
                        index=index,
                        overlap=share(q_weights, own | head),
                        offered=len(new_candidates(q["question"], body)),
                        evidence_overlap=share(e_weights, own),
                        label=contains_answer(body, q["answer"]),
                    )
                )
        pool.sort(key=lambda c: (-c.overlap, c.article_rank, c.index))
        out.append(
            Question(
                q["id"],
                q["question"],
                q["answer"],
                q.get("evidence") or "",
                bool(q["search_gold_ids"]),
                pool[:per_question],
            )
        )
        if n % 500 == 0:
            print(f"  {n}/{len(rows)} questions", file=sys.stderr, flush=True)
    return out


if __name__ == "__main__":
    import pickle
    import time

    from train.reader_data import build as build_  # pickled as the module's classes

    started = time.time()
    qs = build_(Path(sys.argv[1]), limit=int(sys.argv[3]) if len(sys.argv) > 3 else None)
    Path(sys.argv[2]).write_bytes(pickle.dumps(qs))
    gold = [q for q in qs if q.has_gold]
    reach = sum(any(c.label for c in q.candidates) for q in gold)
    print(
        f"{len(qs)} questions, {len(gold)} with an answer article, {reach} with a labelled "
        f"candidate; {time.time() - started:.0f} s"
    )
