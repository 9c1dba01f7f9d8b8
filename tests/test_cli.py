"""The CLI through click's runner, with the real store and model underneath."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from assistant.cli import cli
from assistant.embeddings import ModelEmbedder


@pytest.fixture
def run(embedder: ModelEmbedder, data_dir: Path):
    def invoke(*args: str, input: str | None = None) -> Result:
        # A fresh context per call, as in a real shell; only the loaded model is shared.
        return CliRunner().invoke(cli, list(args), obj={"embedder": embedder}, input=input)

    return invoke


def test_add_ask_list_show_remove(run, articles_dir: Path, data_dir: Path):
    added = run("add", "-q", str(articles_dir))
    assert added.exit_code == 0, added.output
    assert added.stdout.strip() == "6 added, 0 unchanged, 0 replaced, 0 failed"
    assert (data_dir / "articles.sqlite3").exists()

    listed = run("list", "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == 6 and {"id", "title", "chunks", "published"} <= set(rows[0])

    asked = run("ask", "Who saved the decisive penalty in the Northern Cup final?")
    assert asked.exit_code == 0
    assert "Lindqvist saved the decisive penalty" in asked.stdout
    assert "Sources:" in asked.stdout

    shown = run("show", "wire-bakery-0001")
    assert shown.exit_code == 0
    assert shown.stdout.startswith("Family bakery in Millbrook closes after 92 years")
    assert "https://news.example.org/2025/03/02/millbrook-bakery-closes" in shown.stdout
    as_json = json.loads(run("show", "wire-bakery-0001", "--json").stdout)
    assert as_json["text"].startswith("The Kessler family bakery in Millbrook closed")

    removed = run("remove", "wire-bakery-0001", "nope")
    assert removed.exit_code == 1
    assert "removed wire-bakery-0001" in removed.stdout
    assert "no article with id nope" in removed.stderr
    assert run("show", "wire-bakery-0001").exit_code == 1
    assert len(run("list", "--json").stdout.splitlines()) == 5


def test_ask_json_has_the_scorer_format(run, articles_dir: Path):
    run("add", "-q", str(articles_dir))
    out = run("ask", "--json", "How many people watched the Northern Cup final?")
    answer = json.loads(out.stdout)
    expected = {"id", "question", "searched_for", "answer", "abstained", "citations", "passages"}
    assert expected <= set(answer)
    assert answer["abstained"] is False
    citation = answer["citations"][0]
    keys = {"n", "article_id", "title", "source", "url", "published", "quote", "start", "end"}
    assert keys <= set(citation)
    text = json.loads(run("show", "--json", citation["article_id"]).stdout)["text"]
    assert text[citation["start"] : citation["end"]] == citation["quote"]
    assert "21,400" in citation["quote"]
    assert len(answer["passages"]) >= 6
    assert {"article_id", "chunk_id", "text", "start", "end", "score"} <= set(answer["passages"][0])


def test_batch_answers_every_line_with_its_id(run, articles_dir: Path, tmp_path: Path):
    run("add", "-q", str(articles_dir))
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"id": "q1", "question": "Which university built the Kestrel-1 satellite?"})
        + "\n\n"
        + json.dumps({"id": "q2", "question": "What is the boiling point of tungsten?"})
        + "\nnot json\n"
    )
    out = run("ask", "--batch", str(questions), "--json")
    assert out.exit_code == 1  # one bad line
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [a["id"] for a in answers] == ["q1", "q2"]
    assert any("Carrow State University" in c["quote"] for c in answers[0]["citations"])
    assert answers[1]["abstained"] is True and answers[1]["citations"] == []
    assert f"{questions}:4" in out.stderr


def test_add_reports_failures_with_reasons_and_exit_status(run, tmp_path: Path):
    good = tmp_path / "good.txt"
    good.write_text("Town fair draws record crowd\nThe Millbrook town fair drew 12,000 visitors.")
    empty = tmp_path / "empty.md"
    empty.write_text("")
    out = run("add", "-q", str(good), str(empty), str(tmp_path / "missing.html"))
    assert out.exit_code == 1
    assert out.stdout.strip() == "1 added, 0 unchanged, 0 replaced, 2 failed"
    assert f"failed: {empty}: empty file" in out.stderr
    assert f"failed: {tmp_path / 'missing.html'}: no such file or folder" in out.stderr
    again = run("add", "-q", str(good))
    assert again.exit_code == 0 and again.stdout.startswith("0 added, 1 unchanged")


def test_data_dir_option_wins_over_the_environment(run, articles_dir: Path, tmp_path: Path):
    other = tmp_path / "elsewhere"
    out = run("--data-dir", str(other), "add", "-q", str(articles_dir / "harbor-storm.md"))
    assert out.exit_code == 0
    assert (other / "articles.sqlite3").exists()
    assert run("list").stdout == ""  # the default (environment) store is still empty


def test_terminal_chat_keeps_the_conversation(run, articles_dir: Path):
    run("add", "-q", str(articles_dir))
    out = run(
        "chat",
        input="Has Elon Musk been in contact with Vladimir Putin?\n"
        "What did he ask him about Taiwan?\n\n",
    )
    assert out.exit_code == 0
    assert "Extractive answers: the articles' own words" in out.stdout  # the mode is said
    assert "Starlink satellite service over Taiwan" in out.stdout
    assert (
        "Searched for: What did he ask him about Taiwan? (Elon Musk Vladimir Putin)" in out.stdout
    )


def test_ask_needs_a_question_or_a_batch(run):
    out = run("ask")
    assert out.exit_code == 2
    assert "give either a QUESTION or --batch FILE" in out.output
    # Before, --k 0 quietly meant the default and a negative --k every candidate found.
    for k in ("0", "-3"):
        out = run("ask", "--k", k, "Who won?")
        assert out.exit_code == 2 and "is not in the range 1<=x<=100" in out.output


def test_an_empty_question_is_refused(run, tmp_path: Path):
    out = run("ask", "   ")
    assert out.exit_code == 2
    assert "the question is empty" in out.output
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "q1", "question": " "}) + "\n")
    out = run("ask", "--batch", str(questions), "--json")
    assert out.exit_code == 1 and out.stdout == ""
    assert f"{questions}:1" in out.stderr


def test_asking_an_empty_store_says_there_are_no_articles(run):
    out = run("ask", "--json", "Who saved the decisive penalty?")
    assert out.exit_code == 0
    answer = json.loads(out.stdout)
    assert answer["abstained"] is True and answer["citations"] == []
    # Not "the articles don't answer": there are none.
    assert answer["answer"] == "No articles have been added yet, so there is nothing to quote."


def test_a_damaged_store_is_a_clear_message_not_a_traceback(run, data_dir: Path):
    data_dir.mkdir(parents=True)
    (data_dir / "articles.sqlite3").write_bytes(b"this is not a database" * 100)
    out = run("list")
    assert out.exit_code == 1
    assert "the article database cannot be opened" in out.stderr
    assert str(data_dir) in out.stderr
    assert "Traceback" not in out.output


class CtrlCAfter:
    """The real model, with the user pressing Ctrl-C during the n-th batch."""

    def __init__(self, model: ModelEmbedder, batches: int) -> None:
        self.model, self.left = model, batches

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt
        return self.model.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.model.embed_query(text)


def test_interrupted_add_keeps_whole_articles_and_resumes(
    embedder: ModelEmbedder, articles_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ASSISTANT_WRITE_BATCH_CHUNKS", "1")  # one article per batch
    runner = CliRunner()
    stopped = runner.invoke(
        cli, ["add", "-q", str(articles_dir)], obj={"embedder": CtrlCAfter(embedder, 2)}
    )
    assert stopped.exit_code == 1
    assert "interrupted" in stopped.stderr and "run the same command again" in stopped.stderr
    resumed = runner.invoke(cli, ["add", "-q", str(articles_dir)], obj={"embedder": embedder})
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout.strip() == "4 added, 2 unchanged, 0 replaced, 0 failed"
    listed = runner.invoke(cli, ["list", "--json"], obj={"embedder": embedder})
    assert len(listed.stdout.splitlines()) == 6


def test_a_locked_store_is_a_clear_message_not_a_traceback(
    run, data_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    assert run("list").exit_code == 0  # creates the store
    holder = sqlite3.connect(data_dir / "articles.sqlite3")
    holder.execute("BEGIN EXCLUSIVE")  # another program in the middle of writing
    monkeypatch.setenv("ASSISTANT_LOCK_TIMEOUT", "0.2")
    try:
        out = run("list")
    finally:
        holder.rollback()
        holder.close()
    assert out.exit_code == 1
    assert "locked by another program" in out.stderr and str(data_dir) in out.stderr
    assert "Traceback" not in out.output
    assert run("list").exit_code == 0  # and once the other program is done, all is well


def test_the_terminal_shows_escape_sequences_in_articles_instead_of_obeying_them(
    run, tmp_path: Path
):
    title = "Harbour \x1b[2J\x1b]0;pwned\x07 notice"
    text = "The harbour office said \x1b[31mthe ferry\x1b[0m will run again on Friday morning "
    path = tmp_path / "esc.jsonl"
    record = {"id": "esc-1", "title": title, "text": text + "after the repairs.\x07"}
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert run("add", "-q", str(path)).exit_code == 0
    listed = run("list").stdout
    assert "Harbour" in listed and "\x1b" not in listed and "\x07" not in listed
    for out in (
        run("show", "esc-1").stdout,
        run("ask", "When will the ferry run again after the repairs?").stdout,
    ):
        assert "\x1b" not in out and "\x07" not in out
        assert "\\x1b[31mthe ferry" in out  # shown as text, where it is
    # JSON keeps the stored text exactly (offsets refer to it); JSON escapes it anyway.
    shown = json.loads(run("show", "--json", "esc-1").stdout)
    assert shown["text"] == record["text"]


def test_upgrade_gives_an_old_store_its_sentence_vectors(run, articles_dir: Path, data_dir: Path):
    assert run("add", "-q", str(articles_dir)).exit_code == 0
    db = sqlite3.connect(data_dir / "articles.sqlite3")
    sql = 'SELECT article_id, start, "end", vector FROM sentence_vectors ORDER BY 1, 2'
    kept = db.execute(sql).fetchall()
    with db:  # a store written by the previous version: articles, chunks, no sentence vectors
        db.execute("DELETE FROM sentence_vectors")
    upgraded = run("upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.stdout.strip() == "6 articles given sentence vectors"
    again = db.execute(sql).fetchall()
    assert [r[:3] for r in again] == [r[:3] for r in kept]
    for old, new in zip(kept, again, strict=True):
        a, b = (np.frombuffer(r[3], dtype=np.float16).astype(np.float32) for r in (old, new))
        assert float(a @ b) > 0.999
    assert run("upgrade", "-q").stdout.strip() == "0 articles given sentence vectors"
    assert "21,400" in run("ask", "How many people watched the Northern Cup final?").stdout


def test_answering_needs_neither_torch_nor_the_ingestion_libraries(
    run, articles_dir: Path, data_dir: Path
):
    # The ONNX engine runs without torch (about 6 s to import), and MinHash (datasketch) is
    # only for writing: a question from the command line loads none of them.
    assert run("add", "-q", str(articles_dir)).exit_code == 0
    script = (
        "import sys; from assistant.cli import cli\n"
        "try: cli(['ask', 'Who saved the decisive penalty?'], standalone_mode=False)\n"
        "finally: print(sorted(m for m in ('torch', 'sentence_transformers', 'datasketch', "
        "'trafilatura', 'pypdf') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert "Lindqvist saved the decisive penalty" in out.stdout
    assert out.stdout.strip().endswith("[]"), out.stdout
