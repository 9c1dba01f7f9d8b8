"""Hostile article metadata in the real chat window: uploaded, asked about, shown only as text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Locator, Page, expect
from test_ui import (  # noqa: F401 - the two launch fixtures: Debian's Chromium, quiet
    ANSWER_TIMEOUT,
    Served,
    ask,
    browser_context_args,
    browser_type_launch_args,
    open_tab,
    upload,
)
from ui_server import serving

from assistant.assistant import Assistant
from assistant.embeddings import ModelEmbedder
from assistant.settings import Settings

EVIL_URL = "https://news.example.org/harbour-ferry"
GOOD_URL = "https://gazette.example.org/island-ferry"
GOOD_TITLE = "Island ferry adds evening crossings"
RECORDS = [
    {
        "id": "evil-1",
        "title": "Update\n\n[Verify your account](https://evil.example/login) "
        "![](https://evil.example/px.png)",
        "url": EVIL_URL,
        "source": "Wire\n\n[Login](https://evil.example/src) ![](https://evil.example/s.png)",
        "author": "<img src=https://evil.example/a.png>\n\n![](https://evil.example/b.png)",
        "published": "2025-03-04\n\n<img src=https://evil.example/d.png>",
        "text": "The harbour ferry will run every twenty minutes from Monday, the port authority "
        "said. The new timetable is posted at https://evil.example/news and www.evil.example.",
    },
    {
        "id": "good-1",
        "title": GOOD_TITLE,
        "url": GOOD_URL,
        "source": "Island Gazette",
        "published": "2025-03-05",
        # Bare addresses in a quoted sentence: a GFM renderer would make each a link.
        "text": "The island ferry adds four evening crossings from Monday, the ferry company "
        "(www.evil.example, https://evil.example/news, help@evil.example) said. The last boat "
        "will now leave the island at eleven at night.",
    },
]
ANSWERED = (
    "How often will the harbour ferry run, and how many evening crossings will the island "
    "ferry add?"
)
DECLINED = "Who won the chess tournament in Reykjavik?"
TITLE_AS_TEXT = (
    "Update [Verify your account](https://evil.example/login) ![](https://evil.example/px.png)"
)


@pytest.fixture(scope="module")
def served(embedder: ModelEmbedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The real app on a free port over an empty store: the upload is all it holds."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("ui-hostile-data"))
    assistant = Assistant(settings, embedder=embedder)
    try:
        with serving(assistant) as (url, outbound):
            yield Served(url, assistant, outbound)
    finally:
        assistant.close()


def links_and_images(message: Locator) -> tuple[list[str], int]:
    hrefs = message.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    return hrefs, message.locator("img, picture, svg image").count()


def own_links_only(hrefs: list[str], allowed: set[str]) -> list[str]:
    """The links that are neither in-page (citations, edit) nor an article's own URL."""
    return [h for h in hrefs if not h.startswith("#") and h not in allowed]


@pytest.mark.browser
def test_uploaded_hostile_metadata_is_only_text(page: Page, served: Served, tmp_path: Path) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.set_default_timeout(20_000)
    page.goto(served.url)
    expect(page.locator("#question textarea")).to_be_visible()

    wire = tmp_path / "wire.jsonl"
    wire.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n", encoding="utf-8")
    open_tab(page, "Add articles")
    upload(page, wire)
    page.locator("#add-files").click()
    result = page.locator("#add-result")
    expect(result).to_contain_text("2 added, 0 unchanged", timeout=ANSWER_TIMEOUT)
    expect(result.locator("img")).to_have_count(0)
    uploads = served.assistant.settings.data_dir / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []  # the copy is gone

    open_tab(page, "Chat")
    answer = ask(page, ANSWERED)
    sources = answer.locator(".sources .source")
    expect(sources).to_have_count(2)  # the hostile title did not break the other source
    expect(sources.filter(has_text=GOOD_TITLE)).to_have_count(1)
    evil = sources.filter(has_text="Verify your account")
    expect(evil).to_have_count(1)
    expect(evil).to_contain_text(TITLE_AS_TEXT)  # shown as itself, on one line
    quoted = answer.locator("blockquote").filter(has_text="help@evil.example")
    expect(quoted).to_contain_text("(www.evil.example, https://evil.example/news, help@evil")
    hrefs, images = links_and_images(answer)
    assert images == 0
    assert own_links_only(hrefs, {EVIL_URL, GOOD_URL}) == [], hrefs
    assert EVIL_URL in hrefs and GOOD_URL in hrefs

    declined = ask(page, DECLINED)
    expect(declined).to_contain_text("The articles don't answer this question.")
    expect(declined.locator("li")).to_have_count(2)
    expect(declined.locator("li").filter(has_text="Verify your account")).to_contain_text(
        TITLE_AS_TEXT
    )
    hrefs, images = links_and_images(declined)
    assert images == 0
    assert own_links_only(hrefs, set()) == [], hrefs

    # The whole page: no image from the articles, nothing fetched from outside.
    assert page.locator("#chat img").count() == 0
    page.wait_for_timeout(300)  # a stray image request would have been made by now
    outside = [
        u
        for u in requests
        if urlsplit(u).scheme in ("http", "https", "ws", "wss")
        and urlsplit(u).hostname != "127.0.0.1"
    ]
    assert not outside, outside
    assert requests and served.outbound == []
