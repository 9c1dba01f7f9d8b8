"""A check of dev-tuned answer settings on questions dev never saw: a small benchmark built
from the training quizzes (../shared/train), asked with no date (content alone).

As on dev, the null questions are from a later period than every story in the corpus: 150
questions from 2024 (from mid-January), none of whose search results, nor those of any question
from mid-December 2023 on, is in the corpus. The answerable ones: 150 questions from 2022–2023
with an on-topic search result, their search results in the corpus, plus 200 search results of
other 2022–2023 questions. All are from the 20% of training questions the reader's neural models
never learnt from (its two logistic combiners were fitted on them, so its own figures here are
flattering; the settings compared are not). Building and indexing take about 7 minutes.

    python -m bench.quiz_check bench/cache/quiz-check
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import sys
from pathlib import Path
from typing import Any

from assistant.ranker import Reader
from assistant.settings import Settings, go_offline
from bench.matching import contains_answer
from bench.reader_dump import dump
from bench.reader_eval import best_threshold, evaluate, holds
from bench.run import read_jsonl
from bench.tune import heuristic_answer, memo, trained_answer

TRAIN = Path(__file__).resolve().parent.parent.parent / "shared" / "train"
NULL_FROM, CORPUS_BEFORE = "2024-01-15", "2023-12-15"
SEED = 20261205


def build(train: Path, folder: Path, each: int = 150, distractors: int = 200) -> None:
    """The corpus file and the questions (with answerable / on-topic flags) in `folder`."""
    from train.reader_data import in_fit_split

    every = read_jsonl(train / "questions.jsonl")
    qs = [q for q in every if in_fit_split(q["id"], 20)]
    answerable = [q for q in qs if q["question_date"] < "2024" and q["search_gold_ids"]]
    null = [q for q in qs if q["question_date"] >= NULL_FROM]
    rng = random.Random(SEED)
    answerable, null = rng.sample(answerable, each), rng.sample(null, each)
    late = {i for q in every if q["question_date"] >= CORPUS_BEFORE for i in q["search_ids"]}
    kept = {i for q in answerable for i in q["search_ids"]} - late
    others = sorted(
        {
            i
            for q in every
            if q["question_date"] < CORPUS_BEFORE and not in_fit_split(q["id"], 20)
            for i in q["search_ids"]
        }
        - kept
        - late
    )
    kept |= set(rng.sample(others, distractors))
    articles = {a["id"]: a for a in read_jsonl(train / "articles.jsonl") if a["id"] in kept}
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for a in articles.values():
            record = {k: a[k] for k in ("id", "title", "url", "source", "text")}
            f.write(json.dumps(record) + "\n")
    questions = [
        {
            **{k: q[k] for k in ("id", "question", "answer", "question_date")},
            "answerable": True,
            "on_topic": any(
                i in articles and contains_answer(articles[i]["text"], q["answer"])
                for i in q["search_ids"]
            ),
        }
        for q in answerable
    ] + [
        {**{k: q[k] for k in ("id", "question", "answer", "question_date")}, "answerable": False}
        | {"on_topic": False}
        for q in null
    ]
    (folder / "questions.json").write_text(json.dumps(questions), encoding="utf-8")


def report(
    rows: list[dict[str, Any]], texts: dict[str, str], settings: Settings, reader: Reader
) -> str:
    """First quote, first two, and null declined at the shipped threshold and at the one
    keeping false abstention <= 0.05 here (no dates)."""
    rows = [r for r in rows if not r["dated"]]
    if settings.answer_ranker == "trained":
        answer = memo(trained_answer(settings, texts, reader))
    else:
        answer = memo(heuristic_answer(settings, texts))
    on = [r for r in rows if r["answerable"] and r["on_topic"]]
    quotes = [answer(r)[0] if r["candidates"] and not r["empty"] else [] for r in on]
    first = sum(bool(q) and holds(q[0], r["answer"]) for q, r in zip(quotes, on, strict=True))
    two = sum(any(holds(x, r["answer"]) for x in q[:2]) for q, r in zip(quotes, on, strict=True))
    trained = settings.answer_ranker == "trained"
    shipped = settings.reader_min_confidence if trained else settings.min_confidence
    _, threshold = best_threshold(rows, answer, 0.05)
    at = {t: evaluate(rows, answer, t) for t in (shipped, threshold)}
    declined = " | ".join(
        f"threshold {t:.3f}{' (shipped)' if t == shipped else ''}: null declined "
        f"{m.null_undated:.3f} at false abstention {m.false_undated:.3f}"
        for t, m in at.items()
    )
    quotes = f"first {first / len(on):.3f} first two {two / len(on):.3f} ({len(on)} on-topic)"
    return f"{quotes} | {declined}"


def main() -> int:
    go_offline()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--train", type=Path, default=TRAIN)
    ap.add_argument("--each", type=int, default=150, help="questions of each kind (247: all)")
    args = ap.parse_args()
    dumped = args.folder / "dump.pkl"
    if not dumped.exists():
        from assistant.assistant import Assistant

        build(args.train, args.folder, each=args.each)
        store = args.folder / "store"
        assistant = Assistant(Settings(data_dir=store))
        print(assistant.add([args.folder / "corpus.jsonl"]).summary(), file=sys.stderr)
        assistant.close()
        questions = json.loads((args.folder / "questions.json").read_text(encoding="utf-8"))
        dumped.write_bytes(pickle.dumps(dump(store, questions, 10)))
    data = pickle.loads(dumped.read_bytes())
    reader = Reader()
    variants: list[tuple[str, dict[str, Any]]] = [
        ("reader, as shipped", {}),
        ("reader, no unstated-name penalty", {"unstated_name_penalty": 0.0}),
        ("reader, no unstated-name factor", {"reader_unstated_factor": 0.0}),
        ("reader, neither", {"unstated_name_penalty": 0.0, "reader_unstated_factor": 0.0}),
        ("hand-set step, as shipped", {"answer_ranker": "heuristic"}),
        ("hand-set step, no penalty", {"answer_ranker": "heuristic", "unstated_name_penalty": 0.0}),
    ]
    for name, update in variants:
        settings = Settings().model_copy(update={"answer_ranker": "trained", **update})
        print(f"{name}: {report(data['rows'], data['texts'], settings, reader)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
