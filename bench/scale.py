"""Embedded store vs a local Chroma server, at growing corpus sizes.

Takes the benchmark corpus's articles in order, with their vectors either embedded here once or
read from an index `make bench` built (`--from-index bench/cache/assistant-corpus`), and writes
the same vectors into an embedded store and into a store on a `chroma run` server on 127.0.0.1,
stopping at each size of `--at` to measure both: a fresh app process opens the store and asks
the dev questions (p50/p95 of `ask`, its resident memory), and the disk per 1,000 articles. At
the last size, a process with an empty cache folder joins the server (how long it takes to fill
its cache). Prints a Markdown table and writes it to bench/results/scale-<date>-<commit>.md.
Usage (from the project root):

    .venv/bin/python -m bench.scale [--articles 200] [--at 100,200] [--questions 60]
                                  [--from-index DIR] [--vectors FILE] [--shared PATH]

With --vectors, embedded vectors are kept in FILE (a pickle) and reused by the next run over
the same articles, so a re-run measures the stores without paying for the model again.
`--articles 0` takes the whole corpus.
"""

# The offline environment is set before the other imports, on purpose:
# ruff: noqa: E402
from __future__ import annotations

import os
import pickle

from assistant.settings import OFFLINE_ENV

os.environ.update(OFFLINE_ENV)

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from assistant.articles import Article, load_file
from assistant.assistant import Assistant
from assistant.chunking import chunk_article
from assistant.embeddings import ModelEmbedder
from assistant.settings import PROJECT_DIR, Settings
from assistant.store import Embedded, Pending
from bench.run import product_article
from tests.chroma_server import chroma_server


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def write_batches(settings: Settings, articles: list[Article]) -> list[list[Pending]]:
    """The articles chunked as `assistant add` chunks them, in write batches."""
    batches: list[list[Pending]] = [[]]
    for article in articles:
        chunks = chunk_article(
            article.id, article.text, settings.chunk_chars, settings.chunk_overlap_sentences
        )
        if chunks:
            batches[-1].append(Pending(article, chunks))
        if sum(len(p.chunks) for p in batches[-1]) >= settings.write_batch_chunks:
            batches.append([])
    return [b for b in batches if b]


def embedded_here(assistant: Assistant, batches: list[list[Pending]]) -> tuple[Embedded, float]:
    """The batches' vectors from the model, and the seconds it took."""
    vectors: Embedded = {}
    started = time.perf_counter()
    for i, batch in enumerate(batches, 1):
        vectors.update(assistant.store.embed(batch))
        log(f"embedded batch {i}/{len(batches)}")
    return vectors, time.perf_counter() - started


