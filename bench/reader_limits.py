"""Where the reader puts the answer, and what declining more would cost, on a dev dump (offline).

For the on-topic answerable questions asked with their quiz date: how many have a sentence
holding the answer first, in the first two, three, five, ten, or anywhere among the sentences
read (with and without the pointer's rereading). For the confidence: the null questions
declined at each level of false abstention, with and without dates (the stale-evidence rule is
not replayed; `bench/run.py` measures it). Usage:

    python -m bench.reader_limits bench/cache/dev.pkl [--model DIR] [--candidates 20,40]
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path
from typing import Any

from assistant.answer import Composer
from assistant.ranker import Reader
from assistant.settings import Settings, go_offline
from bench.matching import contains_answer
from bench.reader_eval import best_threshold, evaluate
from bench.tune import candidates, memo, trained_answer

DEPTHS = (1, 2, 3, 5, 10)
FALSE_LEVELS = (0.0, 0.03, 0.05, 0.08, 0.10, 0.15, 0.20)


def read_candidates(
    row: dict[str, Any], settings: Settings, texts: dict[str, str], n: int
) -> list[Any]:
    """The row's first `n` candidates by shared words, as the answer step reads them (each with
    its story's unstated names). The few without a vector kept at indexing (the product would
    embed them now) are left out."""
    return [c for c in candidates(row, settings, texts) if c.vector is not None][:n]


def answer_places(
    rows: list[dict[str, Any]], texts: dict[str, str], composer: Composer, read: int
) -> list[int | None]:
    """Per on-topic dated question: the place of the first sentence holding the answer."""
    settings = composer.settings
    places: list[int | None] = []
    for r in rows:
        if not (r["answerable"] and r["on_topic"] and r["dated"]):
            continue
        found = read_candidates(r, settings, texts, read)
        ranked = composer.read(r["question"], found)[0] if found else []
        holding = [
            i
            for i, s in enumerate(ranked)
            if contains_answer(texts[s.article_id][s.start : s.end], r["answer"])
        ]
        places.append(holding[0] if holding else None)
    return places


def main() -> int:
    go_offline()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dump", type=Path)
    ap.add_argument("--model", type=Path, default=None, help="a reader folder (default: shipped)")
    ap.add_argument("--candidates", default="20,40")
    args = ap.parse_args()
    data = pickle.loads(args.dump.read_bytes())
    rows, texts = data["rows"], data["texts"]
    reader = Reader(args.model) if args.model else Reader()

    def composer(**update: Any) -> Composer:
        settings = Settings().model_copy(update={"answer_ranker": "trained", **update})
        return Composer(settings, lambda t: [], lambda t: [], lambda ids: {}, reader=reader)

    print("first sentence holding the answer, cumulative, at places", DEPTHS, "or anywhere read")
    for read in (int(n) for n in args.candidates.split(",")):
        for name, update in (("reader", {"reader_pointed": 0}), ("reader and pointer", {})):
            places = answer_places(rows, texts, composer(**update), read)
            counts = [sum(p is not None and p < d for p in places) for d in DEPTHS]
            anywhere = sum(p is not None for p in places)
            print(f"  {read} read, {name}: {counts} anywhere {anywhere} of {len(places)}")
    # The same confidence and thresholds as bench.tune: abstaining below the highest threshold
    # that keeps false abstention at most each level.
    answer = memo(trained_answer(Settings(), texts, reader))
    for level in FALSE_LEVELS:
        dated, undated = best_threshold(rows, answer, level)
        with_dates = evaluate(rows, answer, dated).null_dated
        without = evaluate(rows, answer, undated).null_undated
        print(
            f"  false abstention <= {level:.2f}: null declined {with_dates:.3f} with dates "
            f"(threshold {dated:.3f}), {without:.3f} without ({undated:.3f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
