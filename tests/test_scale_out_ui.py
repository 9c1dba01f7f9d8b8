"""Two chat windows of two app processes, each with its own data folder, over one Chroma server:
what one window adds or removes is what the other answers from."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chroma_server import chroma_server, stop
from playwright.sync_api import Browser, Locator, Page, expect
from test_ui import (  # noqa: F401 - the two launch fixtures: Debian's Chromium, quiet
    ANSWER_TIMEOUT,
    LIGHTHOUSE,
    ask,
    browser_context_args,
    browser_type_launch_args,
    open_tab,
    upload,
)
from ui_server import free_port, wait_until_up

from assistant.answer import ABSTAIN_TEXT
from assistant.settings import OFFLINE_ENV, PROJECT_DIR, Settings

pytestmark = [pytest.mark.slow, pytest.mark.browser]

QUESTION = "Who is the new keeper of the Gull Point lighthouse?"
FERRY = """Island ferry adds evening crossings
The island ferry adds four evening crossings from Monday, the ferry company said.
The last boat will now leave the island at eleven at night.
"""
# A process looks for the others' changes at most this often; waiting a little longer means
# the next question is answered from the server's current state.
CATCH_UP_S = Settings().sync_interval + 1.0


@pytest.fixture(scope="module")
def windows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two `python ui.py` processes with their own data folders and one Chroma server: URLs."""
    root = tmp_path_factory.mktemp("two-windows")
    with chroma_server(root / "server") as chroma_url:
        processes: list[subprocess.Popen[bytes]] = []
        urls, logs = [], []
        try:
            for name in ("first", "second"):
                port = free_port()
                logs.append(root / f"{name}.log")
                env = {
                    **os.environ,
                    **OFFLINE_ENV,
                    "ASSISTANT_DATA_DIR": str(root / name),
                    "ASSISTANT_CHROMA_URL": chroma_url,
                }
                with logs[-1].open("wb") as log:
                    processes.append(
                        subprocess.Popen(
                            [sys.executable, str(PROJECT_DIR / "ui.py"), "--port", str(port)],
                            cwd=root,
                            env=env,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    )
                urls.append(f"http://127.0.0.1:{port}/")
            for url, log_path in zip(urls, logs, strict=True):
                try:
                    wait_until_up(url, timeout=180)
                except OSError:
                    pytest.fail(f"{url} did not come up:\n{log_path.read_text()[-3000:]}")
            yield urls
        finally:
            for process in processes:
                stop(process)


def open_window(browser: Browser, url: str) -> Page:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(20_000)
    page.goto(url)
    expect(page.locator("#question textarea")).to_be_visible(timeout=60_000)
    return page


def first_quote(answer: Locator) -> str:
    """The first quote's words as shown, without its citation number and quotation marks."""
    text = answer.locator("blockquote").first.inner_text()
    return " ".join(re.sub(r"\s*\[\d+\]\s*$", "", text).split()).strip("“”")


def test_what_one_window_adds_or_removes_the_other_answers_from(
    browser: Browser, windows: list[str], tmp_path: Path
) -> None:
    first, second = (open_window(browser, url) for url in windows)
    lighthouse = tmp_path / "gull-point-lighthouse.txt"
    lighthouse.write_text(LIGHTHOUSE, encoding="utf-8")
    ferry = tmp_path / "island-ferry.txt"
    ferry.write_text(FERRY, encoding="utf-8")

    # Added through the first window ...
    open_tab(first, "Add articles")
    for path in (lighthouse, ferry):
        upload(first, path)
    first.locator("#add-files").click()
    result = first.locator("#add-result")
    expect(result).to_contain_text("2 added, 0 unchanged", timeout=ANSWER_TIMEOUT)
    time.sleep(CATCH_UP_S)

    # ... the second window lists it and quotes it, word for word.
    open_tab(second, "Corpus")
    expect(second.locator("#corpus")).to_contain_text("Gull Point lighthouse")
    open_tab(second, "Chat")
    answer = ask(second, QUESTION)
    quote = first_quote(answer)
    assert "Ingrid Solberg" in quote, answer.inner_text()
    assert quote in " ".join(LIGHTHOUSE.split()), quote

    # Removed through the second window ...
    open_tab(second, "Corpus")
    second.locator("#remove-choice input").click()
    second.get_by_role("option", name=re.compile("Gull Point lighthouse")).click()
    second.locator("#remove").click()
    second.locator("#remove-yes").click()
    expect(second.locator("#remove-result")).to_contain_text("Removed “Gull Point lighthouse")
    time.sleep(CATCH_UP_S)

    # ... the first window no longer lists it or cites it; the other article is still there.
    open_tab(first, "Corpus")
    corpus = first.locator("#corpus")
    expect(corpus).not_to_contain_text("Gull Point lighthouse")
    expect(corpus).to_contain_text("Island ferry adds evening crossings")
    open_tab(first, "Chat")
    after = ask(first, QUESTION)
    expect(after).to_contain_text(ABSTAIN_TEXT)
    expect(after).not_to_contain_text("Ingrid Solberg")
    first.close()
    second.close()
