"""Two writers, one store: real processes sharing a data folder, and SIGKILLs mid-write.

After each, SQLite, Chroma and the keyword index must agree: the same articles and chunks, no
vector that no row refers to, every stored article found by its own words.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.assistant import Assistant
from assistant.keywords import KeywordIndex
from assistant.locking import WriteLock
from assistant.settings import Settings
from assistant.store import StoreBusy, index_text

pytestmark = pytest.mark.slow


def _article(label: str, i: int, version: int = 1) -> dict[str, str]:
    """A report with a fact of its own; version 1 runs to several chunks, version 2 to one."""
    fact = (
        f"The {label} valley water board met on day {i}. Engineer Dana Whitlock said pipe "
        f"section {label}{i} needs {i * 37 + version - 1} meters of new steel pipe."
    )
    filler = (
        " ".join(
            f"Residents of the {label} valley asked about item {j} of the plan on day {i}."
            for j in range(25)
        )
        if version == 1
        else f"The board will vote on the {label} valley plan next month."
    )
    return {
        "id": f"{label}-{i:02d}",
        "title": f"{label.title()} valley report {i}",
        "text": f"{fact} {filler}",
    }


def _feed(path: Path, label: str, n: int, version: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps(_article(label, i, version)) + "\n")
    return path


def _cli(data_dir: Path, *args: str, crash: str | None = None, **env: str) -> subprocess.Popen:
    environ = {
        **os.environ,
        "ASSISTANT_DATA_DIR": str(data_dir),
        "ASSISTANT_WRITE_BATCH_CHUNKS": "4",
        **env,
    }
    if crash:
        environ["ASSISTANT_TEST_CRASH_AT"] = crash
    return subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", *args],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, err = proc.communicate(timeout=400)
    return proc.returncode, out + err


def _rows(data_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Straight from SQLite: article id -> text, chunk id -> article id."""
    with sqlite3.connect(data_dir / "articles.sqlite3") as db:
        texts = dict(db.execute("SELECT id, text FROM articles").fetchall())
        chunks = dict(db.execute("SELECT id, article_id FROM chunks").fetchall())
    return texts, chunks


def _consistent(data_dir: Path, embedder) -> Assistant:
    """Open the store as the next start would, and check the three parts agree."""
    saved = KeywordIndex(data_dir / "keywords")
    # The keyword index a crash left is whole (the one before the crash, or the new one).
    assert saved.load() or saved.saved_generation() is None
    assistant = Assistant(Settings(data_dir=data_dir), embedder=embedder)
    store = assistant.store
    assistant.search("pipe")  # the first question settles what a crash left
    texts, chunk_owner = _rows(data_dir)
    with sqlite3.connect(data_dir / "articles.sqlite3") as db:
        assert db.execute("SELECT value FROM meta WHERE key='unsettled'").fetchone() is None
        with_sentences = {r[0] for r in db.execute("SELECT article_id FROM sentence_vectors")}
    assert with_sentences <= set(texts)
    assert set(chunk_owner.values()) == set(texts)  # every article has chunks

    got = store.vectors._collection.get(include=["documents", "metadatas"])
    assert sorted(got["ids"]) == sorted(chunk_owner), "Chroma holds other chunks than SQLite"
    stored = {aid: store.stored(aid) for aid in texts}
    expected_docs = {
        c.id: index_text(p.article.title, c.text)
        for p in stored.values()
        if p is not None
        for c in p.chunks
    }
    for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
        assert meta["article_id"] == chunk_owner[cid]
        assert doc == expected_docs[cid], f"{cid}: its vector is of another text"

    store.refresh_keywords()
    fresh = KeywordIndex(data_dir / "keywords")
    assert fresh.load()
    assert fresh.generation == store.generation
    assert fresh._chunk_ids == sorted(chunk_owner)

    # Every stored article is found by each index: by the word only it has, and by meaning.
    for article_id, pending in stored.items():
        assert pending is not None
        label, i = article_id.rsplit("-", 1)
        by_word = store.keyword_search(f"{label}{int(i)}", 3)
        assert by_word and by_word[0][0].startswith(f"{article_id}:"), article_id
        first = pending.chunks[0]
        vector = embedder.embed_query(expected_docs[first.id])
        assert store.dense_search(vector, 1)[0][0] == first.id, article_id
    return assistant


def _killed(proc: subprocess.Popen) -> None:
    code, output = _finish(proc)
    assert code == -signal.SIGKILL, f"the crash point was not reached ({code}): {output}"


# --- two writers -------------------------------------------------------------------------


def test_two_add_processes_on_one_folder_both_complete(tmp_path: Path, data_dir: Path, embedder):
    north = _feed(tmp_path / "north" / "feed.jsonl", "north", 16)
    _feed(tmp_path / "north" / "more.jsonl", "east", 8)
    south = _feed(tmp_path / "south" / "feed.jsonl", "south", 16)
    _feed(tmp_path / "south" / "more.jsonl", "west", 8)
    first = _cli(data_dir, "add", "-q", str(north.parent))
    second = _cli(data_dir, "add", "-q", str(south.parent))
    for proc in (first, second):
        code, output = _finish(proc)
        assert code == 0, output
        assert "24 added" in output and "0 failed" in output
    assistant = _consistent(data_dir, embedder)
    assert len(assistant.list_articles()) == 48
    answer = assistant.ask("How many meters of steel does pipe section south7 need?")
    assert any(f"{7 * 37} meters" in c.quote for c in answer.citations)
    assistant.close()


