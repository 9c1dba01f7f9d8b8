"""Offline metrics of a sentence ranker over a dev dump (bench/reader_dump.py).

For each question: a ranked list of candidate quotes and a confidence. Reports, on the on-topic
answerable questions, how often the first (first two) quotes hold the answer, the quotes per
answer; and the null questions declined against false abstention at a threshold, with and
without question dates (a question whose period is after the archive abstains regardless).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.matching import contains_answer

Ranked = tuple[list[dict[str, Any]], float]  # chosen quotes (candidate dicts), confidence


@dataclass
class Metrics:
    first: float
    first_two: float
    any_quote: float
    quotes: float
    null_dated: float
    false_dated: float
    null_undated: float
    false_undated: float
    threshold: float

    def line(self) -> str:
        return (
            f"first {self.first:.3f} two {self.first_two:.3f} any {self.any_quote:.3f} "
            f"q/ans {self.quotes:.2f} | t={self.threshold:.3f} null dated {self.null_dated:.3f} "
            f"(false {self.false_dated:.3f}) undated {self.null_undated:.3f} "
            f"(false {self.false_undated:.3f})"
        )


def holds(c: dict[str, Any], answer: str | None) -> bool:
    return contains_answer(c["text"], answer)


def evaluate(
    rows: list[dict[str, Any]], answer: Callable[[dict[str, Any]], Ranked], threshold: float
) -> Metrics:
    """Metrics at one abstention threshold (confidence below it abstains)."""
    first = two = anyq = nquotes = answered = 0
    ontopic = {"dated": 0, "undated": 0}
    false = {"dated": 0, "undated": 0}
    nulls = {"dated": 0, "undated": 0}
    declined = {"dated": 0, "undated": 0}
    for r in rows:
        key = "dated" if r["dated"] else "undated"
        quotes, conf = ([], 0.0) if r["empty"] or not r["candidates"] else answer(r)
        abstain = r["empty"] or not quotes or conf < threshold
        if not r["answerable"]:
            nulls[key] += 1
            declined[key] += abstain
            continue
        if not r["on_topic"]:
            continue
        ontopic[key] += 1
        false[key] += abstain
        if key != "dated":
            continue
        # Quote precision is measured as the benchmark asks (with dates), on answered ones too
        # low to pass the threshold as well: it is the ranking that is measured here.
        if quotes:
            first += holds(quotes[0], r["answer"])
            two += any(holds(q, r["answer"]) for q in quotes[:2])
            anyq += any(holds(q, r["answer"]) for q in quotes)
            nquotes += len(quotes)
            answered += 1
    n = max(ontopic["dated"], 1)
    return Metrics(
        first / n,
        two / n,
        anyq / n,
        nquotes / max(answered, 1),
        declined["dated"] / max(nulls["dated"], 1),
        false["dated"] / n,
        declined["undated"] / max(nulls["undated"], 1),
        false["undated"] / max(ontopic["undated"], 1),
        threshold,
    )


def best_threshold(
    rows: list[dict[str, Any]], answer: Callable[[dict[str, Any]], Ranked], max_false: float = 0.05
) -> tuple[float, float]:
    """The highest thresholds keeping false abstention <= max_false: (dated, undated)."""
    out = []
    for dated in (True, False):
        confs = sorted(
            answer(r)[1]
            for r in rows
            if r["answerable"]
            and r["on_topic"]
            and r["dated"] == dated
            and not r["empty"]
            and r["candidates"]
        )
        n = sum(1 for r in rows if r["answerable"] and r["on_topic"] and r["dated"] == dated)
        empties = sum(
            1
            for r in rows
            if r["answerable"]
            and r["on_topic"]
            and r["dated"] == dated
            and (r["empty"] or not r["candidates"])
        )
        allowed = int(max_false * n) - empties
        out.append(confs[allowed] if 0 <= allowed < len(confs) else 0.0)
    return out[0], out[1]


def auc(
    rows: list[dict[str, Any]], answer: Callable[[dict[str, Any]], Ranked], dated: bool
) -> float:
    """ROC AUC of the confidence: on-topic answerable against null questions."""
    pos = [
        answer(r)[1]
        for r in rows
        if r["dated"] == dated and r["answerable"] and r["on_topic"] and r["candidates"]
    ]
    neg = [
        answer(r)[1]
        for r in rows
        if r["dated"] == dated and not r["answerable"] and r["candidates"]
    ]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / max(len(pos) * len(neg), 1)
