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
from assistant.settings import Settings, go_offline
from bench.matching import contains_answer
from bench.tune import candidates

DEPTHS = (1, 2, 3, 5, 10)
FALSE_LEVELS = (0.0, 0.03, 0.05, 0.08, 0.10, 0.15, 0.20)


def read_candidates(row: dict[str, Any], settings: Settings, n: int) -> list[Any]:
    """The row's first `n` candidates by shared words, as the answer step reads them. The few
    without a vector kept at indexing (the product would embed them now) are left out."""
    return [c for c in candidates(row, settings) if c.vector is not None][:n]


def answer_places(
    rows: list[dict[str, Any]], texts: dict[str, str], composer: Composer, read: int
) -> list[int | None]:
    """Per on-topic dated question: the place of the first sentence holding the answer."""
    settings = composer.settings
    places: list[int | None] = []
    for r in rows:
        if not (r["answerable"] and r["on_topic"] and r["dated"]):
            continue
        found = read_candidates(r, settings, read)
        ranked = composer.read(r["question"], found)[0] if found else []
        holding = [
            i
            for i, s in enumerate(ranked)
            if contains_answer(texts[s.article_id][s.start : s.end], r["answer"])
        ]
        places.append(holding[0] if holding else None)
    return places


def confidences(
    rows: list[dict[str, Any]], composer: Composer, dated: bool
) -> tuple[list[float], list[float]]:
    """(on-topic answerable, null) confidences; a question with nothing found counts as 0."""
    answerable, null = [], []
    for r in rows:
        if r["dated"] != dated or (r["answerable"] and not r["on_topic"]):
            continue
        settings = composer.settings
        found = [] if r["empty"] else read_candidates(r, settings, settings.reader_candidates)
        conf = composer.read(r["question"], found)[1] if found else 0.0
        (answerable if r["answerable"] else null).append(conf)
    return answerable, null


def main() -> int:
    go_offline()
    from assistant.ranker import Reader

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
    shipped = composer()
    for dated in (True, False):
        answerable, null = confidences(rows, shipped, dated)
        ranked = sorted(answerable)
        print("with dates" if dated else "without dates")
        for level in FALSE_LEVELS:
            threshold = ranked[int(level * len(ranked))]
            declined = sum(c < threshold for c in null) / len(null)
            print(
                f"  false abstention <= {level:.2f}: threshold {threshold:.3f}, null declined "
                f"{declined:.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