def test_a_second_writer_gives_up_with_a_clear_message(tmp_path: Path, data_dir: Path, embedder):
    feed = _feed(tmp_path / "feed.jsonl", "north", 3)
    data_dir.mkdir(parents=True)
    lock = WriteLock(data_dir / "write.lock", timeout=1)
    with lock.held():
        code, output = _finish(_cli(data_dir, "add", "-q", str(feed), ASSISTANT_LOCK_TIMEOUT="1"))
    assert code == 1
    assert str(data_dir) in output and "another program is writing" in output
    assert "Traceback" not in output
    code, output = _finish(_cli(data_dir, "add", "-q", str(feed)))
    assert code == 0 and "3 added" in output, output


def _cpu_seconds(pid: int, interval: float) -> float:
    """The CPU time the process uses over the next `interval` seconds (Linux /proc)."""

    def used() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    before = used()
    time.sleep(interval)
    return used() - before


def test_a_second_writer_waits_for_the_first(tmp_path: Path, data_dir: Path, embedder):
    feed = _feed(tmp_path / "feed.jsonl", "north", 6)
    data_dir.mkdir(parents=True)
    log = tmp_path / "add.log"
    with WriteLock(data_dir / "write.lock", timeout=1).held():
        with log.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "assistant.cli", "add", str(feed)],  # progress on stderr
                env={
                    **os.environ,
                    "ASSISTANT_DATA_DIR": str(data_dir),
                    "ASSISTANT_LOCK_TIMEOUT": "600",
                },
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        # Reading the articles (the bar drawn), then idle: waiting for the lock to write.
        deadline = time.monotonic() + 240
        while not log.stat().st_size and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        while proc.poll() is None and _cpu_seconds(proc.pid, 1.0) > 0.1:
            assert time.monotonic() < deadline
        assert proc.poll() is None, log.read_text()
        assert not (data_dir / "articles.sqlite3").exists() or _rows(data_dir)[0] == {}
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0 and "6 added" in out, log.read_text()
    _consistent(data_dir, embedder).close()


def test_readers_go_on_while_a_writer_holds_the_folder(tmp_path: Path, data_dir: Path, embedder):
    settings = Settings(data_dir=data_dir, lock_timeout=0.5)
    assistant = Assistant(settings, embedder=embedder)
    assistant.add([_feed(tmp_path / "feed.jsonl", "north", 4)])
    with WriteLock(data_dir / "write.lock", timeout=1).held():
        hits = assistant.search("meters of steel for pipe section north2")
        assert hits[0].article_id == "north-02"
        with pytest.raises(StoreBusy, match="another program is writing"):
            assistant.remove(["north-01"])
        with pytest.raises(StoreBusy, match=str(data_dir)):
            assistant.add([_feed(tmp_path / "more.jsonl", "south", 2)])
        pasted = assistant.add_text("The south valley board met on Monday to vote on pipes.")
        assert pasted.count("failed") == 1
        assert "another program is writing" in (pasted.failed[0].reason or "")
    assert assistant.remove(["north-01"]) == ["north-01"]
    assistant.close()


def test_a_running_reader_sees_what_another_process_added(tmp_path: Path, data_dir: Path, embedder):
    assistant = Assistant(Settings(data_dir=data_dir), embedder=embedder)
    assistant.add([_feed(tmp_path / "feed.jsonl", "north", 4)])
    assert assistant.search("pipe section north3")[0].article_id == "north-03"
    code, output = _finish(
        _cli(data_dir, "add", "-q", str(_feed(tmp_path / "s.jsonl", "south", 4)))
    )
    assert code == 0, output
    hits = assistant.search("meters of steel for pipe section south2")
    assert hits[0].article_id == "south-02"
    assert hits[0].dense is not None and hits[0].keyword is not None  # both indexes caught up
    assistant.close()


# --- SIGKILL mid-write -------------------------------------------------------------------


def _store_with(tmp_path: Path, data_dir: Path, embedder, n: int = 6) -> Path:
    feed = _feed(tmp_path / "v1" / "feed.jsonl", "north", n)
    assistant = Assistant(Settings(data_dir=data_dir), embedder=embedder)
    report = assistant.add([feed])
    assert report.count("added") == n
    assistant.close()
    return feed


@pytest.mark.parametrize("point", ["write-after-vectors:3", "write-after-commit:3"])
def test_add_killed_mid_write(tmp_path: Path, data_dir: Path, embedder, point: str):
    _store_with(tmp_path, data_dir, embedder, n=2)
    feed = _feed(tmp_path / "feed.jsonl", "south", 10)
    _killed(_cli(data_dir, "add", "-q", str(feed), crash=point))
    assistant = _consistent(data_dir, embedder)
    partial = len(assistant.list_articles()) - 2
    assert 0 < partial < 10
    report = assistant.add([feed])
    assert report.count("added") == 10 - partial and report.count("failed") == 0
    assistant.close()
    _consistent(data_dir, embedder).close()


