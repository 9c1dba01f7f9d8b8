"""Load test: many conversations at once against the running app while articles are added.

Starts the chat window (`python ui.py`) on a free 127.0.0.1 port over a fresh data directory
indexed with a slice of the benchmark corpus, then drives it through `gradio_client` as
browsers would: N conversations in parallel threads, each asking a fixed number of questions in
one session (so follow-ups carry the conversation), while another client uploads articles
through the app's own "add" endpoint. Every quote in every answer is checked against the
article's text: the characters its citation link names must be the quote, exactly. Reports
errors (target: zero), p50/p95 latency and throughput to stdout and to
bench/results/load-<date>-<commit>.md.

`--scale-out` runs one real `chroma run` server and two app processes, each with its own data
folder (a cache) and the same ASSISTANT_CHROMA_URL: the conversations alternate between the two
processes while the articles are added through the first (report: load-<date>-<commit>-scaleout.md).
Usage (from the project root):

    .venv/bin/python -m bench.load [--conversations 20] [--questions 3] [--articles 100]
                                   [--add-articles 10] [--add-batch 5] [--shared PATH]
                                   [--scale-out]
"""

# The offline environment is set before the other imports, on purpose:
# ruff: noqa: E402
from __future__ import annotations

import os

from assistant.settings import OFFLINE_ENV

os.environ.update(OFFLINE_ENV)

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from bench.run import product_article, read_jsonl
from tests.chroma_server import chroma_server, free_port, stop

PROJECT = Path(__file__).resolve().parent.parent
RESULTS = PROJECT / "bench" / "results"
STARTUP_TIMEOUT_S = 600  # model load on a busy two-core machine


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def git_commit() -> str:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True, text=True
    )
    return head.stdout.strip() or "nogit"


def machine() -> str:
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return f"{os.cpu_count()} cores, {mem_kb / 1024**2:.1f} GiB RAM"


# --- the inputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    questions: list[str]  # one list per conversation, flattened in order
    index: list[dict[str, Any]]  # indexed before the app starts
    extra: list[dict[str, Any]]  # added through the app during the run


def choose_inputs(shared: Path, n_questions: int, n_articles: int, n_extra: int) -> Inputs:
    """The first questions whose evidence articles fit in the slice, and that slice."""
    corpus = read_jsonl(shared / "corpus_small.jsonl")
    by_id = {a["id"]: a for a in corpus}
    queries = read_jsonl(shared / "queries_small_dev.jsonl")
    chosen_ids: list[str] = []
    questions: list[str] = []
    for q in queries:
        gold = [g for g in q.get("gold_ids") or [] if g in by_id]
        new = [g for g in gold if g not in chosen_ids]
        if len(chosen_ids) + len(new) <= n_articles:
            chosen_ids.extend(new)
            questions.append(q["question"])
    for a in corpus:  # fill the slice up with other articles, in corpus order
        if len(chosen_ids) >= n_articles:
            break
        if a["id"] not in chosen_ids:
            chosen_ids.append(a["id"])
    extra = [a for a in corpus if a["id"] not in chosen_ids][:n_extra]
    # Fewer fitting questions than needed: they repeat (in other conversations).
    cycled = [questions[i % len(questions)] for i in range(n_questions)]
    # In the assistant's import format (the crawler's date as `published`, as bench/run.py).
    index = [product_article(by_id[i]) for i in chosen_ids]
    return Inputs(cycled, index, [product_article(a) for a in extra])


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


# --- the app ---------------------------------------------------------------------------------


@dataclass
class App:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def stop(self) -> None:
        """Stop the server by its own process id."""
        stop(self.process)


