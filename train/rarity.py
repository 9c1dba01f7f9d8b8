"""`make train`, step 0: how common each keyword is in news, from ../shared/train's articles.

The answer step weighs a question's words by their rarity in the collection (IDF over chunks).
In a collection of a few articles that rarity says nothing ("what" is as rare as "Starlink"), so
it is blended with this background: the share of the training articles' paragraphs holding each
stemmed term (the keyword index's terms), for terms in at least `MIN_DF` paragraphs.

Usage: python train/rarity.py [--train-dir ../shared/train] [--out assistant/models/rarity.json.gz]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from train.reader_data import Terms, read_jsonl, sha256  # noqa: E402

MIN_DF = 3  # rarer terms are left out: the product counts a term it does not find as unseen


def build(train_dir: Path) -> dict[str, Any]:
    """The paragraph count and each term's paragraph frequency over the training articles."""
    terms = Terms()
    for a in read_jsonl(train_dir / "articles.jsonl"):
        text = f"{a['title']}\n\n{a['text']}"
        terms.count([p for p in text.split("\n\n") if p.strip()])
    df = {t: n for t, n in sorted(terms.df.items()) if n >= MIN_DF}
    return {
        "paragraphs": terms.n,
        "min_df": MIN_DF,
        "built_by": "make train (train/rarity.py)",
        "train_sha256": {"articles.jsonl": sha256(train_dir / "articles.jsonl")},
        "df": df,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-dir", type=Path, default=PROJECT.parent / "shared" / "train")
    ap.add_argument("--out", type=Path, default=PROJECT / "assistant" / "models" / "rarity.json.gz")
    args = ap.parse_args(argv)
    started = time.monotonic()
    table = build(args.train_dir)
    body = json.dumps(table, separators=(",", ":")).encode()
    # No name and mtime 0 in the header: the same data gives the same bytes, wherever written.
    with args.out.open("wb") as out, gzip.GzipFile("", "wb", 9, out, mtime=0) as f:
        f.write(body)
    print(
        f"{args.out}: {table['paragraphs']} paragraphs, {len(table['df'])} terms "
        f"in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
