"""The chat window: `build_app(assistant)` builds it, `assistant ui` or `python ui.py` serves it.

Thin by design: the Assistant does the work, `assistant.conversation` and `assistant.web.views`
render it; this file only lays out the page and wires events.
"""

from __future__ import annotations

import argparse
import getpass
import html
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from assistant.settings import (
    DEFAULT_DATA_DIR,
    Settings,
    UnsafeServing,
    go_offline,
    is_loopback,
    web_login,
)

go_offline()  # before gradio is imported: no analytics, no version check, no hub telemetry

import gradio as gr  # noqa: E402

from assistant.answer import Answer  # noqa: E402
from assistant.articles import SUPPORTED_SUFFIXES  # noqa: E402
from assistant.assistant import Assistant, QuestionTooLong  # noqa: E402
from assistant.conversation import (  # noqa: E402
    Turn,
    answer_markdown,
    answer_stream,
    export_name,
    md_escape,
    md_inline,
    parse_cite,
    records_markdown,
    turn_markdown,
)
from assistant.dates import period  # noqa: E402
from assistant.generate import mode_line  # noqa: E402
from assistant.uploads import add_uploads, human_size, stage_uploads  # noqa: E402
from assistant.web.views import (  # noqa: E402
    READER_PLACEHOLDER,
    article_html,
    corpus_choices,
    corpus_html,
    find_articles,
    ingest_html,
    missing_html,
    passages_html,
    plural,
)

STREAM_PAUSE = 0.06  # seconds between streamed blocks, so an answer visibly builds up


def static_text(name: str) -> str:
    """A file of the chat window's static/ folder (CSS, JS), read from the installed package."""
    return files("assistant.web").joinpath("static", name).read_text(encoding="utf-8")


# The conversation as plain JSON (the chat's messages, the questions asked, each turn's part of
# the downloadable record), so the browser can keep it across a page reload.
Conversation = dict[str, list[Any]]


def empty_conversation() -> Conversation:
    return {"messages": [], "questions": [], "records": []}


def _restored(saved: Any) -> Conversation:
    """The conversation the browser kept, or an empty one if it is not of the expected shape."""
    try:
        messages = [{"role": m["role"], "content": m["content"]} for m in saved["messages"]]
        questions, records = list(saved["questions"]), list(saved["records"])
    except (TypeError, KeyError):
        return empty_conversation()
    texts = [m["content"] for m in messages] + questions + records
    roles = all(m["role"] in ("user", "assistant") for m in messages)
    if not roles or not all(isinstance(t, str) for t in texts):
        return empty_conversation()
    return {"messages": messages, "questions": questions, "records": records}


def question_box(settings: Settings, elem_id: str, placeholder: str, **extra: Any) -> gr.Textbox:
    """A wide text box for a question or a search, held to the question length limit."""
    return gr.Textbox(
        elem_id=elem_id,
        show_label=False,
        placeholder=placeholder,
        scale=6,
        max_length=settings.max_question_chars,
        **extra,
    )


