"""Take docs/images/chat-citation.png: the chat window on corpus/ with a citation open.

Run from the repository: `PYTHONPATH=$PWD .venv/bin/python docs/images/take_screenshot.py`.
It serves the real app on a free port of 127.0.0.1 over a temporary data directory and drives
Debian's Chromium (/usr/bin/chromium) with Playwright, as the browser tests do.
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

from assistant.settings import PROJECT_DIR, Settings, go_offline

sys.path.insert(0, str(PROJECT_DIR / "tests"))
go_offline()

from playwright.sync_api import expect, sync_playwright  # noqa: E402
from ui_server import CHROMIUM, CHROMIUM_ARGS, free_port, load_ui, wait_until_up  # noqa: E402

from assistant.assistant import Assistant  # noqa: E402

QUESTION = "What did Putin ask Musk not to do?"
OUT = PROJECT_DIR / "docs" / "images" / "chat-citation.png"


def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        assistant = Assistant(Settings(data_dir=Path(data)))
        report = assistant.add([PROJECT_DIR / "corpus"])
        assert report.count("failed") == 0, report.failed
        ui = load_ui()
        app = ui.build_app(assistant)
        port = free_port()
        ui.launch(app, assistant.settings, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_until_up(url)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url)
                page.locator("#question textarea").fill(QUESTION)
                page.locator("#question textarea").press("Enter")
                answer = page.locator('#chat [data-testid="bot"]').first
                expect(answer.locator(".searched-for")).to_be_visible(timeout=120_000)
                page.wait_for_function(
                    """() => [...document.querySelectorAll(
                        '#chat [data-testid="status-tracker"]')]
                        .every(s => s.classList.contains('hide'))""",
                    timeout=120_000,
                )
                # The quote that answers the question, so the reader shows its highlighted span.
                quote = answer.locator("blockquote").filter(has_text="Starlink").first
                quote.locator('a[href^="#cite-"]').first.click()
                expect(page.locator("#reader mark.cited")).to_be_visible()
                page.wait_for_timeout(500)  # the reader scrolls the highlight into view
                # The question at the top of the chat, so the picture reads from question to span.
                page.locator('#chat [data-testid="user"]').first.scroll_into_view_if_needed()
                png = page.screenshot()
                browser.close()
        finally:
            app.close()
            assistant.close()
    OUT.write_bytes(_small(png))
    print(f"{OUT}: {OUT.stat().st_size:,} bytes")


def _small(png: bytes) -> bytes:
    """The screenshot as a 256-colour PNG: a UI has few colours, and the file is far smaller."""
    try:
        from PIL import Image
    except ImportError:
        return png
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=2)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


if __name__ == "__main__":
    main()
