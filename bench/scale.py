"""Embedded store vs a local Chroma server, on a slice of the benchmark corpus.

Embeds the first N articles once, writes the same vectors into an embedded store and into a
store on a `chroma run` server on 127.0.0.1, then reports for each: write time, `ask` latency
(p50/p95 over the dev questions), disk per 1,000 articles; and for the server, how long a fresh
replica takes to fill its cache and one look for changes. Prints a Markdown table and writes it
to bench/results/scale-<date>-<commit>.md. Usage (from the project root):

    .venv/bin/python bench/scale.py [--articles 200] [--questions 60] [--shared PATH]
                                    [--vectors FILE]

With --vectors, the vectors are kept in FILE (a pickle) and reused by the next run over the
same articles, so a re-run measures the stores without paying for the model again.
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
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from assistant.articles import Article, load_file
from assistant.assistant import Assistant
from assistant.chunking import chunk_article
from assistant.embeddings import ModelEmbedder
from assistant.settings import PROJECT_DIR, Settings
from assistant.store import Embedded, Pending


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_chroma(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = free_port()
    server = subprocess.Popen(
        [chroma, "run", "--path", str(folder), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"ANONYMIZED_TELEMETRY": "False", "PATH": "/usr/bin:/bin"},
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1)
            return server, url
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("the chroma server did not start")


def embed_once(
    assistant: Assistant, articles: list[Article]
) -> tuple[list[list[Pending]], Embedded, float]:
    """The articles as write batches, their vectors, and the seconds the model took."""
    s = assistant.settings
    batches: list[list[Pending]] = [[]]
    for article in articles:
        chunks = chunk_article(article.id, article.text, s.chunk_chars, s.chunk_overlap_sentences)
        if chunks:
            batches[-1].append(Pending(article, chunks))
        if sum(len(p.chunks) for p in batches[-1]) >= s.write_batch_chunks:
            batches.append([])
    embedded: Embedded = {}
    started = time.perf_counter()
    for i, batch in enumerate(batches, 1):
        embedded.update(assistant.store.embed(batch))
        log(f"embedded batch {i}/{len(batches)}")
    return [b for b in batches if b], embedded, time.perf_counter() - started


def ask_times(assistant: Assistant, questions: list[dict[str, Any]]) -> list[float]:
    for q in questions[:3]:  # warm-up: caches, the keyword index
        assistant.ask(q["question"])
    times = []
    for q in questions:
        as_of = date.fromisoformat(q["question_date"][:10]) if q.get("question_date") else None
        started = time.perf_counter()
        assistant.ask(q["question"], as_of=as_of)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=200)
    ap.add_argument("--questions", type=int, default=60)
    ap.add_argument("--shared", type=Path, default=PROJECT_DIR.parent / "shared" / "bench")
    ap.add_argument("--vectors", type=Path, help="keep the vectors here, reuse them next time")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    corpus = args.shared / "corpus.jsonl"
    slice_path = work / "slice.jsonl"
    with corpus.open() as src, slice_path.open("w") as out:
        for n, line in enumerate(src):
            if n >= args.articles:
                break
            out.write(line)
    articles = [a for _, a in load_file(slice_path, 10**9) if isinstance(a, Article)]
    questions = [
        json.loads(line)
        for line in (args.shared / "queries_dev.jsonl").read_text().splitlines()[: args.questions]
    ]
    defaults = Settings()
    embedder = ModelEmbedder(defaults.embedding_engine, defaults.cache_dir)
    server, url = start_chroma(work / "server")
    rows: dict[str, dict[str, Any]] = {}
    try:
        embedded_mode = Assistant(Settings(data_dir=work / "embedded"), embedder=embedder)
        if args.vectors and args.vectors.exists():
            batches, vectors, embed_s = pickle.loads(args.vectors.read_bytes())
        else:
            batches, vectors, embed_s = embed_once(embedded_mode, articles)
            if args.vectors:
                args.vectors.write_bytes(pickle.dumps((batches, vectors, embed_s)))
        chunks = sum(len(p.chunks) for b in batches for p in b)
        n_articles = sum(len(b) for b in batches)
        served = Assistant(Settings(data_dir=work / "cache-a", chroma_url=url), embedder=embedder)
        for name, assistant in (("embedded", embedded_mode), ("server", served)):
            started = time.perf_counter()
            for batch in batches:
                assistant.store.write(batch, {p.article.id: vectors[p.article.id] for p in batch})
            assistant.store.refresh_keywords()
            write_s = time.perf_counter() - started
            log(f"{name}: written in {write_s:.1f} s")
            times = ask_times(assistant, questions)
            rows[name] = {
                "write_s": write_s,
                "p50_ms": statistics.median(times) * 1000,
                "p95_ms": percentile(times, 95) * 1000,
            }
        rows["embedded"]["disk"] = folder_bytes(work / "embedded")
        rows["server"]["disk"] = folder_bytes(work / "server") + folder_bytes(work / "cache-a")
        rows["server"]["server_disk"] = folder_bytes(work / "server")
        rows["server"]["server_sqlite"] = (work / "server" / "chroma.sqlite3").stat().st_size
        rows["server"]["cache_disk"] = folder_bytes(work / "cache-a")
        started = time.perf_counter()
        replica = Assistant(Settings(data_dir=work / "cache-b", chroma_url=url), embedder=embedder)
        replica.list_articles()  # the first look fills the cache from the records
        replica.store.refresh_keywords()
        fill_s = time.perf_counter() - started
        assert replica.store.replica is not None
        looks = []
        for _ in range(20):
            started = time.perf_counter()
            replica.store.replica.catch_up(force=True)
            looks.append(time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait(timeout=20)
    per_k = 1000 / n_articles
    lines = [
        f"Scale-out bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: the first {n_articles} "
        f"articles of corpus.jsonl ({chunks} chunks), {len(questions)} dev questions, "
        f"{os.cpu_count()} cores (shared). Embedding once: {embed_s:.0f} s "
        f"({chunks / embed_s:.1f} chunks/s).",
        "",
        "| store | write s (vectors given) | ask p50 ms | ask p95 ms | disk per 1,000 articles |",
        "|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['write_s']:.1f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | "
            f"{r['disk'] * per_k / 1e6:.0f} MB |"
        )
    s = rows["server"]
    lines += [
        "",
        f"Server mode disk per 1,000 articles: server {s['server_disk'] * per_k / 1e6:.0f} MB "
        f"(of which its SQLite file, with metadata, documents and their full-text index, "
        f"{s['server_sqlite'] * per_k / 1e6:.0f} MB; the rest vector segments), "
        f"each process's cache {s['cache_disk'] * per_k / 1e6:.0f} MB. A fresh replica filled "
        f"its cache (and keyword index) in {fill_s:.1f} s; one look for changes "
        f"(none) p50 {statistics.median(looks) * 1000:.1f} ms.",
    ]
    report = "\n".join(lines)
    print(report)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=PROJECT_DIR
    ).stdout.strip()
    out = PROJECT_DIR / "bench" / "results" / f"scale-{datetime.now(UTC):%Y%m%d}-{commit}.md"
    out.write_text(report + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