def start_app(data_dir: Path, port: int, log_path: Path, env_extra: dict[str, str]) -> App:
    env = {**os.environ, **OFFLINE_ENV, "ASSISTANT_DATA_DIR": str(data_dir), **env_extra}
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(PROJECT / "ui.py"), "--port", str(port)],
            cwd=PROJECT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    app = App(process, url, log_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited at start:\n{log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return app
        except OSError:
            if time.monotonic() > deadline:
                app.stop()
                raise
            time.sleep(0.5)


def client(url: str) -> Any:
    from gradio_client import Client

    # download_files=False: the conversation export each answer offers is not fetched.
    return Client(url, verbose=False, download_files=False)


# --- the drivers -----------------------------------------------------------------------------


@dataclass
class Asked:
    conversation: int
    question: str
    first_s: float | None  # until the answer's first words were on screen
    total_s: float  # until the answer was complete
    error: str | None = None
    quotes: int = 0  # quotes shown, each checked against its article's text
    answer: str = ""


def message_text(message: dict[str, Any]) -> str:
    """A chat message's text: a string, or (Gradio 6) a list of text parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


# A quote in the chat: `> body [\[n\]](#cite-n-start-end-id)` (assistant/conversation.py).
CITED_QUOTE = re.compile(
    r"^> (?P<body>(?:.|\n> )*?) \[\\\[\d+\\\]\]"
    r"\(#cite-\d+-(?P<start>\d+)-(?P<end>\d+)-(?P<id>[^)\s]+)\)",
    re.M,
)


QUOTE_ERRORS = ("quote not exact", "a quote cites")


def check_quotes(answer: str, texts: dict[str, str]) -> tuple[int, str | None]:
    """How many quotes the answer shows, and the first that is not its article's text exactly.

    Exact: the characters of the input article that the citation link names, rendered as the
    chat renders a quote (Markdown-escaped, in quote marks unless already a quotation), are
    what the chat shows.
    """
    from assistant.answer import is_quotation
    from assistant.conversation import md_escape

    found = list(CITED_QUOTE.finditer(answer))
    for m in found:
        article_id = unquote(m["id"])
        text = texts.get(article_id)
        if text is None:
            return len(found), f"a quote cites an unknown article {article_id!r}"
        cited = text[int(m["start"]) : int(m["end"])]
        body = md_escape(cited).replace("\n", "\n> ")
        expected = body if is_quotation(cited) else f"“{body}”"
        if not cited.strip() or m["body"] != expected:
            return len(found), (
                f"quote not exact in {article_id} at {m['start']}-{m['end']}: "
                f"shown {m['body'][:80]!r}, the article has {cited[:80]!r}"
            )
    return len(found), None


def ask(app: Any, conversation: int, question: str, texts: dict[str, str] | None = None) -> Asked:
    """One question through the app's `ask` endpoint, as the chat box sends it."""
    start = time.monotonic()
    first: float | None = None
    answer = ""
    try:
        job = app.submit(question, "", "", api_name="/ask")  # no period: since, until empty
        for output in job:
            chat = output[0] if isinstance(output, (list, tuple)) else None
            if isinstance(chat, list) and chat and chat[-1].get("role") == "assistant":
                text = message_text(chat[-1])
                if text and "Searching the articles" not in text:
                    answer = text
                    first = first if first is not None else time.monotonic() - start
        job.result()  # raises if the event failed
    except Exception as e:
        return Asked(conversation, question, first, time.monotonic() - start, f"{e!r}"[:300])
    total = time.monotonic() - start
    if not answer:
        return Asked(conversation, question, first, total, "no answer in the chat")
    if answer.startswith("**Could not answer:**"):
        return Asked(conversation, question, first, total, answer[:300])
    if texts is None:
        return Asked(conversation, question, first, total)
    quotes, wrong = check_quotes(answer, texts)
    return Asked(conversation, question, first, total, wrong, quotes, answer)


def seen_by_other(url: str, inputs: Inputs) -> int:
    """How many of the articles added during the run a process cites when asked their title."""
    texts = {a["id"]: a["text"] for a in [*inputs.index, *inputs.extra]}
    seen = 0
    for article in inputs.extra:
        start = time.monotonic()
        # A new session for each: not a follow-up to the previous title.
        asked = ask(client(url), -1, str(article["title"]), texts)
        if asked.error:
            log(f"asking about {article['id']}: {asked.error}")
            continue
        answer = asked.answer
        cited = {unquote(m["id"]) for m in CITED_QUOTE.finditer(answer)}
        if article["id"] in cited:
            seen += 1
        log(
            f"{article['id']}: {'cited' if article['id'] in cited else 'not cited'} "
            f"({time.monotonic() - start:.1f} s)"
        )
    return seen


@dataclass
class Added:
    articles: int
    seconds: float
    added: int = 0
    failed: int = 0
    error: str | None = None


SUMMARY = re.compile(r"(\d+) added, (\d+) unchanged, (\d+) replaced, (\d+) failed")


def add(app: Any, path: Path, articles: int) -> Added:
    """One upload through the app's `add` endpoint (the "Add files" button)."""
    from gradio_client import handle_file

    start = time.monotonic()
    try:
        result = app.predict([handle_file(str(path))], api_name="/add")
    except Exception as e:
        return Added(articles, time.monotonic() - start, error=f"{e!r}"[:300])
    seconds = time.monotonic() - start
    found = SUMMARY.search(str(result[0]))
    if not found:
        return Added(articles, seconds, error=f"no report: {str(result[0])[:200]}")
    added, failed = int(found.group(1)), int(found.group(4))
    return Added(articles, seconds, added, failed, f"{failed} failed" if failed else None)


@dataclass
class Run:
    asked: list[Asked] = field(default_factory=list)
    adds: list[Added] = field(default_factory=list)
    questions_wall_s: float = 0.0
    adds_window: tuple[float, float] = (0.0, 0.0)
    lock: threading.Lock = field(default_factory=threading.Lock)


def drive(
    urls: list[str], inputs: Inputs, conversations: int, per: int, batches: list[Path]
) -> Run:
    """Conversation n talks to urls[n % len(urls)]; the uploads go through urls[0]."""
    run = Run()
    texts = {a["id"]: a["text"] for a in [*inputs.index, *inputs.extra]}
    # Each its own browser session; the last one uploads.
    clients = [client(urls[n % len(urls)]) for n in range(conversations)] + [client(urls[0])]
    barrier = threading.Barrier(conversations + 2)

    def converse(n: int) -> None:
        barrier.wait()
        for question in inputs.questions[n * per : (n + 1) * per]:
            result = ask(clients[n], n, question, texts)
            with run.lock:
                run.asked.append(result)

    def add_all() -> None:
        barrier.wait()
        start = time.monotonic()
        for path in batches:
            result = add(clients[-1], path, len(read_jsonl(path)))
            with run.lock:
                run.adds.append(result)
        run.adds_window = (start, time.monotonic())

    threads = [threading.Thread(target=converse, args=(n,)) for n in range(conversations)]
    adder = threading.Thread(target=add_all)
    for t in [*threads, adder]:
        t.start()
    barrier.wait()
    start = time.monotonic()
    for t in threads:
        t.join()
    end = time.monotonic()
    run.questions_wall_s = end - start
    adder.join()
    adds_start, adds_end = run.adds_window
    run.adds_window = (adds_start - start, adds_end - start)
    return run


# --- the report ------------------------------------------------------------------------------


def report(args: argparse.Namespace, inputs: Inputs, run: Run, extra: dict[str, Any]) -> str:
    totals = [a.total_s * 1000 for a in run.asked if a.error is None]
    firsts = [a.first_s * 1000 for a in run.asked if a.error is None and a.first_s is not None]
    errors = [a for a in run.asked if a.error]
    add_errors = [a for a in run.adds if a.error]
    n = len(run.asked)
    rate = len(totals) / run.questions_wall_s if run.questions_wall_s else 0.0

    def ms(values: list[float], p: int) -> str:
        return f"{percentile(values, p):,.0f}" if values else "—"

    quotes = sum(a.quotes for a in run.asked)
    inexact = sum(1 for a in run.asked if a.error and a.error.startswith(QUOTE_ERRORS))
    if args.scale_out:
        setup = (
            "two app processes (`python ui.py`, each its own data folder as a cache, the same "
            "`ASSISTANT_CHROMA_URL`) sharing one `chroma run` server on 127.0.0.1; conversations "
            "alternate between the two processes, uploads go through the first"
        )
    else:
        setup = "`python ui.py` on 127.0.0.1"
    lines = [
        f"**{extra['date']}** · {extra['machine']} (1-min load {extra['load_start']:.2f} at "
        f"start, {extra['load_end']:.2f} at end) · commit `{extra['commit']}` · "
        f"`bench/load.py {' '.join(extra['argv'])}`",
        "",
        f"{args.conversations} conversations × {args.questions} questions in parallel "
        f"(gradio_client, one session each) against {setup}, over "
        f"{len(inputs.index)} articles of corpus_small; meanwhile {len(inputs.extra)} articles "
        f"uploaded through the app's Add files endpoint in {len(run.adds)} batches.",
        "",
        "| questions | errors | quotes checked | answers with an inexact quote "
        "| first words p50 ms | p95 ms | complete answer p50 ms | p95 ms "
        "| max ms | throughput q/s | articles added during the run | add errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {n} | {len(errors)} | {quotes} | {inexact} | {ms(firsts, 50)} | {ms(firsts, 95)} | "
        f"{ms(totals, 50)} | "
        f"{ms(totals, 95)} | {max(totals, default=0):,.0f} | {rate:.2f} | "
        f"{sum(a.added for a in run.adds)} of {len(inputs.extra)} | {len(add_errors)} |",
        "",
        "Notes:",
        f"- questions took {run.questions_wall_s:.1f} s wall clock; the uploads ran from "
        f"{run.adds_window[0]:.1f} s to {run.adds_window[1]:.1f} s after the start "
        f"(each batch: {', '.join(f'{a.seconds:.1f} s' for a in run.adds) or '—'})",
        "- first words: the answer's first streamed block in the chat; complete: the last one "
        "(the app streams an answer in blocks 60 ms apart, so a long answer adds a little)",
        f"- the app serves up to 8 questions at once (queue concurrency), adds one at a time; "
        f"index built before the start with `assistant add`: {extra['index_s']:.0f} s",
        f"- articles in the store after the run: {extra['stored_after']} "
        f"(expected {len(inputs.index) + len(inputs.extra)})",
        "- quotes checked exact: each quote in each answer compared with the characters of the "
        "input article its citation link names (Markdown-escaped as the chat shows them)",
    ]
    if args.scale_out:
        by = extra["stored_by"]
        lines.append(
            f"- articles listed through each process's folder after the run: "
            f"{', '.join(str(x) for x in by)}; warm-up question on each process (the second "
            f"filling its cache first): {extra.get('warmup_s', 0.0):.1f} s"
        )
        lines.append(
            f"- afterwards, the second process asked each added article's title (one at a "
            f"time) cited that article with exact quotes for {extra.get('seen_by_other', 0):.0f}"
            f" of {len(inputs.extra)}"
        )
        for k, _ in enumerate(by):
            mine = [a.total_s * 1000 for a in run.asked if a.conversation % len(by) == k]
            lines.append(
                f"- process {k + 1}: {len(mine)} questions, complete answer p50 "
                f"{ms(mine, 50)} ms, p95 {ms(mine, 95)} ms"
            )
    for a in errors[:10]:
        lines.append(f"- error, conversation {a.conversation}: {a.question!r}: {a.error}")
    for a in add_errors:
        lines.append(f"- add error: {a.error}")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--conversations", type=int, default=None, help="default 20, or 50 with --scale-out"
    )
    parser.add_argument("--questions", type=int, default=3, help="questions per conversation")
    parser.add_argument("--articles", type=int, default=100, help="articles indexed at start")
    parser.add_argument("--add-articles", type=int, default=10, help="added during the run")
    parser.add_argument("--add-batch", type=int, default=5, help="articles per upload")
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared" / "bench")
    parser.add_argument("--out", type=Path, default=None, help="report file (default: results)")
    parser.add_argument(
        "--scale-out",
        action="store_true",
        help="one chroma server, two app processes (conversations alternate between them)",
    )
    args = parser.parse_args(argv)
    if args.conversations is None:
        args.conversations = 50 if args.scale_out else 20
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    load_start = os.getloadavg()[0]
    inputs = choose_inputs(
        args.shared, args.conversations * args.questions, args.articles, args.add_articles
    )
    work = Path(tempfile.mkdtemp(prefix="assistant-load-"))
    extra_info: dict[str, float] = {}
    stored_by: list[int] = []
    data_dir = work / "data"
    env = {**os.environ, **OFFLINE_ENV, "ASSISTANT_DATA_DIR": str(data_dir)}
    cli = [sys.executable, "-m", "assistant.cli"]
    apps: list[App] = []
    servers = ExitStack()
    server_env: dict[str, str] = {}
    try:
        if args.scale_out:
            chroma_url = servers.enter_context(chroma_server(work / "chroma"))
            server_env = {"ASSISTANT_CHROMA_URL": chroma_url}
            env.update(server_env)
            log(f"chroma server at {chroma_url}")
        log(f"indexing {len(inputs.index)} articles into {data_dir}")
        t0 = time.monotonic()
        index = write_jsonl(work / "index.jsonl", inputs.index)
        subprocess.run([*cli, "add", "-q", str(index)], cwd=PROJECT, env=env, check=True)
        index_s = time.monotonic() - t0
        step = max(1, args.add_batch)
        batches = [
            write_jsonl(work / f"upload-{i // step + 1}.jsonl", inputs.extra[i : i + step])
            for i in range(0, len(inputs.extra), step)
        ]
        # Scale-out: the second process starts on a fresh folder and fills its cache from the
        # server. Both start at once (each loads the model).
        folders = [data_dir, work / "data-b"] if args.scale_out else [data_dir]
        starting: list[tuple[Path, int, Path]] = []
        for i, folder in enumerate(folders):
            port = free_port()
            log(f"starting app {i + 1} on 127.0.0.1:{port} over {folder}")
            starting.append((folder, port, work / f"app-{i + 1}.log"))
        threads_out: list[App | BaseException] = [RuntimeError("not started")] * len(starting)

        def start_one(i: int) -> None:
            folder, port, log_path = starting[i]
            try:
                threads_out[i] = start_app(folder, port, log_path, server_env)
            except BaseException as e:  # reported below, after both have returned
                threads_out[i] = e

        starters = [threading.Thread(target=start_one, args=(i,)) for i in range(len(starting))]
        for t in starters:
            t.start()
        for t in starters:
            t.join()
        apps = [a for a in threads_out if isinstance(a, App)]
        for a in threads_out:
            if not isinstance(a, App):
                raise a
        t0 = time.monotonic()
        for app in apps:  # warm-up, untimed (the second also fills its cache here if lazy)
            ask(client(app.url), -1, "What happened in the news this week?")
        extra_info["warmup_s"] = time.monotonic() - t0
        log(f"{args.conversations} conversations × {args.questions} questions, adding meanwhile")
        run = drive([a.url for a in apps], inputs, args.conversations, args.questions, batches)
        if args.scale_out:
            log("asking the second process about each article added through the first")
            extra_info["seen_by_other"] = float(seen_by_other(apps[1].url, inputs))
        for folder in folders:  # what each process's view of the store holds
            listed = subprocess.run(
                [*cli, "list", "--json"],
                cwd=PROJECT,
                env={**env, "ASSISTANT_DATA_DIR": str(folder)},
                capture_output=True,
                text=True,
            )
            count = sum(1 for line in listed.stdout.splitlines() if line.strip())  # JSON lines
            stored_by.append(count if listed.returncode == 0 else -1)
            if listed.returncode:
                log(f"list over {folder} failed: {listed.stderr[-500:]}")
    finally:
        for app in apps:
            app.stop()
        servers.close()
    stored = stored_by[0]
    extra = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "commit": git_commit(),
        "argv": sys.argv[1:] if argv is None else argv,
        "index_s": index_s,
        "stored_after": stored,
        "stored_by": stored_by,
        **extra_info,
    }
    text = report(args, inputs, run, extra)
    print(text)
    # The commit in the name: a second run on the same day no longer replaces the first.
    suffix = "-scaleout" if args.scale_out else ""
    out = args.out or RESULTS / f"load-{started:%Y-%m-%d}-{extra['commit']}{suffix}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    log(f"written to {out}")
    shutil.rmtree(work, ignore_errors=True)
    failures = [a for a in run.asked if a.error] + [a for a in run.adds if a.error]
    expected = len(inputs.index) + len(inputs.extra)
    return 1 if failures or any(n != expected for n in stored_by) else 0


if __name__ == "__main__":
    sys.exit(main())
