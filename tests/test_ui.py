"""The chat window end to end: the real app served on 127.0.0.1, driven in Debian's Chromium."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Locator, Page, expect
from ui_server import CHROMIUM, CHROMIUM_ARGS, load_ui, serving

from assistant.assistant import Assistant, standalone_query
from assistant.conversation import md_escape
from assistant.embeddings import ModelEmbedder
from assistant.settings import PROJECT_DIR, Settings, UnsafeServing

ARTICLES = Path(__file__).parent / "data" / "articles"
SAMPLE = PROJECT_DIR / "corpus" / "musk-putin-contact.txt"
ARTIFACTS = Path(__file__).parent / "artifacts"
UPLOAD_LIMIT = 200_000  # small, so the over-the-limit upload in a test is small too
ANSWER_TIMEOUT = 60_000  # ms; answers take a second or two, a busy CI machine more

LIGHTHOUSE = """Gull Point lighthouse gets its first new keeper in four decades
The Gull Point lighthouse on Marrow Island has a new keeper for the first time in 40 years.
Ingrid Solberg, a former ferry pilot, took over the light on Monday from Tomas Berg.
Berg had kept the light since 1985.
Solberg said she would keep the lamp lit by hand during winter storms, as Berg always did.
"""

MALICIOUS_TITLE = 'Ferry <b>timetable</b> <img src=x onerror="window.__pwned=1">'
MALICIOUS_TEXT = """The Brightwater ferry service published a new winter timetable on Friday.
<script>window.__pwned=1</script> The winter timetable adds six evening crossings to Brightwater.
Riders were warned about <img src=x onerror="window.__pwned=1"> fake timetable sites.
Template text such as ${window.__pwned=1} and {{constructor}} is just text too.
"""


@dataclass
class Served:
    url: str
    assistant: Assistant
    outbound: list[str]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium, without the background traffic it makes by default (STACK.md)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1400, "height": 900}}


@pytest.fixture(scope="module")
def served(embedder: ModelEmbedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The real app on a free port, over the test articles and the sample article."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("ui-data"), max_upload_bytes=UPLOAD_LIMIT)
    assistant = Assistant(settings, embedder=embedder)
    report = assistant.add([ARTICLES, SAMPLE])
    assert report.count("failed") == 0, report.failed
    try:
        with serving(assistant) as (url, outbound):
            yield Served(url, assistant, outbound)
    finally:
        assistant.close()


@pytest.fixture
def app(page: Page, served: Served) -> Iterator[Page]:
    """The app open in a fresh page; afterwards, every request the page made went to the app."""
    requests: list[str] = []
    page.context.on("request", lambda request: requests.append(request.url))  # every tab
    page.set_default_timeout(20_000)
    page.goto(served.url)
    expect(page.locator("#question textarea")).to_be_visible(timeout=20_000)  # a busy machine
    yield page
    app_origin = urlsplit(served.url).netloc
    outside = [
        u
        for u in requests
        if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).netloc != app_origin
    ]
    assert not outside, f"the page made requests outside {app_origin}: {outside}"
    assert requests, "no request was recorded at all"


def bot_messages(page: Page) -> Locator:
    return page.locator('#chat [data-testid="bot"]')


def ask(page: Page, question: str) -> Locator:
    """Ask in the chat; wait until the streamed answer is complete; return its message."""
    before = bot_messages(page).count()
    page.locator("#question textarea").fill(question)
    page.locator("#question textarea").press("Enter")
    message = bot_messages(page).nth(before)
    expect(message.locator(".searched-for")).to_be_visible(timeout=ANSWER_TIMEOUT)
    page.wait_for_function(
        """() => [...document.querySelectorAll('#chat [data-testid="status-tracker"]')]
                 .every(s => s.classList.contains('hide'))""",
        timeout=ANSWER_TIMEOUT,
    )
    return message


def normalize(text: str) -> str:
    return " ".join(text.split())


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def upload(page: Page, path: Path) -> None:
    """Choose a file in the upload box and wait until it is on the server (its link shows)."""
    page.locator("#upload input[type=file]").set_input_files([str(path)])
    expect(page.locator(f'#upload a[href$="/{path.name}"]')).to_be_visible()


def reader_mark(page: Page) -> Locator:
    mark = page.locator("#reader mark.cited")
    expect(mark).to_be_visible()
    return mark


def assert_scrolled_into_view(page: Page) -> None:
    """The highlighted span is inside the visible part of the reader's scrolling text."""
    page.wait_for_function(
        """() => {
            const box = document.querySelector('#reader .reader-text');
            const mark = document.querySelector('#reader mark.cited');
            if (!box || !mark) return false;
            const b = box.getBoundingClientRect(), m = mark.getBoundingClientRect();
            return m.top >= b.top - 1 && m.top < b.bottom && m.top >= 0 && m.top < innerHeight;
        }"""
    )