def test_add_killed_during_the_keyword_swap(tmp_path: Path, data_dir: Path, embedder):
    _store_with(tmp_path, data_dir, embedder)
    before = KeywordIndex(data_dir / "keywords")
    assert before.load()
    feed = _feed(tmp_path / "feed.jsonl", "south", 5)
    _killed(_cli(data_dir, "add", "-q", str(feed), crash="keywords-before-swap"))
    after = KeywordIndex(data_dir / "keywords")
    assert after.load() and after.generation == before.generation  # the old one, whole
    assert after._chunk_ids == before._chunk_ids
    assistant = _consistent(data_dir, embedder)
    assert len(assistant.list_articles()) == 11
    assistant.close()


def test_replace_killed_before_commit_keeps_the_previous_version(
    tmp_path: Path, data_dir: Path, embedder
):
    _store_with(tmp_path, data_dir, embedder)
    before = _rows(data_dir)
    v2 = _feed(tmp_path / "v1" / "feed.jsonl", "north", 6, version=2)  # the same file, changed
    _killed(_cli(data_dir, "add", "-q", str(v2), crash="write-after-vectors:1"))
    assistant = _consistent(data_dir, embedder)
    assert _rows(data_dir) == before  # every article as it was, with all its chunks
    answer = assistant.ask("How many meters of steel does pipe section north4 need?")
    assert any(f"{4 * 37} meters" in c.quote for c in answer.citations)
    report = assistant.add([v2])
    assert report.count("replaced") == 6
    assistant.close()
    _consistent(data_dir, embedder).close()


def test_replace_killed_after_commit_leaves_no_stale_vectors(
    tmp_path: Path, data_dir: Path, embedder
):
    _store_with(tmp_path, data_dir, embedder)
    v2 = _feed(tmp_path / "v1" / "feed.jsonl", "north", 6, version=2)
    _killed(_cli(data_dir, "add", "-q", str(v2), crash="write-after-commit:1"))
    assistant = _consistent(data_dir, embedder)  # the shorter versions' dropped chunks are gone
    texts, _ = _rows(data_dir)
    replaced = [aid for aid, text in texts.items() if "next month" in text]
    assert 0 < len(replaced) < 6
    assistant.close()


def test_remove_killed_after_commit(tmp_path: Path, data_dir: Path, embedder):
    _store_with(tmp_path, data_dir, embedder)
    _killed(_cli(data_dir, "remove", "north-01", "north-04", crash="remove-after-commit"))
    assistant = _consistent(data_dir, embedder)
    assert {i.id for i in assistant.list_articles()} == {f"north-0{i}" for i in (0, 2, 3, 5)}
    assistant.close()


# --- the keyword index's swap ------------------------------------------------------------

_REBUILD = """
import sys
import time
from pathlib import Path
from assistant.keywords import KeywordIndex
index = KeywordIndex(Path(sys.argv[1]))
for generation in range(1, int(sys.argv[2]) + 1):
    ids = [f"c{generation}:{j}" for j in range(generation % 7 + 1)]
    index.build(generation, ids, [f"story {i} about harbour {generation}" for i in ids])
"""


def test_a_reader_never_sees_a_missing_or_partial_keyword_index(tmp_path: Path):
    folder = tmp_path / "keywords"
    KeywordIndex(folder).build(0, ["c0:0"], ["story about harbour 0"])
    rounds = 150
    writer = subprocess.Popen([sys.executable, "-c", _REBUILD, str(folder), str(rounds)])
    reader = KeywordIndex(folder)
    seen = set()
    while writer.poll() is None:
        assert reader.load(), "the keyword index was missing or unreadable"
        generation = reader.generation
        assert reader._chunk_ids == [f"c{generation}:{j}" for j in range(generation % 7 + 1)]
        seen.add(generation)
    assert writer.returncode == 0
    assert reader.load() and reader.generation == rounds
    assert len(seen) > 10  # the reader did read while the writer swapped


def test_vectors_an_older_crash_left_are_swept_at_the_next_write(
    tmp_path: Path, data_dir: Path, embedder
):
    assistant = Assistant(Settings(data_dir=data_dir), embedder=embedder)
    assistant.add([_feed(tmp_path / "feed.jsonl", "north", 3)])
    collection = assistant.store.vectors._collection
    # What a crash left before writes recorded what they changed: vectors of no stored chunk.
    ghosts = ["ghost-01:0", "north-01:9"]
    collection.upsert(
        ids=ghosts,
        embeddings=embedder.embed_documents(["ghost", "gone"]),
        metadatas=[{"article_id": g.split(":")[0], "chunk_id": g} for g in ghosts],
        documents=["ghost", "gone"],
    )
    with sqlite3.connect(data_dir / "articles.sqlite3") as db:
        db.execute("UPDATE meta SET value='0' WHERE key='vectors_swept'")
    assert assistant.remove(["north-02"]) == ["north-02"]
    assistant.close()
    _consistent(data_dir, embedder).close()
