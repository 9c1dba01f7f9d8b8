"""The command line: a thin face over the Assistant."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from assistant.answer import Answer
from assistant.articles import date_of
from assistant.conversation import period_note
from assistant.dates import DateRange, parse_day
from assistant.settings import DEFAULT_DATA_DIR, Settings, go_offline
from assistant.store import StoreError


def period_json(period: DateRange | None) -> dict[str, Any] | None:
    if period is None:
        return None
    return {
        "since": period.since.isoformat() if period.since else None,
        "until": period.until.isoformat() if period.until else None,
        "soft": period.soft,
    }


def answer_json(answer: Answer, question_id: str | None = None) -> dict[str, Any]:
    """The JSON form of an answer (the format the benchmark scorer reads)."""
    return {
        "id": question_id,
        "question": answer.question,
        "searched_for": answer.searched_for,
        "answer": answer.text,
        "abstained": answer.abstained,
        "confidence": round(answer.confidence, 4),
        "citations": [asdict(c) for c in answer.citations],
        "mode": answer.mode,
        "notice": answer.notice,
        "statements": [asdict(s) for s in answer.statements],
        "passages": [
            {
                "article_id": p.article_id,
                "chunk_id": p.chunk_id,
                "text": p.text,
                "start": p.start,
                "end": p.end,
                "score": round(p.score, 6),
                "title": p.title,
            }
            for p in answer.passages
        ],
        "date_range": period_json(answer.date_range),
    }


def _assistant(ctx: click.Context) -> Any:
    """The Assistant for this run, built once from the settings (tests may inject parts)."""
    obj = ctx.ensure_object(dict)
    if "assistant" not in obj:
        from assistant.assistant import Assistant

        try:
            obj["assistant"] = Assistant(obj["settings"], embedder=obj.get("embedder"))
        except StoreError as e:
            raise click.ClickException(str(e)) from e
    return obj["assistant"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="ASSISTANT_DATA_DIR",
    help=f"Where the store lives (default: {DEFAULT_DATA_DIR}, or ASSISTANT_DATA_DIR).",
)
@click.option(
    "--chroma-url",
    envvar="ASSISTANT_CHROMA_URL",
    help="Use the Chroma server at this URL (http://host:port) instead of the embedded store.",
)
@click.option(
    "--llm",
    type=click.Choice(["none", "openai", "ollama"]),
    help="Written answers by a language model: an OpenAI-compatible server or Ollama "
    "(default: none, answers are extractive; or ASSISTANT_LLM).",
)
@click.option("--llm-url", help="The language model's base URL, e.g. http://127.0.0.1:8080/v1.")
@click.option("--llm-model", help="The language model's name (default: the server's).")
@click.version_option(package_name="news-assistant")
@click.pass_context
def cli(
    ctx: click.Context,
    data_dir: Path | None,
    chroma_url: str | None,
    llm: str | None,
    llm_url: str | None,
    llm_model: str | None,
) -> None:
    """Ask questions of a news-article collection; answers are exact, cited quotes."""
    go_offline()
    obj = ctx.ensure_object(dict)
    overrides: dict[str, Any] = {"data_dir": data_dir} if data_dir else {}
    if chroma_url:
        overrides["chroma_url"] = chroma_url
    for key, value in (("llm", llm), ("llm_base_url", llm_url), ("llm_model", llm_model)):
        if value:
            overrides[key] = value
    obj["settings"] = (obj.get("settings") or Settings()).model_copy(update=overrides)


@contextmanager
def _progress_bar(quiet: bool) -> Iterator[Callable[[int, int, str], None]]:
    """A progress callback drawing a bar on stderr (created at the first call), or nothing."""
    from tqdm import tqdm

    bar = None

    def progress(done: int, total: int, name: str) -> None:
        nonlocal bar
        if quiet:
            return
        if bar is None:
            bar = tqdm(total=total, unit="article", file=sys.stderr, dynamic_ncols=True)
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.close()


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; only the summary.")
@click.pass_context
def add(ctx: click.Context, paths: tuple[Path, ...], quiet: bool) -> None:
    """Add articles from files or folders (.txt .md .html .htm .pdf .jsonl).

    In a folder, files of other types and links leading out of it are skipped, by name.
    """
    assistant = _assistant(ctx)
    try:
        with _progress_bar(quiet) as progress:
            report = assistant.add(paths, progress=progress)
    except KeyboardInterrupt:
        # Every batch written so far is complete; a re-run skips those articles as unchanged.
        raise click.ClickException(
            "interrupted: the articles stored so far are complete; run the same command again "
            "to add the rest"
        ) from None
    for result in report.failed:
        click.echo(terminal_safe(f"failed: {result.name}: {result.reason}"), err=True)
    if not quiet:  # the summary names the first few in any case
        for result in report.skipped:
            click.echo(terminal_safe(f"skipped: {result.name}: {result.reason}"), err=True)
    for result in report.results:
        if result.duplicate_of:
            click.echo(
                f"near-duplicate: {result.name} ({result.article_id}) repeats article "
                f"{result.duplicate_of}; answers cite one and list the other",
                err=True,
            )
    click.echo(terminal_safe(report.summary()))  # it names skipped files
    if report.failed:
        ctx.exit(1)


@cli.command()
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; only the summary.")
@click.pass_context
def upgrade(ctx: click.Context, quiet: bool) -> None:
    """Bring a store written by an older version up to date (sentence vectors; resumable).

    With a Chroma server, also deletes the vectors left unused by a writer that was killed.
    """
    assistant = _assistant(ctx)
    try:
        with _progress_bar(quiet) as progress:
            n = assistant.add_sentence_vectors(progress=progress)
    except KeyboardInterrupt:
        raise click.ClickException(
            "interrupted: what was done is kept; run the same command again to finish"
        ) from None
    click.echo(f"{n} article{'' if n == 1 else 's'} given sentence vectors")
    swept = assistant.sweep()
    if swept:
        click.echo(f"{swept} unused vector{'' if swept == 1 else 's'} deleted from the server")


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """Article text for a terminal: control characters (escape sequences) shown, not obeyed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def _print_answer(answer: Answer) -> None:
    click.echo(terminal_safe(answer.text))
    if answer.searched_for != answer.question:
        click.secho(f"Searched for: {terminal_safe(answer.searched_for)}", dim=True)
    note = period_note(answer)
    if note:
        click.secho(note, dim=True)