@pytest.mark.browser
def test_ask_stream_open_citation_follow_up_and_download(app: Page, served: Served) -> None:
    page = app
    question = "Is Musk talking regularly with the Russian president?"
    expected = served.assistant.ask(question)
    # Two quotes, so that streaming and the second citation link are seen.
    assert not expected.abstained and len(expected.citations) > 1, expected.text

    # Count the quotes in the newest answer as it changes, to see it stream in.
    page.evaluate(
        """() => {
            window.__quoteCounts = [];
            new MutationObserver(() => {
                const bots = document.querySelectorAll('#chat [data-testid="bot"]');
                const last = bots[bots.length - 1];
                if (last) window.__quoteCounts.push(last.querySelectorAll('blockquote').length);
            }).observe(document.querySelector('#chat'),
                       {childList: true, subtree: true, characterData: true});
        }"""
    )
    answer = ask(page, question)
    quotes = answer.locator("blockquote")
    expect(quotes).to_have_count(len(expected.citations))
    for shown, citation in zip(quotes.all(), expected.citations, strict=True):
        assert normalize(citation.quote) in normalize(shown.inner_text())
        assert f"[{citation.n}]" in shown.inner_text()
    counts = page.evaluate("window.__quoteCounts")
    assert any(0 < c < len(expected.citations) for c in counts), f"not streamed: {counts}"
    sources = answer.get_by_text("Sources")
    expect(sources).to_be_visible()
    for source in expected.sources:
        expect(answer).to_contain_text(source.title)
    expect(answer.locator(".searched-for .query")).to_have_text(question)

    # Click [1]: the article opens beside the chat, the quote highlighted and in view.
    citation = expected.citations[0]
    answer.locator('a[href^="#cite-"]').first.click()
    mark = reader_mark(page)
    assert mark.text_content() == citation.quote
    expect(page.locator("#reader .reader-title")).to_have_text(citation.title)
    expect(page.locator("#reader .reader-label")).to_contain_text(f"[{citation.n}]")
    assert_scrolled_into_view(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-citation.png"))

    # Every other citation link highlights its own quote.
    links = answer.locator('blockquote a[href^="#cite-"]')
    for i, cited in enumerate(expected.citations[1:], 1):
        links.nth(i).click()
        expect(page.locator("#reader mark.cited")).to_have_text(cited.quote)

    # A follow-up is searched with the names asked about before, and says so.
    follow_up = "Has he been in regular contact with him?"
    searched = standalone_query(follow_up, [question])
    assert searched != follow_up
    second = ask(page, follow_up)
    expect(second.locator(".searched-for .query")).to_have_text(searched)
    # "edit" puts the searched query in the question box, to correct it and ask again.
    second.get_by_role("link", name="edit").click()
    expect(page.locator("#question textarea")).to_have_value(searched)
    page.locator("#question textarea").fill("")

    # The conversation downloads as Markdown with its quotes, citations and sources.
    with page.expect_download() as download:
        page.locator("#download").click()
    path = download.value.path()
    assert download.value.suggested_filename.endswith(".md")
    record = Path(path).read_text(encoding="utf-8")
    assert f"## {md_escape(question)}" in record and f"## {md_escape(follow_up)}" in record
    for c in expected.citations:
        assert f"“{md_escape(c.quote)}” [{c.n}]" in record
        assert f"characters {c.start}–{c.end}" in record or f"{c.start}–{c.end}" in record
    assert "Sources:" in record and md_escape(expected.sources[0].title) in record
    assert f"Searched for: {md_escape(searched)}" in record

    # A new conversation forgets the earlier questions: the follow-up is searched as typed.
    page.locator("#new").click()
    expect(bot_messages(page)).to_have_count(0)
    expect(page.locator("#download")).to_be_disabled()
    alone = ask(page, follow_up)
    expect(alone.locator(".searched-for .query")).to_have_text(follow_up)


@pytest.mark.browser
def test_search_tab_shows_ranked_passages_with_scores(app: Page, served: Served) -> None:
    page = app
    query = "harbor wall storm evacuation"
    expected = served.assistant.search(query)
    open_tab(page, "Search")
    page.locator("#search-query textarea").fill(query)
    page.locator("#search").click()
    passages = page.locator("#search-results li.passage")
    expect(passages).to_have_count(len(expected))
    for shown, passage in zip(passages.all(), expected, strict=True):
        expect(shown.locator(".passage-title")).to_have_text(passage.title)
        expect(shown.locator(".passage-scores")).to_contain_text(f"fused {passage.score:.4f}")
    passages.first.locator(".passage-title").click()
    assert reader_mark(page).text_content() == expected[0].text


@pytest.mark.browser
def test_upload_ask_then_remove(app: Page, served: Served, tmp_path: Path) -> None:
    page = app
    article = tmp_path / "gull-point-lighthouse.txt"
    article.write_text(LIGHTHOUSE, encoding="utf-8")
    too_big = tmp_path / "too-big.txt"
    too_big.write_text("Big file\n" + "All work and no play. " * 12_000, encoding="utf-8")

    open_tab(page, "Add articles")
    upload(page, article)
    page.locator("#add-files").click()
    result = page.locator("#add-result")
    expect(result.locator("tr.added")).to_contain_text(article.name, timeout=ANSWER_TIMEOUT)
    expect(result).to_contain_text("1 added, 0 unchanged, 0 replaced, 0 failed")

    # The same file again changes nothing; a file over the limit is refused with the limit named.
    upload(page, article)
    page.locator("#add-files").click()
    expect(result.locator("tr.unchanged")).to_contain_text(article.name, timeout=ANSWER_TIMEOUT)
    page.locator("#upload input[type=file]").set_input_files([str(too_big)])
    toast = page.locator('[data-testid="toast-body"]')
    expect(toast).to_contain_text("exceed the maximum allowed size of 195.3", timeout=10_000)
    expect(page.locator("#upload")).to_contain_text("195.3 KB")  # the label says the limit too

    # It is answerable at once.
    open_tab(page, "Chat")
    answer = ask(page, "Who is the new keeper of the Gull Point lighthouse?")
    expect(answer.locator("blockquote").first).to_contain_text("Ingrid Solberg")
    expect(answer).to_contain_text("Gull Point lighthouse gets its first new keeper")

    # In the corpus tab, the newest first; Find narrows the list and the remove choices.
    open_tab(page, "Corpus")
    corpus = page.locator("#corpus")
    expect(corpus.locator("tbody tr").first).to_contain_text("Gull Point lighthouse")
    page.locator("#corpus-find input, #corpus-find textarea").fill("lighthouse GULL")
    expect(corpus.locator("tbody tr")).to_have_count(1)
    page.locator("#remove-choice input").click()
    expect(page.get_by_role("option")).to_have_count(1)
    page.get_by_role("option", name=re.compile("Gull Point lighthouse")).click()
    # Removing asks first; Cancel keeps the article.
    page.locator("#remove").click()
    expect(page.locator("#remove-question")).to_contain_text("Remove “Gull Point lighthouse")
    page.locator("#remove-no").click()
    expect(page.locator("#remove-result")).to_have_text("Nothing was removed.")
    expect(page.locator("#remove-confirm")).to_be_hidden()
    expect(corpus).to_contain_text("Gull Point lighthouse")
    # Confirmed, it is gone from the list and from the store, and the list shows all again.
    page.locator("#remove").click()
    page.locator("#remove-yes").click()
    expect(page.locator("#remove-result")).to_contain_text("Removed “Gull Point lighthouse")
    expect(corpus).not_to_contain_text("Gull Point lighthouse")
    expect(corpus.locator("tbody tr")).to_have_count(len(served.assistant.list_articles()))
    expect(page.locator("#corpus-find input, #corpus-find textarea")).to_have_value("")
    page.locator("#corpus-find input, #corpus-find textarea").fill("no such words")
    expect(corpus).to_contain_text("No article matches “no such words”")
    titles = [a.title for a in served.assistant.list_articles()]
    assert not any("Gull Point" in t for t in titles)


@pytest.mark.browser
def test_malicious_article_is_shown_as_text(app: Page, served: Served) -> None:
    page = app
    open_tab(page, "Add articles")
    page.get_by_text("…or paste an article").click()
    page.locator("#paste-title textarea, #paste-title input").first.fill(MALICIOUS_TITLE)
    page.locator("#paste-url textarea, #paste-url input").first.fill("javascript:window.__pwned=1")
    page.locator("#paste-text textarea").fill(MALICIOUS_TEXT)
    page.locator("#add-text").click()
    expect(page.locator("#add-result tr.added")).to_be_visible(timeout=ANSWER_TIMEOUT)

    open_tab(page, "Chat")
    answer = ask(page, "How many evening crossings does the Brightwater winter timetable add?")
    answer.locator('a[href^="#cite-"]').first.click()
    reader = page.locator("#reader")
    expect(reader.locator(".reader-title")).to_have_text(MALICIOUS_TITLE)
    text = reader.locator(".reader-text")
    expect(text).to_contain_text("<script>window.__pwned=1</script>")
    expect(text).to_contain_text('<img src=x onerror="window.__pwned=1">')
    expect(text).to_contain_text("${window.__pwned=1} and {{constructor}}")
    assert reader.locator("script, img, b").count() == 0
    mark = reader_mark(page).text_content() or ""
    # The highlight is the stored (cleaned) text, where the pasted lines became paragraphs.
    stored = next(
        served.assistant.get(a.id)
        for a in served.assistant.list_articles()
        if a.title == MALICIOUS_TITLE
    )
    assert stored is not None and mark and mark in stored.text
    # Also in the chat's quote and in the corpus list, the markup is text.
    expect(page.locator("#chat img")).to_have_count(0)
    open_tab(page, "Corpus")
    expect(page.locator("#corpus")).to_contain_text(MALICIOUS_TITLE)
    assert page.locator('a[href^="javascript:"]').count() == 0
    page.wait_for_timeout(300)  # give a stray onerror every chance to fire
    assert page.evaluate("typeof window.__pwned") == "undefined"


def bulk_jsonl(path: Path, n: int) -> Path:
    """`n` made-up articles of a few paragraphs each, as one JSONL file."""
    towns = ["Alder", "Birch", "Cedar", "Dunmore", "Elling", "Fenwick", "Glenn", "Harrow"]
    lines = []
    for i in range(n):
        town = f"{towns[i % len(towns)]}ton {i}"
        text = " ".join(
            f"The {town} council met on day {d} to discuss road {i * 7 + d} and the library "
            f"budget of {i * 1000 + d} dollars; residents asked about bus route {d + i}."
            for d in range(4)
        )
        record = {"id": f"bulk-{i}", "title": f"{town} council notes", "text": text}
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.browser
def test_period_limits_the_articles_and_is_shown(app: Page, served: Served) -> None:
    question = "Which university built the Kestrel-1 satellite?"
    app.locator("#period").get_by_text("Period").click()
    app.locator("#since textarea, #since input").first.fill("2025-04")
    app.locator("#until textarea, #until input").first.fill("2025-04")
    answer = ask(app, question)
    expect(answer).to_contain_text("Articles from 1–30 April 2025.")
    # The sentence that names a university answers "which university" (the answer-type cue).
    expect(answer.locator("blockquote").first).to_contain_text("Carrow State University")
    # The reader points at the answer's words: bold in the quote and in the opened article.
    expect(answer.locator("blockquote strong").first).to_have_text("Carrow State University")
    answer.locator('blockquote a[href^="#cite-"]').first.click()
    expect(app.locator("#reader mark.cited strong.answer")).to_have_text("Carrow State University")
    # Only the April article (wire-satellite-0002, 11 April 2025) can be cited.
    cited = answer.locator('blockquote a[href^="#cite-"]')
    hrefs = [cited.nth(i).get_attribute("href") or "" for i in range(cited.count())]
    assert hrefs and all(h.endswith("-wire-satellite-0002") for h in hrefs), hrefs

    app.locator("#since textarea, #since input").first.fill("2020")
    app.locator("#until textarea, #until input").first.fill("2020")
    empty = ask(app, question)
    expect(empty).to_contain_text("No articles from 1 January – 31 December 2020")
    expect(empty.locator("blockquote")).to_have_count(0)

    app.locator("#since textarea, #since input").first.fill("March")
    before = bot_messages(app).count()
    app.locator("#question textarea").fill(question)
    app.locator("#question textarea").press("Enter")
    expect(bot_messages(app).nth(before)).to_contain_text("'March' is not a date")


@pytest.mark.browser
def test_chat_answers_while_someone_adds_articles(
    app: Page, served: Served, tmp_path: Path
) -> None:
    bulk = bulk_jsonl(tmp_path / "bulk.jsonl", 96)
    adder = app.context.new_page()
    adder.goto(served.url)
    open_tab(adder, "Add articles")
    upload(adder, bulk)
    adder.locator("#add-files").click()
    progress = adder.locator("#add-result .progress-level")
    expect(progress).to_contain_text("Storing articles", timeout=ANSWER_TIMEOUT)

    # Meanwhile another person's question is answered, before the indexing is done.
    answer = ask(app, "Who won the Northern Cup final?")
    expect(answer.locator("blockquote").first).to_contain_text("Lakeside Rovers")
    assert adder.locator("#add-result table").count() == 0, "indexing ended before the answer"

    result = adder.locator("#add-result")
    expect(result).to_contain_text("96 added, 0 unchanged", timeout=120_000)
    count = len(served.assistant.list_articles())
    expect(adder.locator("#header")).to_contain_text(f"{count} articles")
    adder.close()


@pytest.mark.browser
def test_server_made_no_outside_connection(served: Served) -> None:
    """Nothing in the server process (Gradio, Chroma, the model) reached beyond 127.0.0.1."""
    assert served.outbound == []


class FakeApp:
    """Stands in for gr.Blocks: records how launch() would serve it."""

    def __init__(self) -> None:
        self.queued: dict[str, Any] = {}
        self.launched: dict[str, Any] = {}

    def queue(self, **kwargs: Any) -> None:
        self.queued = kwargs

    def launch(self, **kwargs: Any) -> None:
        self.launched = kwargs


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "0.0.0.0", "192.0.2.7"])
def test_launch_asks_for_the_login_wherever_one_is_set(host: str) -> None:
    ui = load_ui()
    settings = Settings(auth_user="ann", auth_password="pw", max_upload_bytes=1234)
    app = FakeApp()
    ui.launch(app, settings, host, 8000)
    assert app.launched["server_name"] == host and app.launched["server_port"] == 8000
    assert app.launched["auth"] == ("ann", "pw")
    assert app.launched["share"] is False and app.launched["max_file_size"] == 1234
    assert app.queued["default_concurrency_limit"] > 1  # chats do not wait for each other


