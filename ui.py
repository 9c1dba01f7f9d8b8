"""The chat window: `build_app(assistant)` builds it, `python ui.py` or `assistant ui` serves it.

Thin by design: the Assistant does the work, `assistant.conversation` and `assistant.reader`
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
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from assistant.settings import Settings, UnsafeServing, go_offline, is_loopback, web_login

go_offline()  # before gradio is imported: no analytics, no version check, no hub telemetry

import gradio as gr  # noqa: E402

from assistant.answer import Answer  # noqa: E402
from assistant.assistant import Assistant, QuestionTooLong  # noqa: E402
from assistant.conversation import (  # noqa: E402
    Turn,
    answer_markdown,
    answer_stream,
    conversation_markdown,
    export_name,
    md_escape,
    md_inline,
    parse_cite,
)
from assistant.dates import period  # noqa: E402
from assistant.generate import mode_line  # noqa: E402
from assistant.reader import (  # noqa: E402
    READER_PLACEHOLDER,
    article_html,
    corpus_choices,
    corpus_html,
    find_articles,
    ingest_html,
    missing_html,
    passages_html,
)
from assistant.uploads import add_uploads, human_size, stage_uploads  # noqa: E402

FILE_TYPES = [".txt", ".md", ".html", ".htm", ".pdf", ".jsonl"]
STREAM_PAUSE = 0.06  # seconds between streamed blocks, so an answer visibly builds up
CSS = """
#header h2 { margin: 0 0 2px 0; }
#header p { margin: 0; color: var(--body-text-color-subdued); }
#reader-column { position: sticky; top: 12px; align-self: flex-start; }
#chat strong, #chat b { font-weight: 600; }  /* the bundled font has 400 and 600 only */
#chat blockquote { border-left: 3px solid var(--color-accent); margin: 0.4em 0;
  padding: 0.1em 0.8em; }
#chat .message-content a { color: var(--link-text-color); text-decoration: none; }
#chat .message-content a:hover { text-decoration: underline; }
#chat blockquote a[href^="#cite-"] { font-weight: 600; }
#chat .sources { margin-top: 0.8em; font-size: 0.92em; }
#chat .sources-head { font-size: 0.78em; text-transform: uppercase; letter-spacing: 0.06em;
  font-weight: 600; color: var(--body-text-color-subdued); margin-bottom: 2px; }
#chat .source { margin: 2px 0; }
#chat .source .details { white-space: nowrap; }
.searched-for { font-size: 0.82em; color: var(--body-text-color-subdued); margin-top: 0.6em;
  border-top: 1px dashed var(--border-color-primary); padding-top: 0.35em; }
#remove-row { align-items: flex-end; }
#remove-row > button { margin-bottom: 4px; }
.muted { color: var(--body-text-color-subdued); font-size: 0.9em; }
.reader, .reader-empty { border: 1px solid var(--border-color-primary); border-radius: 10px;
  padding: 14px 18px; background: var(--block-background-fill); }
.reader-empty { color: var(--body-text-color-subdued); border-style: dashed; }
.reader .reader-empty { border: none; padding: 0; }
.cite-sample { color: var(--color-accent); font-weight: 600; }
.reader-label { font-size: 0.75em; text-transform: uppercase; letter-spacing: 0.06em;
  color: var(--color-accent); font-weight: 600; }
.reader-title { font-family: Georgia, "Times New Roman", serif; font-size: 1.45em;
  line-height: 1.25; margin: 6px 0 4px 0; }
.reader-meta { font-size: 0.88em; color: var(--body-text-color-subdued); margin-bottom: 10px; }
.reader-text { position: relative; white-space: pre-wrap; overflow-wrap: anywhere;
  font-family: Georgia, "Times New Roman", serif; font-size: 1.02em; line-height: 1.6;
  max-height: 62vh; overflow-y: auto; padding-right: 8px;
  border-top: 1px solid var(--border-color-primary); padding-top: 10px; }
