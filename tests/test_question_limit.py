"""Questions over `max_question_chars` are refused by the Assistant, so by every face alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from assistant.assistant import Assistant, QuestionTooLong
from assistant.cli import cli
from assistant.embeddings import ModelEmbedder
from assistant.settings import Settings

LIMIT = 120
QUESTION = "Who saved the decisive penalty in the Northern Cup final?"
LONG = "Who saved the decisive penalty? " * 10  # 320 characters


@pytest.fixture
def limited(data_dir: Path, embedder: ModelEmbedder, articles_dir: Path) -> Iterator[Assistant]:
    assistant = Assistant(Settings(data_dir=data_dir, max_question_chars=LIMIT), embedder=embedder)
    assert assistant.add([articles_dir]).count("failed") == 0
    yield assistant
    assistant.close()


def test_the_default_limit_is_about_two_thousand_characters() -> None:
    assert 1_000 <= Settings().max_question_chars <= 4_000


def test_the_assistant_refuses_a_question_over_the_limit(limited: Assistant) -> None:
    message = f"the question is {len(LONG)} characters long; the limit is {LIMIT}"
    with pytest.raises(QuestionTooLong, match=message):
        limited.ask(LONG)
    with pytest.raises(QuestionTooLong, match=message):
        next(iter(limited.stream(LONG)))
    with pytest.raises(QuestionTooLong, match="an earlier question is 320 characters"):
        limited.ask(QUESTION, history=[LONG])
    with pytest.raises(QuestionTooLong, match="the search is 320 characters"):
        limited.search(LONG)
    # At the limit it is answered as usual.
    at_limit = QUESTION + " " * (LIMIT - len(QUESTION))
    assert len(at_limit) == LIMIT
    assert "Lindqvist" in limited.ask(at_limit).text


@pytest.fixture
def run(embedder: ModelEmbedder, data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ASSISTANT_MAX_QUESTION_CHARS", str(LIMIT))

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), obj={"embedder": embedder}, input=input)

    return invoke


def test_cli_ask_turns_a_long_question_into_an_error(run, articles_dir: Path) -> None:
    assert run("add", "-q", str(articles_dir)).exit_code == 0
    for extra in ((), ("--json",), ("--stream",)):
        out = run("ask", *extra, LONG)
        assert out.exit_code == 1, out.output
        assert out.stderr.strip() == (
            f"Error: the question is 320 characters long; the limit is {LIMIT} "
            "(ASSISTANT_MAX_QUESTION_CHARS)"
        )
        assert out.stdout == "" and out.exception is not None and "Traceback" not in out.output


def test_cli_batch_and_chat_go_on_past_a_long_question(
    run, articles_dir: Path, tmp_path: Path
) -> None:
    assert run("add", "-q", str(articles_dir)).exit_code == 0
    batch = tmp_path / "questions.jsonl"
    lines = [{"id": "long", "question": LONG}, {"id": "ok", "question": QUESTION}]
    batch.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    out = run("ask", "--json", "--batch", str(batch))
    assert out.exit_code == 1
    assert f"{batch}:1: the question is 320 characters long" in out.stderr
    (answer,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert answer["id"] == "ok" and "Lindqvist" in answer["answer"]

    chat = run("chat", input=f"{LONG}\n{QUESTION}\n\n")
    assert chat.exit_code == 0, chat.output
    assert "Error: the question is 320 characters long" in chat.stderr
    assert "Lindqvist saved the decisive penalty" in chat.stdout
