"""Abstention threshold sweep: how a cut-off on `confidence` trades null abstention for misses.

Reads the assistant's answers (one JSON line per question, with `id` and `confidence`) and the
query files. The ids in the null file are the unanswerable questions; all others answerable.
At threshold t an answer counts as an abstention when its confidence is below t (the assistant
abstains when confidence < its `min_confidence`). Usage:

    .venv/bin/python -m bench.features [ANSWERS] [--null NULL_FILE] [--queries QUERY_FILE]
                                       [--max-false 0.10]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SHARED = BENCH.parent.parent / "shared" / "bench"
DEFAULT_ANSWERS = BENCH / "cache" / "last" / "answers-assistant.jsonl"


@dataclass(frozen=True)
class Point:
    """Abstention rates at one confidence threshold."""

    threshold: float
    null_abstain: float
    false_abstain: float


def read_ids(path: Path) -> set[str]:
    """The `id` of every line of a JSONL file."""
    with path.open(encoding="utf-8") as f:
        return {json.loads(line)["id"] for line in f if line.strip()}


def read_answers(path: Path) -> dict[str, tuple[float, bool]]:
    """Question id → (confidence, abstained), from an answers JSONL (first line per id wins)."""
    found: dict[str, tuple[float, bool]] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                found.setdefault(row["id"], (float(row["confidence"]), bool(row["abstained"])))
    return found


def rate_below(values: list[float], threshold: float) -> float:
    """Fraction of values below the threshold (0 for no values)."""
    return sum(v < threshold for v in values) / len(values) if values else 0.0


def mean_flag(rows: list[tuple[float, bool]]) -> float:
    """Fraction of (confidence, abstained) rows that abstained."""
    return sum(abstained for _, abstained in rows) / len(rows) if rows else 0.0


def sweep(null: list[float], answerable: list[float], steps: int = 100) -> list[Point]:
    """Rates at thresholds 0.00, 0.01, …, 1.00."""
    points = []
    for i in range(steps + 1):
        t = round(i / steps, 2)
        points.append(Point(t, rate_below(null, t), rate_below(answerable, t)))
    return points


def best(points: list[Point], max_false: float) -> Point | None:
    """Highest null abstention with false abstention ≤ max_false (lowest threshold on ties)."""
    allowed = [p for p in points if p.false_abstain <= max_false + 1e-12]
    return max(allowed, key=lambda p: (p.null_abstain, -p.threshold), default=None)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("answers", type=Path, nargs="?", default=DEFAULT_ANSWERS)
    ap.add_argument("--null", type=Path, default=SHARED / "null_dev.jsonl")
    ap.add_argument(
        "--queries",
        type=Path,
        default=SHARED / "queries_small_dev.jsonl",
        help="answerable questions; only ids in it (or --null) are counted",
    )
    ap.add_argument("--max-false", type=float, default=0.10)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Print the sweep and the best threshold."""
    args = parse_args(argv)
    answers = read_answers(args.answers)
    null_ids, answerable_ids = read_ids(args.null), read_ids(args.queries) - read_ids(args.null)
    null = [answers[i] for i in null_ids if i in answers]
    answerable = [answers[i] for i in answerable_ids if i in answers]
    missing = len(null_ids | answerable_ids) - len(null) - len(answerable)
    print(
        f"{args.answers}: {len(answerable)} answerable, {len(null)} null answers"
        + (f" ({missing} questions have no answer line and are left out)" if missing else "")
    )
    if not null or not answerable:
        print("need answers to both null and answerable questions", file=sys.stderr)
        return 1
    print(
        f"as answered: null abstain {mean_flag(null):.3f}, "
        f"false abstain {mean_flag(answerable):.3f}"
    )
    points = sweep([c for c, _ in null], [c for c, _ in answerable])
    print(f"{'threshold':>9}  {'null abstain':>12}  {'false abstain':>13}")
    for p in points:
        print(f"{p.threshold:9.2f}  {p.null_abstain:12.3f}  {p.false_abstain:13.3f}")
    chosen = best(points, args.max_false)
    if chosen is None:
        print(f"no threshold keeps false abstention ≤ {args.max_false:.2f}")
    else:
        print(
            f"best threshold with false abstention ≤ {args.max_false:.2f}: "
            f"{chosen.threshold:.2f} (null abstain {chosen.null_abstain:.3f}, "
            f"false abstain {chosen.false_abstain:.3f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
