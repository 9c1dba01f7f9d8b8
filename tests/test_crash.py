"""Crash safety: SIGKILL in the middle of `assistant add`, then the same add again."""

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
from assistant.settings import Settings

pytestmark = pytest.mark.slow


def _committed(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_killed_add_leaves_a_consistent_store_and_rerun_completes(
    tmp_path: Path, data_dir: Path, embedder
):
    feed = tmp_path / "feed.jsonl"
    with feed.open("w") as f:
        for i in range(120):
            text = (
                f"Story {i}: the Millbrook council met on day {i} to discuss item {i * 7}. "
                f"Council member number {i} proposed a plan costing {i * 1000} dollars. "
                "The vote was postponed until the next session."
            )
            f.write(
                json.dumps({"id": f"story-{i:03d}", "title": f"Council story {i}", "text": text})
                + "\n"
            )
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(data_dir), "ASSISTANT_WRITE_BATCH_CHUNKS": "8"}
    cmd = [sys.executable, "-m", "assistant.cli", "add", "-q", str(feed)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = data_dir / "articles.sqlite3"
    deadline = time.monotonic() + 240
    while _committed(db) < 16 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the add finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _committed(db)
    assert 16 <= partial < 120

    settings = Settings(data_dir=data_dir)
    assistant = Assistant(settings, embedder=embedder)
    # Every committed article is whole: its text and all its chunks, each chunk searchable.
    for info in assistant.list_articles():
        article = assistant.get(info.id)
        assert article is not None and info.chunks >= 1
    rerun = assistant.add([feed])
    assert rerun.count("failed") == 0
    assert rerun.count("unchanged") == partial
    assert rerun.count("added") == 120 - partial
    infos = assistant.list_articles()
    assert len(infos) == len({i.id for i in infos}) == 120
    # Chroma holds exactly the stored chunks: nothing orphaned, nothing duplicated.
    stored = {cid for info in infos for cid in _chunk_ids(assistant, info.id)}
    vectors = set(assistant.store.vectors.get()["ids"])
    assert vectors == stored
    answer = assistant.ask("How much did council member number 77 propose to spend?")
    assert any("77000 dollars" in c.quote for c in answer.citations)
    assistant.close()


def _chunk_ids(assistant: Assistant, article_id: str) -> list[str]:
    info = next(i for i in assistant.list_articles() if i.id == article_id)
    return [f"{article_id}:{n}" for n in range(info.chunks)]
