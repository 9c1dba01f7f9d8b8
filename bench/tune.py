"""Tune the answer step's settings on the dev questions (never held-out), offline.

Reads a dump of the product's own retrieval and candidate features (bench/reader_dump.py) and
answers every question again under each setting with the product's own code: the hand-set
`heuristic` score or the trained reader, and `Composer.pick`. Prints, per setting, the first-
quote rate, quotes per answer and the abstention threshold that keeps false abstention on the
on-topic answerable questions at most --max-false. The stale-evidence rule (Composer.stale) is
not replayed here: `bench/run.py` measures it. Usage:

    python -m bench.reader_dump --data-dir bench/cache/assistant-corpus_small bench/cache/dev.pkl
    python -m bench.tune bench/cache/dev.pkl [--ranker heuristic|trained]
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from assistant.answer import Candidate, Composer, _Sentence, heuristic
from assistant.cues import unmatched_names
from assistant.ranker import Reader
from assistant.settings import Settings, go_offline
from bench.reader_eval import Ranked, best_threshold, evaluate


def candidates(
    row: dict[str, Any], settings: Settings, texts: dict[str, str] | None = None
) -> list[Candidate]:
    """The row's candidates as the answer step sees them with these settings: the sentences of
    the best `quote_passages` passages, most shared rare words first (with `texts`, the
    articles, each knows how many of the question's names its article never states)."""
    unstated: dict[str, int] = {}
    out = []
    for c in row["candidates"]:
        if c["rank"] >= settings.quote_passages:
            continue
        aid = c["article_id"]
        if texts is not None and aid not in unstated:
            unstated[aid] = len(unmatched_names(row["question"], [c["title"], texts[aid]]))
        s = _Sentence(c["article_id"], c["start"], c["end"], c["index"], c["rank"])
        out.append(
            Candidate(
                s,
                c["text"],
                c["title"],
                c["overlap"],
                c["cosine"],
                c["offered"],
                c["vector"],
                unstated.get(aid, 0),
            )
        )
    return out


def passage_texts(row: dict[str, Any], settings: Settings) -> list[str]:
    """The headlines and texts of the row's quote passages (as Composer.compose reads them)."""
    titles = {c["article_id"]: c["title"] for c in row["candidates"]}
    return [
        t
        for p in row["passages"][: settings.quote_passages]
        for t in (titles.get(p["article_id"], ""), p["text"])
    ]


def unstated_penalty(composer: Composer, row: dict[str, Any], settings: Settings) -> float:
    """Composer.compose's penalty for the question's names no quote passage states."""
    return composer.unstated_penalty(unmatched_names(row["question"], passage_texts(row, settings)))


def heuristic_answer(settings: Settings, texts: dict[str, str]) -> Callable[[dict], Ranked]:
    """Today's hand-set answer step on a dumped row: its quotes and its confidence."""
    composer = Composer(settings, lambda t: [], lambda t: [], lambda ids: {})

    def answer(row: dict[str, Any]) -> Ranked:
        found = candidates(row, settings)[: settings.sentence_candidates]
        if not found:
            return [], 0.0
        scored = sorted((heuristic(c, settings) for c in found), key=lambda s: -s.score)
        confidence = max(s.relevance for s in scored)
        confidence -= unstated_penalty(composer, row, settings)
        picked = composer.pick(scored, texts)
        return [{"text": texts[s.article_id][s.start : s.end]} for s in picked], confidence

    return answer


def trained_answer(
    settings: Settings, texts: dict[str, str], reader: Reader | None = None
) -> Callable[[dict], Ranked]:
    """The trained reader on a dumped row (the shipped model unless given), through
    Composer.read."""
    settings = settings.model_copy(update={"answer_ranker": "trained"})
    reader = reader or Reader()
    composer = Composer(settings, lambda t: [], lambda t: [], lambda ids: {}, reader=reader)

    def answer(row: dict[str, Any]) -> Ranked:
        found = candidates(row, settings, texts)[: settings.reader_candidates]
        if not found:
            return [], 0.0
        scored, confidence = composer.read(row["question"], found)
        confidence -= unstated_penalty(composer, row, settings)
        picked = composer.pick(scored, texts)
        return [{"text": texts[s.article_id][s.start : s.end]} for s in picked], confidence

    return answer


HEURISTIC_GRID = {
    "cosine_weight": (0.5, 0.6, 0.7, 0.8),
    "answer_cue_weight": (0.1, 0.2, 0.3),
    "max_quotes": (1, 2, 4),
    "quote_score_ratio": (0.75, 0.85),
}
TRAINED_GRID = {
    "reader_candidates": (10, 20, 30),
    "reader_pointed": (0, 2, 3, 5),
    "reader_support": (0.3, 0.5, 0.7),
}


def memo(answer: Callable[[dict], Ranked]) -> Callable[[dict], Ranked]:
    """The answer function with each row's result kept (rows are answered several times)."""
    cache: dict[int, Ranked] = {}

    def cached(row: dict[str, Any]) -> Ranked:
        if id(row) not in cache:
            cache[id(row)] = answer(row)
        return cache[id(row)]

    return cached


def grid(spec: dict[str, tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
    keys = list(spec)
    for values in itertools.product(*(spec[k] for k in keys)):
        yield dict(zip(keys, values, strict=True))


def main() -> int:
    go_offline()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dump", type=Path)
    ap.add_argument("--ranker", choices=("heuristic", "trained"), default="heuristic")
    ap.add_argument("--max-false", type=float, default=0.05)
    args = ap.parse_args()
    data = pickle.loads(args.dump.read_bytes())
    rows, texts = data["rows"], data["texts"]
    make = heuristic_answer if args.ranker == "heuristic" else trained_answer
    spec = HEURISTIC_GRID if args.ranker == "heuristic" else TRAINED_GRID
    results = []
    for update in [{}, *grid(spec)]:
        settings = Settings().model_copy(update=update)
        answer = make(settings, texts)
        cached = memo(answer)
        dated, undated = best_threshold(rows, cached, args.max_false)
        at_dated = evaluate(rows, cached, dated)
        at_undated = evaluate(rows, cached, undated)
        results.append((update, at_dated, at_undated))
        print(
            f"{update or 'as shipped'}: {at_dated.line()} || undated threshold {undated:.3f}: "
            f"null {at_undated.null_undated:.3f} (false {at_undated.false_undated:.3f})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