.reader-text mark.cited { background: #fde68a; color: inherit; padding: 1px 2px;
  border-radius: 3px; box-shadow: 0 0 0 2px #fde68a; }
.dark .reader-text mark.cited { background: #854d0e; box-shadow: 0 0 0 2px #854d0e; color: #fff; }
.reader-id { font-size: 0.75em; color: var(--body-text-color-subdued); margin-top: 8px; }
table.corpus, table.ingest { width: 100%; border-collapse: collapse; font-size: 0.92em;
  border: none; }
table.corpus tr, table.ingest tr { border: none; }
#corpus a, #search-results a, #reader a { padding: 0; }
table.corpus th, table.ingest th, table.corpus td, table.ingest td { border: none;
  border-bottom: 1px solid var(--border-color-primary); padding: 6px 8px; text-align: left;
  vertical-align: top; background: none; }
table.corpus th, table.ingest th { border-bottom-width: 2px; font-weight: 600; }
table.corpus .num { text-align: right; }
table.corpus .date { white-space: nowrap; }
table.corpus a { text-decoration: none; font-weight: 600; }
table.corpus a:hover { text-decoration: underline; }
table.corpus .id { font-family: var(--font-mono); font-size: 0.8em;
  color: var(--body-text-color-subdued); }
.ingest-summary { font-weight: 600; }
.status { border-radius: 999px; padding: 1px 9px; font-size: 0.85em; font-weight: 600; }
.status-added { background: #dcfce7; color: #166534; }
.status-replaced { background: #dbeafe; color: #1e40af; }
.status-unchanged { background: #f1f5f9; color: #475569; }
.status-failed { background: #fee2e2; color: #991b1b; }
.status-skipped { background: #fef9c3; color: #854d0e; }
ol.passages { list-style: none; padding: 0; margin: 0; }
li.passage { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: 10px 14px; margin-bottom: 10px; }
.passage-head .rank { font-weight: 700; color: var(--color-accent); margin-right: 4px; }
.passage-title { font-weight: 600; text-decoration: none; }
.passage-title:hover { text-decoration: underline; }
.passage-scores { font-family: var(--font-mono); font-size: 0.8em;
  color: var(--body-text-color-subdued); margin: 2px 0 6px 0; }
.passage-text { white-space: pre-wrap; font-size: 0.93em; line-height: 1.5; }
"""

# Clicks on any citation link in the page (chat, search, corpus) open the reader panel; after an
# update the highlighted quote is scrolled into the middle of the article text. "edit" after a
# "Searched for" line puts that query in the question box, to correct it and ask again.
READER_JS = """
const open = (event) => {
  const wanted = 'a[href^="#cite-"], a[href="#edit-query"]';
  const link = event.target.closest && event.target.closest(wanted);
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  if (link.getAttribute('href') === '#edit-query') {
    const query = link.closest('.searched-for').querySelector('.query').textContent;
    const box = document.querySelector('#question textarea');
    box.value = query;
    box.dispatchEvent(new Event('input', {bubbles: true}));
    box.focus();
    return;
  }
  trigger('click', {cite: link.getAttribute('href')});
};
if (window.__assistantReaderClick) {
  document.removeEventListener('click', window.__assistantReaderClick, true);
}
window.__assistantReaderClick = open;
document.addEventListener('click', open, true);
watch('value', () => {
  const box = element.querySelector('.reader-text');
  const mark = element.querySelector('mark.cited');
  if (!box) return;
  box.scrollTop = mark ? Math.max(0, mark.offsetTop - box.clientHeight / 3) : 0;
  if (window.innerWidth < 900) element.scrollIntoView({behavior: 'smooth'});
});
"""


def _messages(turns: list[Turn]) -> list[dict[str, str]]:
    messages = []
    for t in turns:
        messages.append({"role": "user", "content": md_escape(t.question)})
        messages.append({"role": "assistant", "content": answer_markdown(t.answer)})
    return messages


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
        return f"## News assistant\n{mode} · **{n:,} articles**"

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
        question: str, turns: list[Turn], since: str, until: str, request: gr.Request
    ) -> Iterator[tuple[Any, ...]]:
        question = (question or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        messages = _messages(turns) + [{"role": "user", "content": md_escape(question)}]
        pending = {"role": "assistant", "content": "*Searching the articles…*"}
        yield [*messages, pending], "", gr.skip(), gr.skip()
        try:
            when = period(since, until)
            answer, draft, shown = None, "", time.monotonic()
            for item in assistant.stream(
                question, history=[t.question for t in turns], since=when.since, until=when.until
            ):
                if isinstance(item, Answer):
                    answer = item
                    continue
                draft += item  # a language model's draft, shown as such until it is checked
                if time.monotonic() - shown > STREAM_PAUSE:
                    shown = time.monotonic()
                    text = f"*Draft, being checked against the articles…*\n\n{md_escape(draft)}"
                    message = {"role": "assistant", "content": text}
                    yield [*messages, message], gr.skip(), gr.skip(), gr.skip()
            assert answer is not None
        except Exception as e:  # shown in the chat rather than as a stack trace
            failed = {"role": "assistant", "content": f"**Could not answer:** {md_escape(str(e))}"}
            yield [*messages, failed], gr.skip(), gr.skip(), gr.skip()
            return
        for partial in answer_stream(answer):
            yield (
                [*messages, {"role": "assistant", "content": partial}],
                gr.skip(),
                gr.skip(),
                gr.skip(),
            )
            time.sleep(STREAM_PAUSE)
        turns = [*turns, Turn(question, answer)]
        yield gr.skip(), gr.skip(), turns, gr.update(value=export(turns, request), interactive=True)

    def export(turns: list[Turn], request: gr.Request) -> str:
        """The conversation as a Markdown file: one per browser session, rewritten each answer."""
        folder = exports_dir / re.sub(r"\W", "", str(request.session_hash or "anonymous"))
        folder.mkdir(exist_ok=True)
        for old in folder.glob("*.md"):
            old.unlink()
        path = folder / export_name()
        path.write_text(conversation_markdown(turns), encoding="utf-8")
        return str(path)

    def new_conversation() -> tuple[list[Any], list[Turn], Any, str]:
        return [], [], gr.update(value=None, interactive=False), READER_PLACEHOLDER

    def open_citation(evt: gr.EventData) -> str:
        ref = parse_cite(str(getattr(evt, "cite", "") or ""))
        article = assistant.get(ref.article_id) if ref else None
        if ref is None or article is None:
            return missing_html(ref)
        return article_html(article, ref, nonce=next(opened))

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
        turns = gr.State([])
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
                            question = gr.Textbox(
                                elem_id="question",
                                show_label=False,
                                placeholder="e.g. What did Putin ask Musk not to do?",
                                scale=6,
                                autofocus=True,
                                max_lines=4,
                                max_length=settings.max_question_chars,
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
                            query = gr.Textbox(
                                elem_id="search-query",
                                show_label=False,
                                placeholder="Search the articles: the ranked passages, no answer",
                                scale=6,
                                max_length=settings.max_question_chars,
                            )
                            k = gr.Slider(
                                1, 30, value=settings.top_k, step=1, label="Passages", scale=2
                            )
                            find = gr.Button("Search", variant="primary", scale=1, elem_id="search")
                        results = gr.HTML(passages_html("", []), elem_id="search-results")
                    with gr.Tab("Add articles", id="add"):
                        files = gr.File(
                            label=f"Files: {' '.join(FILE_TYPES)} · up to {limit} each",
                            file_count="multiple",
                            file_types=FILE_TYPES,
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
                                scale=4,
                                elem_id="remove-choice",
                            )
                            drop = gr.Button(
                                "Remove", variant="stop", scale=1, min_width=120, elem_id="remove"
                            )
                        removed = gr.Markdown(elem_id="remove-result")
                        corpus = gr.HTML(elem_id="corpus")
            with gr.Column(scale=2, min_width=360, elem_id="reader-column"):
                reader = gr.HTML(READER_PLACEHOLDER, elem_id="reader", js_on_load=READER_JS)

        shown = [corpus, choice, title]
        listed = [*shown, corpus_find]
        chat_io: dict[str, Any] = dict(
            fn=respond,
            inputs=[question, turns, since, until],
            outputs=[chatbot, question, turns, download],
            show_progress="minimal",
            show_progress_on=[chatbot],
        )
        question.submit(**chat_io, api_name="ask")
        ask.click(**chat_io, api_visibility="private")
        fresh = [chatbot, turns, download, reader]
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
        drop.click(remove, choice, [removed, *listed], api_name="remove", **corpus_write)
        corpus_tab.select(listing, corpus_find, shown, api_visibility="private")
        corpus_find.change(
            listing,
            corpus_find,
            shown,
            api_visibility="private",
            trigger_mode="always_last",
            show_progress="hidden",
        )
        app.load(refresh, None, listed, api_visibility="private")
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
        theme=gr.themes.Default(primary_hue="blue", neutral_hue="slate"),
        css=CSS,
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
    parser.add_argument("--data-dir", type=Path, help="where the store lives (default: ./data)")
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
