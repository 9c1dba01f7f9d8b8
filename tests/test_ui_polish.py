"""The chat window as a new user meets it, in Debian's Chromium: counts, removing, quotation marks,
the downloaded record, fonts, a phone-sized screen and a page reload."""

# The fixtures shared with test_ui are imported by name, and tests take them as arguments.
# ruff: noqa: F811
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from test_ui import (  # noqa: F401  (fixtures: the browser and its settings, the page)
    ANSWER_TIMEOUT,
    Served,
    app,
    ask,
    bot_messages,
    browser_context_args,
    browser_type_launch_args,
    open_tab,
)
from ui_server import serving

from assistant.assistant import Assistant, standalone_query
from assistant.embeddings import ModelEmbedder
from assistant.settings import Settings

FERRY_TITLE = "Brightwater ferry keeps its winter fares at $45"
FERRY = """Brightwater Lines & Co, which runs the Brightwater ferry, said on Tuesday that it
would not raise its winter fares this year.
“The 7-day pass stays at $45 for every winter crossing, and children under 12 travel free.”
Passengers at the harbour terminal had asked about the fares for the season.
"""
QUESTION = "How much does the 7-day pass on the Brightwater ferry cost?"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(embedder: ModelEmbedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The real app on a free port over one article (the ferry's)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("polish-data"))
    assistant = Assistant(settings, embedder=embedder)
    assert assistant.add_text(FERRY, FERRY_TITLE, None).count("failed") == 0
    try:
        with serving(assistant) as (url, outbound):
            yield Served(url, assistant, outbound)
    finally:
        assistant.close()


def platform_fonts(page: Page, selector: str) -> set[str]:
    """The fonts Chromium actually drew the element's text with (after any fallback): their
    PostScript names; only fonts the app serves (no system font filled in for a glyph)."""
    page.evaluate("document.fonts.ready.then(() => true)")
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    assert node, f"nothing matches {selector}"
    fonts: list[dict[str, Any]] = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cdp.detach()
    assert all(f["isCustomFont"] for f in fonts), f"{selector}: a system font was used: {fonts}"
    return {f["postScriptName"] for f in fonts}


def test_one_article_is_counted_in_the_singular(app: Page, served: Served) -> None:
    assert len(served.assistant.list_articles()) == 1
    expect(app.locator("#header")).to_contain_text("· 1 article")
    expect(app.locator("#header")).not_to_contain_text("1 articles")


def test_a_quotation_keeps_one_pair_of_marks_and_the_record_no_stray_backslashes(
    app: Page, served: Served
) -> None:
    expected = served.assistant.ask(QUESTION)
    quotation = [c for c in expected.citations if c.quote.startswith("“")]
    assert quotation, f"the quotation is not quoted: {expected.citations}"
    answer = ask(app, QUESTION)
    shown = answer.locator("blockquote").filter(has_text="The 7-day pass").inner_text()
    assert shown.startswith("“The 7-day pass") and "““" not in shown and "””" not in shown
    with app.expect_download() as download:
        app.locator("#download").click()
    record = Path(download.value.path()).read_text(encoding="utf-8")
    assert f"> {quotation[0].quote} [{quotation[0].n}]" in record
    assert f"## {QUESTION}" in record and f"[1] {FERRY_TITLE} (article" in record
    assert "\\" not in record, record


def test_bold_text_is_drawn_in_one_font(app: Page, served: Served) -> None:
    answer = ask(app, QUESTION)
    answer.locator('blockquote a[href^="#cite-"]').first.click()
    expect(app.locator("#reader .reader-label")).to_contain_text("Quoted as")
    drawn_with: set[str] = set()
    for selector in ("#reader .reader-label", "#chat .sources-head", "#header strong"):
        drawn_with |= platform_fonts(app, selector)  # "QUOTED AS", "SOURCES", "1 article"
    open_tab(app, "Add articles")
    drawn_with |= platform_fonts(app, "#add-files")
    assert len(drawn_with) == 1, drawn_with
    (bold,) = drawn_with
    assert bold.endswith("-Bold")
    # The header's line: regular text and the bold count, in the same family.
    regular = bold.removesuffix("-Bold") + "-Regular"
    assert platform_fonts(app, "#header p") == {bold, regular}


def test_removing_an_article_asks_first(app: Page, served: Served) -> None:
    title = "Harbour terminal opens a second waiting room"
    text = "The Brightwater harbour terminal opened a second waiting room for ferry passengers."
    served.assistant.add_text(text, title, None)
    app.reload()
    open_tab(app, "Corpus")
    app.locator("#remove-choice input").click()
    app.get_by_role("option", name=title, exact=False).click()
    app.locator("#remove").click()
    expect(app.locator("#remove-question")).to_contain_text(f"Remove “{title}”")
    assert served.assistant.get(served.assistant.list_articles()[-1].id) is not None
    app.locator("#remove-no").click()
    expect(app.locator("#remove-confirm")).to_be_hidden()
    expect(app.locator("#corpus")).to_contain_text(title)
    assert any(a.title == title for a in served.assistant.list_articles())
    app.locator("#remove").click()
    app.locator("#remove-yes").click()
    expect(app.locator("#remove-result")).to_contain_text(f"Removed “{title}”")
    expect(app.locator("#corpus")).not_to_contain_text(title)
    assert not any(a.title == title for a in served.assistant.list_articles())


def test_the_conversation_survives_a_page_reload(app: Page, served: Served) -> None:
    first = ask(app, QUESTION)
    text = first.inner_text()
    app.reload()
    expect(bot_messages(app)).to_have_count(1, timeout=ANSWER_TIMEOUT)
    assert bot_messages(app).first.inner_text() == text
    expect(app.locator("#download")).to_be_enabled()
    # The follow-up is still read with the earlier question.
    follow_up = "And for children?"
    searched = standalone_query(follow_up, [QUESTION])
    second = ask(app, follow_up)
    expect(second.locator(".searched-for .query")).to_have_text(searched)
    # A new conversation is forgotten by the browser too.
    app.locator("#new").click()
    expect(bot_messages(app)).to_have_count(0)
    app.reload()
    expect(app.locator("#question textarea")).to_be_visible()
    app.wait_for_timeout(1000)  # the stored conversation, if any, is restored on load
    expect(bot_messages(app)).to_have_count(0)


def test_a_phone_screen_can_search_browse_the_corpus_and_get_back(
    browser: Browser, served: Served
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(served.url)
        no_sideways = "() => document.documentElement.scrollWidth <= innerWidth"
        open_tab(page, "Search")
        box = page.locator("#search-query textarea").bounding_box()
        assert box and box["width"] >= 300, f"the Search box is squeezed: {box}"
        page.locator("#search-query textarea").fill("winter fares")
        page.locator("#search").click()
        expect(page.locator("#search-results li.passage").first).to_be_visible()
        assert page.evaluate(no_sideways)

        open_tab(page, "Corpus")
        table = page.locator("table.corpus")
        expect(table).to_be_visible()
        right = page.evaluate(
            "() => document.querySelector('table.corpus').getBoundingClientRect().right"
        )
        assert right <= 390, "the Corpus table runs off the screen"
        assert page.evaluate(no_sideways)
        table.get_by_role("link", name=FERRY_TITLE).click()
        reader = page.locator("#reader .reader-title")
        expect(reader).to_have_text(FERRY_TITLE)
        page.wait_for_function(  # the reader, below the tabs on a phone, is scrolled to
            "() => document.querySelector('#reader').getBoundingClientRect().top < innerHeight"
        )
        back = page.locator("#reader .back-to-chat")
        expect(back).to_be_visible()
        back.click()
        page.wait_for_function(
            "() => { const t = document.querySelector('#main').getBoundingClientRect().top;"
            " return t >= -1 && t < innerHeight / 2; }"
        )
        open_tab(page, "Chat")
        expect(page.locator("#question textarea")).to_be_in_viewport()
    finally:
        context.close()


def test_the_back_link_is_only_for_narrow_screens(app: Page, served: Served) -> None:
    open_tab(app, "Corpus")
    app.locator("table.corpus").get_by_role("link", name=FERRY_TITLE).click()
    expect(app.locator("#reader .reader-title")).to_have_text(FERRY_TITLE)
    expect(app.locator("#reader .back-to-chat")).to_be_hidden()