def _day(end: bool) -> Any:
    """A click callback reading YYYY-MM-DD, YYYY-MM or YYYY (a month's or year's last day
    when `end`)."""

    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
        try:
            return parse_day(value, end=end) if value else None
        except ValueError as e:
            raise click.BadParameter(str(e)) from e

    return parse


@contextmanager
def _question_errors() -> Iterator[None]:
    """A question the Assistant refuses (too long) as a click error, not a stack trace."""
    from assistant.assistant import QuestionTooLong

    try:
        yield
    except QuestionTooLong as e:
        raise click.ClickException(str(e)) from e


def _stream_answer(assistant: Any, question: str, **period: Any) -> None:
    """The model's draft as it arrives (dim: not yet checked), then the checked answer."""
    drafted = False
    for item in assistant.stream(question, **period):
        if isinstance(item, str):
            if not drafted:
                click.secho("Draft (being checked against the articles):", dim=True)
                drafted = True
            click.secho(terminal_safe(item), nl=False, dim=True)
        else:
            if drafted:
                click.echo("\n")
            _print_answer(item)


@cli.command()
@click.argument("question", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.option(
    "--batch",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='Answer a JSONL file of {"id", "question"} lines, one answer per line. A line may '
    'say the day its question is asked, as --as-of does ("as_of": YYYY-MM-DD).',
)
@click.option(
    "--k", type=click.IntRange(1, 100), default=None, help="How many passages to retrieve (1-100)."
)
@click.option(
    "--since",
    callback=_day(end=False),
    help="Only articles published on or after this day (YYYY-MM-DD, YYYY-MM or YYYY). "
    "Articles without a date are left out when --since or --until is given.",
)
@click.option(
    "--until",
    callback=_day(end=True),
    help="Only articles published on or before this day (a month or year: its last day).",
)
@click.option(
    "--as-of",
    callback=_day(end=True),
    help='The day the question is asked: what "last week" or "this month" in it counts from '
    "(default: the newest article's date).",
)
@click.option(
    "--stream",
    is_flag=True,
    help="Print the language model's draft as it is written, then the answer.",
)
@click.pass_context
def ask(
    ctx: click.Context,
    question: str | None,
    as_json: bool,
    batch: Path | None,
    k: int | None,
    since: date | None,
    until: date | None,
    as_of: date | None,
    stream: bool,
) -> None:
    """Answer QUESTION from the articles (or every question in --batch)."""
    if (question is None) == (batch is None):
        raise click.UsageError("give either a QUESTION or --batch FILE")
    if question is not None and not question.strip():
        raise click.UsageError("the question is empty")
    if since and until and since > until:
        raise click.UsageError(f"--since {since} is after --until {until}")
    if as_of:
        obj = ctx.ensure_object(dict)
        obj["settings"] = obj["settings"].model_copy(update={"as_of": as_of})
    assistant = _assistant(ctx)
    if question is not None and stream and not as_json:
        with _question_errors():
            _stream_answer(assistant, question, k=k, since=since, until=until)
        return
    if question is not None:
        with _question_errors():
            answer = assistant.ask(question, k=k, since=since, until=until)
        if as_json:
            click.echo(json.dumps(answer_json(answer), ensure_ascii=False))
        else:
            _print_answer(answer)
        return
    assert batch is not None
    from assistant.assistant import QuestionTooLong

    failed = 0
    for lineno, line in enumerate(batch.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            qid, text = record.get("id"), record["question"]
            if not isinstance(text, str) or not text.strip():
                raise TypeError("no question")
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            click.echo(f'failed: {batch}:{lineno}: not a JSON object with a "question"', err=True)
            failed += 1
            continue
        try:
            asked = _asked_on(record)
        except ValueError as e:
            click.echo(f"failed: {batch}:{lineno}: {terminal_safe(str(e))}", err=True)
            failed += 1
            continue
        started = time.perf_counter()
        try:
            answer = assistant.ask(text, k=k, since=since, until=until, as_of=asked)
        except QuestionTooLong as e:
            click.echo(f"failed: {batch}:{lineno}: {e}", err=True)
            failed += 1
            continue
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        if as_json:
            record = {**answer_json(answer, qid), "elapsed_ms": elapsed_ms}
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            click.echo(f"## {qid or lineno}: {text}")
            _print_answer(answer)
            click.echo()
    if failed:
        ctx.exit(1)


def _asked_on(record: dict[str, Any]) -> date | None:
    """The day a batch question is asked (its "as_of"), if the line says."""
    value = record.get("as_of")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f'"as_of" is not a date string: {value!r}')
    try:
        return parse_day(value[:10], end=True)
    except ValueError as e:
        raise ValueError(f'"as_of": {e}') from e


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON lines.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List the stored articles: id, date, source, title."""
    for info in _assistant(ctx).list_articles():
        if as_json:
            click.echo(json.dumps(asdict(info), ensure_ascii=False))
        else:
            date = date_of(info.published)
            line = f"{info.id}  {date:10}  {info.source or '':18.18}  {info.title}"
            click.echo(terminal_safe(line))


@cli.command()
@click.argument("article_id")
@click.option("--json", "as_json", is_flag=True, help="Print the article as JSON.")
@click.pass_context
def show(ctx: click.Context, article_id: str, as_json: bool) -> None:
    """Show one article with its stored text (the text citations refer to)."""
    article = _assistant(ctx).get(article_id)
    if article is None:
        raise click.ClickException(f"no article with id {article_id} (see `assistant list`)")
    if as_json:
        click.echo(json.dumps(asdict(article), ensure_ascii=False))
        return
    click.secho(terminal_safe(article.title), bold=True)
    meta = [article.source, article.author, article.published, article.url, f"id {article.id}"]
    click.echo(terminal_safe(" · ".join(m for m in meta if m)))
    click.echo()
    click.echo(terminal_safe(article.text))


@cli.command()
@click.argument("article_ids", nargs=-1, required=True)
@click.pass_context
def remove(ctx: click.Context, article_ids: tuple[str, ...]) -> None:
    """Remove articles by id, with their chunks and index entries."""
    removed = _assistant(ctx).remove(article_ids)
    for article_id in article_ids:
        if article_id in removed:
            click.echo(f"removed {article_id}")
        else:
            click.echo(f"failed: no article with id {article_id}", err=True)
    if len(removed) < len(set(article_ids)):
        ctx.exit(1)


@cli.command()
@click.pass_context
def chat(ctx: click.Context) -> None:
    """Chat in the terminal; follow-up questions use the earlier ones. Empty line or Ctrl-D ends."""
    from assistant.assistant import QuestionTooLong
    from assistant.generate import mode_line

    assistant = _assistant(ctx)
    history: list[str] = []
    mode = mode_line(assistant.settings, assistant.llm)
    click.echo(f"{len(assistant.list_articles())} articles. {mode}.")
    click.echo("Ask a question (empty line to quit).")
    while True:
        try:
            question = click.prompt("?", default="", show_default=False, prompt_suffix=" ")
        except (EOFError, click.Abort):
            break
        if not question.strip():
            break
        try:
            _stream_answer(assistant, question, history=history)  # a model's draft streams
        except QuestionTooLong as e:
            click.echo(f"Error: {e}", err=True)  # the chat goes on; ask a shorter question
            continue
        click.echo()
        history.append(question)


@cli.command()
@click.option("--host", help="Address to listen on (default: 127.0.0.1, or ASSISTANT_HOST).")
@click.option("--port", type=int, help="Port to listen on (default: 7860, or ASSISTANT_PORT).")
@click.option(
    "--auth-user",
    metavar="NAME",
    help="Ask for this user name and a password (or ASSISTANT_AUTH_USER). The password comes "
    "from --auth-password or ASSISTANT_AUTH_PASSWORD, else it is prompted for.",
)
@click.option(
    "--auth-password",
    metavar="PASSWORD",
    help="The login's password (or ASSISTANT_AUTH_PASSWORD; a flag is visible to other users "
    "of this machine in the process list, the variable or the prompt is not).",
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Allow listening beyond this machine without a login (or ASSISTANT_NO_AUTH=1): "
    "anyone who can reach it can read, add and remove articles.",
)
@click.pass_context
def ui(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    auth_user: str | None,
    auth_password: str | None,
    no_auth: bool,
) -> None:
    """Serve the chat window in the browser (http://127.0.0.1:7860 by default); Ctrl-C stops it.

    Beyond this machine (e.g. --host 0.0.0.0) it needs a login, or --no-auth.
    """
    from assistant.settings import UnsafeServing, web_login

    obj = ctx.ensure_object(dict)
    settings: Settings = obj["settings"]
    overrides: dict[str, Any] = {"no_auth": True} if no_auth else {}
    if auth_user:
        overrides["auth_user"] = auth_user
        if not auth_password and settings.auth_password is None:
            auth_password = click.prompt(f"Password for {auth_user}", hide_input=True, err=True)
    if auth_password:
        overrides["auth_password"] = SecretStr(auth_password)
    settings = obj["settings"] = settings.model_copy(update=overrides)
    try:  # refused before the model loads and before anything listens
        web_login(settings, host or settings.host)
    except UnsafeServing as e:
        raise click.ClickException(str(e)) from e

    from assistant.web.app import serve

    serve(_assistant(ctx), host, port)


def main() -> None:
    try:
        cli(obj={})
    except StoreError as e:  # e.g. another process kept the data folder locked
        raise SystemExit(f"Error: {e}") from None


if __name__ == "__main__":
    main()