def build_app(assistant: Assistant) -> gr.Blocks:
    """The whole UI around one Assistant; serving it is `launch()`'s job."""
    settings = assistant.settings
    uploads_dir = Path(settings.data_dir) / "uploads"
    exports_dir = Path(tempfile.mkdtemp(prefix="assistant-exports-"))
    opened = iter(range(1, sys.maxsize))  # a fresh nonce per opening re-runs the scroll

    def header(n: int) -> str:
        mode = "Answers are the articles' own words, quoted exactly and cited"
        if assistant.llm is not None:
            mode = mode_line(settings, assistant.llm)
        return f"## News assistant\n{mode} · **{plural(n, 'article')}**"

    def listing(words: str) -> tuple[str, Any, str]:
        """The corpus table and the remove choices for the words in Find, and the header."""
        articles = assistant.list_articles()
        found = find_articles(articles, words or "")
        return (
            corpus_html(found, len(articles), words or ""),
            gr.update(choices=corpus_choices(found), value=None),
            header(len(articles)),
        )

    def refresh() -> tuple[str, Any, str, str]:
        """After a change: the whole corpus, the newest first, and Find emptied."""
        return *listing(""), ""

    # --- chat ------------------------------------------------------------------------------

    def respond(
        question: str, chat: Conversation, since: str, until: str, request: gr.Request
    ) -> Iterator[tuple[Any, ...]]:
        question = (question or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        messages = [*chat["messages"], {"role": "user", "content": md_escape(question)}]
        pending = {"role": "assistant", "content": "*Searching the articles…*"}
        yield [*messages, pending], "", gr.skip(), gr.skip(), gr.skip()
        try:
            when = period(since, until)
            answer, draft, shown = None, "", time.monotonic()
            for item in assistant.stream(
                question, history=chat["questions"], since=when.since, until=when.until
            ):
                if isinstance(item, Answer):
                    answer = item
                    continue
                draft += item  # a language model's draft, shown as such until it is checked
                if time.monotonic() - shown > STREAM_PAUSE:
                    shown = time.monotonic()
                    text = f"*Draft, being checked against the articles…*\n\n{md_escape(draft)}"
                    message = {"role": "assistant", "content": text}
                    yield [*messages, message], gr.skip(), gr.skip(), gr.skip(), gr.skip()
            assert answer is not None
        except Exception as e:  # shown in the chat rather than as a stack trace
            failed = {"role": "assistant", "content": f"**Could not answer:** {md_escape(str(e))}"}
            yield [*messages, failed], gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        for partial in answer_stream(answer):
            yield (
                [*messages, {"role": "assistant", "content": partial}],
                gr.skip(),
                gr.skip(),
                gr.skip(),
                gr.skip(),
            )
            time.sleep(STREAM_PAUSE)
        chat = {
            "messages": [*messages, {"role": "assistant", "content": answer_markdown(answer)}],
            "questions": [*chat["questions"], question],
            "records": [*chat["records"], turn_markdown(Turn(question, answer))],
        }
        download = gr.update(value=export(chat, request), interactive=True)
        yield gr.skip(), gr.skip(), chat, download, chat  # the last: kept in the browser

    def export(chat: Conversation, request: gr.Request) -> str:
        """The conversation as a Markdown file: one per browser session, rewritten each answer."""
        folder = exports_dir / re.sub(r"\W", "", str(request.session_hash or "anonymous"))
        folder.mkdir(exist_ok=True)
        for old in folder.glob("*.md"):
            old.unlink()
        path = folder / export_name()
        path.write_text(records_markdown(chat["records"]), encoding="utf-8")
        return str(path)

    def new_conversation() -> tuple[Any, ...]:
        empty = empty_conversation()
        return [], empty, empty, gr.update(value=None, interactive=False), READER_PLACEHOLDER

    def restore(saved: Any, request: gr.Request) -> tuple[Any, ...]:
        """After a page reload: the conversation the browser kept."""
        chat = _restored(saved)
        if not chat["messages"]:
            return gr.skip(), gr.skip(), gr.skip()
        download = gr.update(value=export(chat, request), interactive=bool(chat["records"]))
        return chat["messages"], chat, download

    def open_citation(evt: gr.EventData) -> str:
        ref = parse_cite(str(getattr(evt, "cite", "") or ""))
        article = assistant.get(ref.article_id) if ref else None
        if ref is None or article is None:
            return missing_html(ref)
        return article_html(article, ref, nonce=next(opened))

    def opened_page(saved: Any, request: gr.Request) -> tuple[Any, ...]:
        return *refresh(), *restore(saved, request)

    # --- search ----------------------------------------------------------------------------

    def search(query: str, k: float) -> str:
        query = (query or "").strip()
        try:
            return passages_html(query, assistant.search(query, int(k)) if query else [])
        except QuestionTooLong as e:  # typed past the box's limit, or through the API
            raise gr.Error(str(e)) from e

    # --- adding and removing ---------------------------------------------------------------

    # Gradio finds the progress bar by this default value.
    def add_files(files: list[str] | None, progress=gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        if not files:
            return ('<p class="muted">Choose one or more files first.</p>', gr.skip(), *refresh())
        staged = stage_uploads(files, uploads_dir, settings.max_upload_bytes)

        def step(done: int, total: int, what: str) -> None:
            progress(done / total if total else 1.0, desc=what)

        try:
            report = add_uploads(assistant, staged, step)  # the copies are deleted after
        except Exception as e:  # e.g. the data directory became unwritable
            failed = f'<p class="ingest-summary">Could not add the files: {html.escape(str(e))}</p>'
            return failed, gr.skip(), *refresh()
        return ingest_html(report), None, *refresh()

    def add_text(text: str, title: str, url: str) -> tuple[Any, ...]:
        report = assistant.add_text(
            text or "", (title or "").strip() or None, (url or "").strip() or None
        )
        done = report.count("failed") == 0
        cleared = "" if done else gr.skip()
        return ingest_html(report), cleared, cleared, cleared, *refresh()

    def confirm_removal(article_id: str | None) -> tuple[Any, str, str]:
        """Removing is asked twice: the question and its buttons show before anything goes."""
        article = assistant.get(article_id) if article_id else None
        if article is None:
            return gr.update(visible=False), "", "Choose an article to remove first."
        question = (
            f"Remove “{md_escape(article.title)}” ({md_escape(article.id)}) from the collection? "
            "Answers will no longer quote it."
        )
        return gr.update(visible=True), question, ""

    def keep_article() -> tuple[Any, str]:
        return gr.update(visible=False), "Nothing was removed."

    def remove(article_id: str | None) -> tuple[Any, ...]:
        if not article_id:
            return "Choose an article to remove first.", *refresh()
        article = assistant.get(article_id)
        removed = assistant.remove([article_id])
        if removed and article:
            message = f"Removed “{md_inline(article.title)}”."
        else:
            message = f"No article with id {md_inline(article_id)} (already removed?)."
        return message, *refresh()

    # --- the page --------------------------------------------------------------------------

    limit = human_size(settings.max_upload_bytes)
    # Gradio's cache (uploads, downloads) is swept hourly of files older than a day.
    with gr.Blocks(
        title="News assistant", analytics_enabled=False, delete_cache=(3600, 24 * 3600)
    ) as app:
        conversation = gr.State(empty_conversation())
        # Kept in the browser's localStorage (encrypted with a key of this server's run).
        saved = gr.BrowserState(empty_conversation(), storage_key="news-assistant-conversation")
        title = gr.Markdown(elem_id="header")
        with gr.Row(equal_height=False, elem_id="main"):
            with gr.Column(scale=3, min_width=420):
                with gr.Tabs():
                    with gr.Tab("Chat", id="chat"):
                        chatbot = gr.Chatbot(
                            elem_id="chat",
                            show_label=False,
                            height="62vh",
                            latex_delimiters=[],
                            buttons=["copy", "copy_all"],
                            feedback_options=None,
                            placeholder=(
                                "**Ask a question about the articles.**  \n"
                                "Answers are quotes from the articles; click a citation "
                                "[1] to read it in its article."
                            ),
                        )
                        with gr.Row(elem_id="ask-row"):
                            question = question_box(
                                settings,
                                "question",
                                "e.g. What did Putin ask Musk not to do?",
                                autofocus=True,
                                max_lines=4,
                            )
                            ask = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                        with gr.Accordion("Period", open=False, elem_id="period"):
                            with gr.Row():
                                since = gr.Textbox(
                                    label="Since",
                                    placeholder="YYYY-MM-DD, YYYY-MM or YYYY",
                                    elem_id="since",
                                )
                                until = gr.Textbox(
                                    label="Until",
                                    placeholder="YYYY-MM-DD, YYYY-MM or YYYY",
                                    elem_id="until",
                                )
                            gr.Markdown(
                                "Only articles published in this period are searched (undated "
                                "ones are left out). Left empty, a period the question names "
                                "(“last week”, “in March”) is counted back from the newest "
                                "article and its articles come first.",
                                elem_classes=["muted"],
                            )
                        with gr.Row(elem_id="chat-tools"):
                            new = gr.Button("New conversation", size="sm", elem_id="new")
                            download = gr.DownloadButton(
                                "Download conversation (.md)",
                                size="sm",
                                interactive=False,
                                elem_id="download",
                            )
                    with gr.Tab("Search", id="search"):
                        with gr.Row(elem_id="search-row"):
                            query = question_box(
                                settings,
                                "search-query",
                                "Search the articles: the ranked passages, no answer",
                            )
                            k = gr.Slider(
                                1, 30, value=settings.top_k, step=1, label="Passages", scale=2
                            )
                            find = gr.Button("Search", variant="primary", scale=1, elem_id="search")
                        results = gr.HTML(passages_html("", []), elem_id="search-results")
                    with gr.Tab("Add articles", id="add"):
                        files = gr.File(
                            label=f"Files: {' '.join(SUPPORTED_SUFFIXES)} · up to {limit} each",
                            file_count="multiple",
                            file_types=list(SUPPORTED_SUFFIXES),
                            elem_id="upload",
                        )
                        add = gr.Button("Add files", variant="primary", elem_id="add-files")
                        with gr.Accordion("…or paste an article", open=False, elem_id="paste"):
                            paste_title = gr.Textbox(
                                label="Title (optional: else the first line)", elem_id="paste-title"
                            )
                            paste_url = gr.Textbox(label="URL (optional)", elem_id="paste-url")
                            paste_text = gr.Textbox(
                                label="Article text", lines=8, elem_id="paste-text"
                            )
                            paste = gr.Button("Add pasted article", elem_id="add-text")
                        added = gr.HTML(elem_id="add-result")
                    with gr.Tab("Corpus", id="corpus") as corpus_tab:
                        corpus_find = gr.Textbox(
                            label="Find",
                            placeholder="words of a title, outlet, date or id",
                            elem_id="corpus-find",
                        )
                        with gr.Row(equal_height=False, elem_id="remove-row"):
                            choice = gr.Dropdown(
                                label="Remove an article",
                                choices=[],
                                # Through the API a new session has no listed choices yet; an
                                # unknown id is reported by `remove`, never removes anything.
                                allow_custom_value=True,
                                scale=4,
                                elem_id="remove-choice",
                            )
                            drop = gr.Button(
                                "Remove", variant="stop", scale=1, min_width=120, elem_id="remove"
                            )
                        with gr.Row(visible=False, elem_id="remove-confirm") as confirm_row:
                            confirm_question = gr.Markdown(elem_id="remove-question")
                            confirm = gr.Button(
                                "Yes, remove it", variant="stop", size="sm", elem_id="remove-yes"
                            )
                            cancel = gr.Button("Cancel", size="sm", elem_id="remove-no")
                        removed = gr.Markdown(elem_id="remove-result")
                        corpus = gr.HTML(elem_id="corpus")
            with gr.Column(scale=2, min_width=360, elem_id="reader-column"):
                reader = gr.HTML(
                    READER_PLACEHOLDER, elem_id="reader", js_on_load=static_text("reader.js")
                )

        shown = [corpus, choice, title]
        listed = [*shown, corpus_find]
        chat_io: dict[str, Any] = dict(
            fn=respond,
            inputs=[question, conversation, since, until],
            outputs=[chatbot, question, conversation, download, saved],
            show_progress="minimal",
            show_progress_on=[chatbot],
        )
        question.submit(**chat_io, api_name="ask")
        ask.click(**chat_io, api_visibility="private")
        fresh = [chatbot, conversation, saved, download, reader]
        new.click(new_conversation, None, fresh, api_visibility="private")
        # The chat's own trash button empties the chat: forget the conversation with it.
        chatbot.clear(new_conversation, None, fresh, api_visibility="private")
        reader.click(open_citation, None, reader, api_visibility="private", show_progress="hidden")
        for trigger in (query.submit, find.click):
            trigger(search, [query, k], results, api_name="search")
        corpus_write: dict[str, Any] = dict(concurrency_id="corpus", concurrency_limit=1)
        add.click(
            add_files,
            files,
            [added, files, *listed],
            show_progress_on=[added],
            api_name="add",
            **corpus_write,
        )
        paste.click(
            add_text,
            [paste_text, paste_title, paste_url],
            [added, paste_text, paste_title, paste_url, *listed],
            show_progress_on=[added],
            api_name="add_text",
            **corpus_write,
        )
        asking = [confirm_row, confirm_question, removed]
        drop.click(confirm_removal, choice, asking, api_visibility="private")
        cancel.click(keep_article, None, [confirm_row, removed], api_visibility="private")
        confirm.click(
            lambda: gr.update(visible=False), None, confirm_row, api_visibility="private"
        ).then(remove, choice, [removed, *listed], api_name="remove", **corpus_write)
        # Choosing another article withdraws the question about the last one.
        choice.input(lambda: gr.update(visible=False), None, confirm_row, api_visibility="private")
        corpus_tab.select(listing, corpus_find, shown, api_visibility="private")
        corpus_find.change(
            listing,
            corpus_find,
            shown,
            api_visibility="private",
            trigger_mode="always_last",
            show_progress="hidden",
        )
        app.load(
            opened_page,
            saved,
            [*listed, chatbot, conversation, download],
            api_visibility="private",
        )
    return app


def launch(
    app: gr.Blocks,
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    **kwargs: Any,
) -> Any:
    """Serve the app: local only by default; a login when one is set, required beyond loopback.

    Raises UnsafeServing (before anything listens) when the settings do not allow serving there.
    """
    host = host or settings.host
    port = port or settings.port
    auth = web_login(settings, host)
    if auth is None and not is_loopback(host):
        print(
            f"warning: listening on {host} without a login (--no-auth): anyone who can reach "
            "it can read, add and remove articles",
            file=sys.stderr,
        )
    app.queue(default_concurrency_limit=8)  # several people chat while one adds articles
    return app.launch(
        server_name=host,
        server_port=port,
        share=False,
        auth=auth,
        max_file_size=settings.max_upload_bytes,
        # The bundled Source Sans Pro has a full regular and bold face but a semibold one with few
        # glyphs; offering 400 and 700 only renders every bold text (600 included) in the bold.
        theme=gr.themes.Default(
            primary_hue="blue",
            neutral_hue="slate",
            font=(
                gr.themes.LocalFont("Source Sans Pro", weights=(400, 700)),
                "ui-sans-serif",
                "system-ui",
                "sans-serif",
            ),
        ),
        css=static_text("app.css"),
        footer_links=["settings"],
        **kwargs,
    )


def serve(assistant: Assistant, host: str | None = None, port: int | None = None) -> None:
    """Load the model, then serve the app until Ctrl-C."""
    login = web_login(assistant.settings, host or assistant.settings.host)  # before the slow part
    print("Loading the embedding model…", file=sys.stderr)
    assistant.embedder.embed_query("warm up")  # so the first question is not the slow one
    app = build_app(assistant)
    _, url, _ = launch(app, assistant.settings, host, port, quiet=True, prevent_thread_lock=True)
    asks = f", it asks for the login of {login[0]}" if login else ""
    print(f"The chat window is at {url}{asks} (Ctrl-C stops it).", file=sys.stderr)
    app.block_thread()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the news assistant's chat window.")
    parser.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: 7860)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help=f"where the store lives (default: {DEFAULT_DATA_DIR}, or ASSISTANT_DATA_DIR)",
    )
    parser.add_argument("--auth-user", help="ask for this user name and a password")
    parser.add_argument(
        "--auth-password",
        help="the login's password (else ASSISTANT_AUTH_PASSWORD, else it is prompted for)",
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="allow listening beyond this machine without a login (a trusted network only)",
    )
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {"data_dir": args.data_dir} if args.data_dir else {}
    if args.no_auth:
        overrides["no_auth"] = True
    settings = Settings(**overrides)
    login: dict[str, Any] = {"auth_user": args.auth_user} if args.auth_user else {}
    password = args.auth_password
    if args.auth_user and not password and settings.auth_password is None:
        password = getpass.getpass(f"Password for {args.auth_user}: ")
    if password:
        login["auth_password"] = SecretStr(password)
    settings = settings.model_copy(update=login)
    try:  # refused before the model loads and before anything listens
        web_login(settings, args.host or settings.host)
    except UnsafeServing as e:
        parser.exit(2, f"error: {e}\n")
    assistant = Assistant(settings)
    try:
        serve(assistant, args.host, args.port)
    finally:
        assistant.close()


if __name__ == "__main__":
    main()