def test_launch_refuses_an_open_network_address_unless_told_no_auth(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ui = load_ui()
    app = FakeApp()
    ui.launch(app, Settings())
    assert (app.launched["server_name"], app.launched["server_port"]) == ("127.0.0.1", 7860)
    assert app.launched["auth"] is None
    assert capsys.readouterr().err == ""

    refused = FakeApp()
    with pytest.raises(UnsafeServing, match="ASSISTANT_AUTH_USER and ASSISTANT_AUTH_PASSWORD"):
        ui.launch(refused, Settings(host="0.0.0.0"))
    assert refused.launched == {} and refused.queued == {}  # refused before serving

    ui.launch(app, Settings(host="0.0.0.0", no_auth=True))
    assert app.launched["server_name"] == "0.0.0.0" and app.launched["auth"] is None
    assert "without a login (--no-auth)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "login",
    [{"auth_user": "ann"}, {"auth_password": "pw"}, {"auth_user": "ann", "auth_password": "pw"}],
)
def test_launch_refuses_half_a_login_or_a_login_with_no_auth(login: dict[str, str]) -> None:
    ui = load_ui()
    no_auth = len(login) == 2
    with pytest.raises(UnsafeServing, match="--no-auth" if no_auth else "or neither"):
        ui.launch(FakeApp(), Settings(**login, no_auth=no_auth))