def read_from_index(index: Path, articles: list[Article]) -> Iterator[tuple[Pending, Embedded]]:
    """Each article as a built index holds it: its chunks, chunk vectors and sentence vectors."""
    source = Assistant(Settings(data_dir=index))
    store = source.store
    collection = store.vectors._collection
    for article in articles:
        pending = store.stored(article.id)
        if pending is None:
            raise SystemExit(f"{index}: article {article.id} is not in this index")
        ids = [c.id for c in pending.chunks]
        got = collection.get(ids=ids, include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"], strict=True))
        keys = [(article.id, a, b) for c in pending.chunks for a, b in c.sentences]
        sentences = store.sentence_vectors(list(dict.fromkeys(keys)))
        yield pending, {article.id: ([list(by_id[i]) for i in ids], sentences)}
    source.close()


def measure(args: argparse.Namespace) -> None:
    """In a fresh process: open a store, ask the questions, print the figures as JSON."""
    started = time.perf_counter()
    assistant = Assistant(Settings(data_dir=args.measure, chroma_url=args.chroma_url or None))
    count = len(assistant.list_articles())  # a replica with an empty cache fills it here
    assistant.store.refresh_keywords()
    open_s = time.perf_counter() - started
    questions = read_questions(args.shared, args.questions)
    for q in questions[:3]:  # warm-up: caches, the keyword index
        assistant.ask(q["question"])
    times = []
    for q in questions:
        as_of = date.fromisoformat(q["question_date"][:10]) if q.get("question_date") else None
        t = time.perf_counter()
        assistant.ask(q["question"], as_of=as_of)
        times.append(time.perf_counter() - t)
    status = Path("/proc/self/status").read_text()
    rss = memory(status, "VmRSS")
    # Not getrusage: its peak carries over from the parent that forked this process.
    peak = memory(status, "VmHWM")
    print(
        json.dumps(
            {
                "articles": count,
                "open_s": open_s,
                "p50_ms": statistics.median(times) * 1000,
                "p95_ms": percentile(times, 95) * 1000,
                "rss": rss,
                "peak_rss": peak,
            }
        )
    )


def memory(status: str, field: str) -> int:
    """Bytes of a memory field (`VmRSS`, `VmHWM`) of a /proc/PID/status text."""
    return int(status.split(f"{field}:")[1].split()[0]) * 1024


def server_rss(folder: Path) -> int:
    """The resident memory of the `chroma run` process storing under `folder` (0 if none)."""
    for proc in Path("/proc").iterdir():
        try:
            if str(folder) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                return memory((proc / "status").read_text(), "VmRSS")
        except (OSError, IndexError, ValueError):
            continue
    return 0


def read_questions(shared: Path, n: int) -> list[dict[str, Any]]:
    lines = (shared / "queries_dev.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[:n]]


def measured(args: argparse.Namespace, folder: Path, chroma_url: str = "") -> dict[str, Any]:
    """The figures of a fresh app process over this data folder (and server)."""
    cmd = [sys.executable, "-m", "bench.scale", "--measure", str(folder)]
    cmd += ["--questions", str(args.questions), "--shared", str(args.shared)]
    cmd += ["--chroma-url", chroma_url] if chroma_url else []
    done = subprocess.run(cmd, cwd=PROJECT_DIR, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"measuring {folder} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=200, help="0: the whole corpus")
    ap.add_argument("--at", default="", help="comma-separated sizes to measure at (and the end)")
    ap.add_argument("--questions", type=int, default=60)
    ap.add_argument("--shared", type=Path, default=PROJECT_DIR.parent / "shared" / "bench")
    ap.add_argument("--vectors", type=Path, help="keep embedded vectors here, reuse them next time")
    ap.add_argument("--from-index", type=Path, help="read the vectors from this built index")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--chroma-url", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        return measure(args)

    work = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    corpus = work / "corpus.jsonl"  # in the import format, as `make bench` imports it
    with (args.shared / "corpus.jsonl").open() as src, corpus.open("w") as out:
        for n, line in enumerate(src):
            if args.articles and n >= args.articles:
                break
            out.write(json.dumps(product_article(json.loads(line))) + "\n")
    articles = [a for _, a in load_file(corpus, 10**9) if isinstance(a, Article)]
    sizes = sorted({int(x) for x in args.at.split(",") if x.strip()} | {len(articles)})
    defaults = Settings()
    embedder = ModelEmbedder(defaults.embedding_engine, defaults.cache_dir)
    embed_s: float | None = None
    if args.from_index:
        source = read_from_index(args.from_index, articles)
    else:
        writer = Assistant(Settings(data_dir=work / "embed"), embedder=embedder)
        batches = write_batches(defaults, articles)
        if args.vectors and args.vectors.exists():
            vectors, embed_s = pickle.loads(args.vectors.read_bytes())
        else:
            vectors, embed_s = embedded_here(writer, batches)
            if args.vectors:
                args.vectors.write_bytes(pickle.dumps((vectors, embed_s)))
        source = ((p, {p.article.id: vectors[p.article.id]}) for b in batches for p in b)
    rows: list[dict[str, Any]] = []
    chunks = 0
    with chroma_server(work / "server") as url:
        stores = {
            "embedded": Assistant(Settings(data_dir=work / "embedded"), embedder=embedder),
            "server": Assistant(
                Settings(data_dir=work / "cache-a", chroma_url=url), embedder=embedder
            ),
        }
        write_s = dict.fromkeys(stores, 0.0)
        written = 0
        pending: list[Pending] = []
        given: Embedded = {}
        for size in sizes:
            for item, its_vectors in source:
                pending.append(item)
                given.update(its_vectors)
                chunks += len(item.chunks)
                written += 1
                if (
                    sum(len(p.chunks) for p in pending) >= defaults.write_batch_chunks
                    or written == size
                ):
                    for name, assistant in stores.items():
                        t = time.perf_counter()
                        assistant.store.write(pending, given)
                        write_s[name] += time.perf_counter() - t
                    pending, given = [], {}
                    if written % 500 < 20:
                        log(f"written {written} articles")
                if written == size:
                    break
            keyword_s = {}
            for name, assistant in stores.items():
                t = time.perf_counter()
                assistant.store.refresh_keywords()
                keyword_s[name] = time.perf_counter() - t
                write_s[name] += keyword_s[name]
            log(f"{written} articles ({chunks} chunks) written; measuring")
            folders = {
                "embedded": [work / "embedded"],
                "server": [work / "server", work / "cache-a"],
            }
            for name in stores:
                figures = measured(args, folders[name][-1], url if name == "server" else "")
                figures["server_rss"] = server_rss(work / "server") if name == "server" else 0
                disk = sum(folder_bytes(f) for f in folders[name])
                rows.append(
                    {
                        "store": name,
                        "articles": written,
                        "chunks": chunks,
                        "write_s": write_s[name],
                        "keyword_s": keyword_s[name],
                        "disk": disk,
                        **figures,
                    }
                )
                log(f"{name} at {written}: {figures}")
        fresh = measured(args, work / "cache-b", url)
        server_disk = folder_bytes(work / "server")
        cache_disk = folder_bytes(work / "cache-a")
        for assistant in stores.values():
            assistant.close()
    report = render(rows, fresh, server_disk, cache_disk, embed_s, args)
    print(report)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=PROJECT_DIR
    ).stdout.strip()
    out = PROJECT_DIR / "bench" / "results" / f"scale-{datetime.now(UTC):%Y%m%d}-{commit}.md"
    out.write_text(report + "\n")
    shutil.rmtree(work, ignore_errors=True)


def render(
    rows: list[dict[str, Any]],
    fresh: dict[str, Any],
    server_disk: int,
    cache_disk: int,
    embed_s: float | None,
    args: argparse.Namespace,
) -> str:
    last = rows[-1]
    where = (
        f"read from {args.from_index}" if args.from_index else f"embedded here in {embed_s:.0f} s"
    )
    lines = [
        f"Scale bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: the first {last['articles']:,} "
        f"articles of corpus.jsonl ({last['chunks']:,} chunks; vectors {where}), "
        f"{args.questions} dev questions asked by a fresh app process at each size, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| store | articles | write s (vectors given, cumulative) | keyword index rebuild s | "
        "open s | ask p50 ms | ask p95 ms | app RSS MB (peak) | disk per 1,000 articles |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['store']} | {r['articles']:,} | {r['write_s']:.1f} | {r['keyword_s']:.1f} | "
            f"{r['open_s']:.1f} | "
            f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['rss'] / 2**20:.0f} "
            f"({r['peak_rss'] / 2**20:.0f})"
            + (f" + server {r['server_rss'] / 2**20:.0f}" if r["server_rss"] else "")
            + f" | {r['disk'] * 1000 / r['articles'] / 1e6:.0f} MB |"
        )
    per_k = 1000 / last["articles"]
    lines += [
        "",
        f"Server mode at {last['articles']:,} articles, per 1,000 articles: the server's folder "
        f"{server_disk * per_k / 1e6:.0f} MB, each process's cache "
        f"{cache_disk * per_k / 1e6:.0f} MB. "
        f"A process with an empty cache folder filled it from the server (and built its keyword "
        f"index) in {fresh['open_s']:.1f} s, then answered with p50 {fresh['p50_ms']:.0f} ms, "
        f"p95 {fresh['p95_ms']:.0f} ms, RSS {fresh['rss'] / 2**20:.0f} MB.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
