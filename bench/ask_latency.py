"""`ask` latency of two versions of the package, measured in one run on one index.

    python -m bench.ask_latency build DATA_DIR [--articles 300]
    python -m bench.ask_latency compare DATA_DIR --before TREE --after TREE [--questions 60]

`build` indexes the first articles of the benchmark's small corpus into DATA_DIR (with the
package on PYTHONPATH). `compare` answers the same questions (the first answerable dev
questions, each asked on its quiz date) with the package of each tree (a folder holding
`assistant/`), in alternating rounds of fresh processes after one untimed warm-up question,
and prints p50/p95 of the wall-clock and CPU time `Assistant.ask` took per question. `time`
is what each such process runs.
"""

from __future__ import annotations

import os

os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

SHARED = Path("/work/shared/bench")


def percentile(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def questions(n: int) -> list[dict[str, Any]]:
    """The first `n` answerable dev questions, each with the day it was asked."""
    rows = [json.loads(line) for line in (SHARED / "queries_small_dev.jsonl").open()]
    return [{"question": q["question"], "as_of": q.get("question_date")} for q in rows[:n]]


def build(data_dir: Path, articles: int) -> None:
    from assistant.assistant import Assistant
    from assistant.settings import Settings
    from bench.run import product_article

    corpus = data_dir.with_suffix(".jsonl")
    with (SHARED / "corpus_small.jsonl").open() as f, corpus.open("w") as out:
        lines = [json.loads(line) for _, line in zip(range(articles), f, strict=False)]
        for record in map(product_article, lines):
            out.write(json.dumps(record) + "\n")
    assistant = Assistant(Settings(data_dir=data_dir))
    started = time.perf_counter()
    report = assistant.add([corpus])
    print(f"{report.summary()} in {time.perf_counter() - started:.1f} s", file=sys.stderr)


def time_asks(data_dir: Path, n: int) -> None:
    from datetime import date

    from assistant.assistant import Assistant
    from assistant.settings import Settings

    assistant = Assistant(Settings(data_dir=data_dir))
    assistant.ask("Who won the final?")  # loads the model and the keyword index
    seconds, cpu = [], []
    for q in questions(n):
        as_of = date.fromisoformat(q["as_of"][:10]) if q["as_of"] else None
        started, used = time.perf_counter(), time.process_time()
        assistant.ask(q["question"], as_of=as_of)
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    print(json.dumps({"wall": seconds, "cpu": cpu}))


def compare(data_dir: Path, trees: dict[str, Path], n: int, rounds: int) -> None:
    times: dict[tuple[str, str], list[float]] = {}
    for r in range(rounds):
        for name, tree in trees.items():
            env = {**os.environ, "PYTHONPATH": str(tree)}
            cmd = [sys.executable, __file__, "time", str(data_dir), "--questions", str(n)]
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            for clock, seconds in got.items():
                times.setdefault((name, clock), []).extend(seconds)
            p50 = statistics.median(got["wall"]) * 1000
            print(f"round {r + 1} {name}: wall p50 {p50:.1f} ms", file=sys.stderr)
    for (name, clock), seconds in sorted(times.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        ms = [s * 1000 for s in seconds]
        print(
            f"{name} ({clock} time): {len(ms)} asks, p50 {percentile(ms, 50):.1f} ms, "
            f"p95 {percentile(ms, 95):.1f} ms, mean {statistics.mean(ms):.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("data_dir", type=Path)
    b.add_argument("--articles", type=int, default=300)
    t = sub.add_parser("time")
    t.add_argument("data_dir", type=Path)
    t.add_argument("--questions", type=int, default=60)
    c = sub.add_parser("compare")
    c.add_argument("data_dir", type=Path)
    c.add_argument("--before", type=Path, required=True)
    c.add_argument("--after", type=Path, required=True)
    c.add_argument("--questions", type=int, default=60)
    c.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.command == "build":
        build(args.data_dir, args.articles)
    elif args.command == "time":
        time_asks(args.data_dir, args.questions)
    else:
        compare(
            args.data_dir,
            {"before": args.before, "after": args.after},
            *[args.questions, args.rounds],
        )


if __name__ == "__main__":
    main()
