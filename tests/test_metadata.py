"""Hostile article metadata: stored as one line of plain text, escaped wherever it is shown;
folders whose links lead out; skipped files named; uploaded copies deleted."""

from __future__ import annotations

import io
import json
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path

import pytest
from as_nobody import as_nobody
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from pypdf import PdfReader, PdfWriter

from assistant.answer import Answer, Citation, render, source_line
from assistant.articles import (
    Article,
    LoadError,
    Skipped,
    article_from_text,
    find_files,
    load_file,
    one_line,
)
from assistant.assistant import Assistant, IngestReport, IngestResult
from assistant.cli import cli
from assistant.conversation import (
    Turn,
    answer_markdown,
    html_inline,
    md_escape,
    source_html,
    turn_markdown,
)
from assistant.embeddings import ModelEmbedder
from assistant.retrieval import Passage
from assistant.settings import Settings
from assistant.uploads import add_uploads, stage_uploads
from assistant.web.views import ingest_html

TESTS = Path(__file__).resolve().parent
GOOD_PDF = TESTS / "data" / "loaders" / "ferry-strike.pdf"
MAX = Settings().max_file_bytes
MD = MarkdownIt("commonmark")

EVIL_TITLE = (
    "Update\n\n[Verify your account](https://evil.example/login) ![](https://evil.example/px.png)"
)
EVIL_ONE_LINE = (
    "Update [Verify your account](https://evil.example/login) ![](https://evil.example/px.png)"
)
EVIL_SOURCE = "Wire\r\n\r\n<img src=https://evil.example/s.png>\u2028# Heading\x00\x1b[31m"
FERRY_TEXT = (
    "The harbour ferry will run every twenty minutes from Monday, the port authority said. "
    "Extra evening crossings were added after complaints from commuters."
)


def single_line(value: str | None) -> bool:
    """No line break, tab or control character of any kind, no doubled or edge spaces."""
    if value is None:
        return True
    bad = [c for c in value if unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in "\t\v\f"]
    return not bad and "  " not in value and value == value.strip()


def metadata(article: Article) -> list[str | None]:
    return [article.title, article.url, article.source, article.author, article.published]


def load_one(path: Path) -> Article:
    [(_, article)] = load_file(path, MAX)
    assert isinstance(article, Article), article
    return article


# --- stored as one line, whatever the loader ------------------------------------------------------


@given(st.text(max_size=80))
def test_one_line_leaves_no_line_break_or_control_character(text: str) -> None:
    line = one_line(text)
    assert single_line(line)
    kept = "".join(c for c in text if not c.isspace() and unicodedata.category(c) != "Cc")
    assert line.replace(" ", "") == kept  # only whitespace and control characters went


def test_jsonl_metadata_is_one_line(tmp_path: Path) -> None:
    record = {
        "id": "evil-1",
        "title": EVIL_TITLE,
        "url": " https://news.example.org/ferry\n",
        "source": EVIL_SOURCE,
        "author": "Ann\tLee\x07\nand [Bob](https://evil.example/bob)",
        "published": "2025-03-04\n\n![](https://evil.example/d.png)",
        "text": FERRY_TEXT,
    }
    path = tmp_path / "wire.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    article = load_one(path)
    assert all(single_line(v) for v in metadata(article)), article
    assert article.title == EVIL_ONE_LINE
    assert article.url == "https://news.example.org/ferry"
    assert article.source == "Wire <img src=https://evil.example/s.png> # Heading[31m"
    assert article.author == "Ann Lee and [Bob](https://evil.example/bob)"
    assert article.published == "2025-03-04 ![](https://evil.example/d.png)"
    assert article.text == FERRY_TEXT  # the text itself is kept exactly


def test_a_title_of_only_control_characters_is_never_empty(tmp_path: Path) -> None:
    """Found by the JSONL fuzz test: a title made from text that is one C1 control character."""
    path = tmp_path / "odd.jsonl"
    rows = [{"text": "\x80"}, {"title": "\x07\n\t\x1b", "text": FERRY_TEXT}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    titles = [a.title for _, a in load_file(path, 1_000_000, 1_000_000) if isinstance(a, Article)]
    # A junk title is replaced by the text's first line, as a missing one is.
    assert titles[0] == "Untitled"
    assert titles[1].startswith("The harbour ferry")


def test_pdf_metadata_is_one_line(tmp_path: Path) -> None:
    writer = PdfWriter(clone_from=PdfReader(GOOD_PDF))
    writer.add_metadata({"/Title": EVIL_TITLE, "/Author": "Ann\r\nLee\x07\u2029[x](y)"})
    buffer = io.BytesIO()
    writer.write(buffer)
    path = tmp_path / "strike.pdf"
    path.write_bytes(buffer.getvalue())
    article = load_one(path)
    assert all(single_line(v) for v in metadata(article)), article
    assert article.title == EVIL_ONE_LINE
    assert article.author == "Ann Lee [x](y)"


def test_html_metadata_is_one_line(tmp_path: Path) -> None:
    page = f"""<html><head><title>Ferry
    timetable

    [Verify your account](https://evil.example/login)</title>
    <meta name="author" content="Jo&#10;&#10;Doe">
    <meta property="og:site_name" content="Harbour&#10;&#10;News &#13; ![](https://evil.example/p.png)">
    <meta property="article:published_time" content="2025-03-04">
    </head><body><article><h1>Ferry timetable</h1>
    <p>{FERRY_TEXT}</p><p>{FERRY_TEXT.replace("harbour", "island")}</p></article></body></html>"""
    path = tmp_path / "ferry.html"
    path.write_text(page, encoding="utf-8")
    article = load_one(path)
    assert all(single_line(v) for v in metadata(article)), article
    assert article.title.startswith("Ferry timetable")


def test_plain_text_title_is_one_line(tmp_path: Path) -> None:
    # Only \n ends a line when the file is read: other line breaks stay in the first line.
    path = tmp_path / "ferry.txt"
    path.write_text(
        f"Ferry\u2028timetable\x85[Verify](https://evil.example)\x0b\x1c changes\n{FERRY_TEXT}",
        encoding="utf-8",
    )
    article = load_one(path)
    assert single_line(article.title)
    assert article.title == "Ferry timetable [Verify](https://evil.example) changes"


def test_pasted_metadata_is_one_line() -> None:
    article = article_from_text(FERRY_TEXT, EVIL_TITLE, "https://news.example.org/a\r\n")
    assert all(single_line(v) for v in metadata(article)), article
    assert article.title == EVIL_ONE_LINE and article.url == "https://news.example.org/a"


def test_an_article_is_normalised_wherever_it_is_built() -> None:
    # The store builds articles from its rows too: one written before this rule is read clean.
    article = Article("a", EVIL_TITLE, FERRY_TEXT, source="\n", author="x" * 5000, published=" ")
    assert article.title == EVIL_ONE_LINE
    assert article.source is None and article.published is None
    assert article.author is not None and len(article.author) == 200


def test_stored_metadata_is_one_line(assistant: Assistant, tmp_path: Path) -> None:
    path = tmp_path / "wire.jsonl"
    record = {"id": "evil-1", "title": EVIL_TITLE, "source": EVIL_SOURCE, "text": FERRY_TEXT}
    path.write_text(json.dumps(record), encoding="utf-8")
    assert assistant.add([path]).count("added") == 1
    [info] = assistant.list_articles()
    stored = assistant.get("evil-1")
    assert stored is not None and stored.title == info.title == EVIL_ONE_LINE
    assert single_line(info.source) and stored.source == info.source


# --- escaped wherever it is shown ----------------------------------------------------------------


def hostile_citation(n: int = 1, url: str | None = "https://news.example.org/ferry") -> Citation:
    # Built directly, as from a store written before titles were made one line.
    return Citation(n, f"a{n}", EVIL_TITLE, EVIL_SOURCE, url, "2025-03-04", "q", 0, 1)


def benign_citation() -> Citation:
    return Citation(2, "b", "Island ferry adds crossings", "Gazette", None, None, "q", 0, 1)


def hrefs(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]*)"', html)


def test_sources_are_one_html_line_with_no_markdown_in_them() -> None:
    line = source_html(hostile_citation())
    assert "\n" not in line and "<img" not in line
    assert hrefs(line) == ["#cite-1-0-1-a1", "https://news.example.org/ferry"]
    for char in "[]()!":
        assert char not in line.split("<a href=")[1].split(">", 1)[1].split("</a>")[0]
    assert html_inline(EVIL_TITLE).count("&#91;") == 2  # shown as "[", never read as a link


def rendered_links_and_images(markdown: str) -> tuple[list[str], int]:
    html = MD.render(markdown)
    return hrefs(html), html.count("<img")


def test_an_answer_citing_a_hostile_title_keeps_its_other_sources() -> None:
    citations = (hostile_citation(), benign_citation())
    answer = Answer("q", "q", "", citations, (), False, 0.8, sources=citations)
    links, images = rendered_links_and_images(answer_markdown(answer))
    assert images == 0
    assert all(h.startswith("#") or h == "https://news.example.org/ferry" for h in links), links
    html = MD.render(answer_markdown(answer))
    # Both sources are rows of the one sources block: the hostile title did not end it.
    block = re.search(r'<div class="sources">.*?</div></div>', html, re.S)
    assert block and block.group(0).count('class="source"') == 2
    assert "Island ferry adds crossings" in block.group(0)


def closest(title: str, url: str | None = None) -> Passage:
    return Passage("a1", "a1:0", "t", 0, 1, 0.1, 0.2, 1.0, title, EVIL_SOURCE, url, "2025-03-04")


def test_a_declined_answer_lists_the_closest_titles_as_text() -> None:
    answer = Answer("q", "q", "", (), (closest(EVIL_TITLE),), True, 0.1)
    markdown = answer_markdown(answer)
    links, images = rendered_links_and_images(markdown)
    assert images == 0 and links == ["#cite-0-0-1-a1", "#edit-query"]
    text = re.sub(r"<[^>]+>", "", MD.render(markdown))
    assert "[Verify your account](https://evil.example/login)" in text  # as text, on one line


def test_the_downloaded_record_escapes_titles_and_links_only_web_urls() -> None:
    declined = Answer("q", "q", "", (), (closest(EVIL_TITLE, "javascript:alert(1)"),), True, 0.1)
    citations = (hostile_citation(url="javascript:alert(1)"), benign_citation())
    answered = Answer("q", "q", "", citations, (), False, 0.8, sources=citations)
    for answer in (declined, answered):
        links, images = rendered_links_and_images(turn_markdown(Turn("q", answer)))
        assert images == 0 and links == [], links


def test_plain_answer_text_has_one_line_per_source_and_only_web_urls() -> None:
    citations = (hostile_citation(url="javascript:alert(1)"), benign_citation())
    assert "\n" not in source_line(citations[0]) and "javascript" not in source_line(citations[0])
    text = render(citations, citations)
    assert text.split("Sources:\n")[1].count("\n") == 1
    assert source_line(hostile_citation()).endswith("<https://news.example.org/ferry>")


def test_md_escape_keeps_bare_addresses_from_becoming_links() -> None:
    out = md_escape("see https://evil.example/a, www.evil.example and ann@evil.example")
    assert "https\\://evil.example" in out and "www\\.evil" in out and "ann\\@evil" in out
    rendered = re.sub(r"<[^>]+>", "", MD.render(out)).strip()
    assert rendered == "see https://evil.example/a, www.evil.example and ann@evil.example"


# --- folders: links that lead out, files skipped by name -------------------------------------


def linked_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "good.txt").write_text(f"Ferry timetable\n{FERRY_TEXT}")
    (folder / "passwd.txt").symlink_to("/etc/passwd")
    (folder / "etc").symlink_to("/etc", target_is_directory=True)
    (folder / "sub" / "again.txt").symlink_to(folder / "good.txt")  # inside: read
    (folder / "sub" / "up").symlink_to(folder, target_is_directory=True)  # inside: not entered
    (folder / "sub" / "notes.docx").write_bytes(b"PK\x03\x04")
    return folder


def test_links_out_of_a_folder_are_skipped_by_name(tmp_path: Path) -> None:
    folder = linked_folder(tmp_path)
    found = list(find_files([folder]))
    assert found == [
        Skipped(str(folder / "etc"), "a link to a folder outside this folder; not followed"),
        folder / "good.txt",
        Skipped(str(folder / "passwd.txt"), "a link to a file outside this folder; not followed"),
        folder / "sub" / "again.txt",
        Skipped(str(folder / "sub" / "notes.docx"), "unsupported file type '.docx'"),
    ]
    # Named on its own, a link is read: the user chose it.
    assert list(find_files([folder / "passwd.txt"])) == [folder / "passwd.txt"]


def test_adding_a_folder_with_links_out_stores_nothing_from_outside(
    assistant: Assistant, tmp_path: Path
) -> None:
    folder = linked_folder(tmp_path)
    report = assistant.add([folder])
    by_name = {Path(r.name).name: r for r in report.results}
    assert by_name["passwd.txt"].status == "skipped"
    assert by_name["etc"].status == "skipped" and by_name["notes.docx"].status == "skipped"
    assert report.count("added") == 1 and report.count("unchanged") == 1
    assert report.count("failed") == 0
    assert report.summary() == (
        "1 added, 1 unchanged, 0 replaced, 0 failed, 3 skipped (etc, passwd.txt, notes.docx)"
    )
    for info in assistant.list_articles():
        article = assistant.get(info.id)
        assert article is not None and "root:" not in article.text


def test_the_cli_names_skipped_files_and_succeeds(embedder: ModelEmbedder, tmp_path: Path) -> None:
    folder = linked_folder(tmp_path)
    result = CliRunner().invoke(cli, ["add", str(folder)], obj={"embedder": embedder})
    assert result.exit_code == 0, result.output
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped: ")]
    assert skipped == [
        f"skipped: {folder / 'etc'}: a link to a folder outside this folder; not followed",
        f"skipped: {folder / 'passwd.txt'}: a link to a file outside this folder; not followed",
        f"skipped: {folder / 'sub' / 'notes.docx'}: unsupported file type '.docx'",
    ]
    assert result.stdout.strip().endswith("3 skipped (etc, passwd.txt, notes.docx)")
    quiet = CliRunner().invoke(cli, ["add", "-q", str(folder)], obj={"embedder": embedder})
    assert quiet.exit_code == 0 and "skipped: " not in quiet.stderr
    assert "3 skipped (etc, passwd.txt, notes.docx)" in quiet.stdout


def test_hundreds_of_skipped_files_make_a_short_summary(tmp_path: Path) -> None:
    results = [IngestResult("/in/a.txt", "added", "a", "A")]
    results += [IngestResult(f"/in/photos/p{i:03}.jpg", "skipped", reason="x") for i in range(300)]
    report = IngestReport(tuple(results))
    summary = report.summary()
    assert summary == (
        "1 added, 0 unchanged, 0 replaced, 0 failed, "
        "300 skipped (p000.jpg, p001.jpg, p002.jpg, p003.jpg, p004.jpg and 295 more)"
    )
    page = ingest_html(report)
    assert summary in page and page.count("status-skipped") == 300


def test_the_chat_window_names_skipped_files(tmp_path: Path) -> None:
    report = IngestReport((IngestResult("/in/<b>.png", "skipped", reason="unsupported '.png'"),))
    page = ingest_html(report)
    assert "status-skipped" in page and "&lt;b&gt;.png" in page and "<b>" not in page
    assert "1 skipped (&lt;b&gt;.png)" in page


# --- uploads: the copies are deleted once added --------------------------------------------------


def test_uploaded_copies_are_deleted_and_a_new_version_still_replaces(
    assistant: Assistant, tmp_path: Path
) -> None:
    folder = assistant.settings.data_dir / "uploads"
    client = tmp_path / "client"
    client.mkdir()
    story = client / "ferry.txt"
    story.write_text(f"Ferry timetable\n{FERRY_TEXT}")
    broken = client / "broken.txt"
    broken.write_bytes(b"\x00\x01binary")
    limit = assistant.settings.max_upload_bytes

    report = add_uploads(assistant, stage_uploads([story, broken], folder, limit))
    assert report.count("added") == 1 and report.count("failed") == 1
    assert list(folder.iterdir()) == []  # the added one and the failed one alike
    [info] = assistant.list_articles()
    first = assistant.get(info.id)
    assert first is not None and first.origin == str(folder / "ferry.txt")

    story.write_text(f"Ferry timetable\n{FERRY_TEXT} Tickets cost two pounds.")
    again = add_uploads(assistant, stage_uploads([story], folder, limit))
    assert [r.status for r in again.results] == ["replaced"], again
    [info] = assistant.list_articles()
    assert info.id != first.id and list(folder.iterdir()) == []


def test_uploaded_copies_are_deleted_when_adding_fails(
    settings: Settings, embedder: ModelEmbedder, tmp_path: Path
) -> None:
    story = tmp_path / "ferry.txt"
    story.write_text(f"Ferry timetable\n{FERRY_TEXT}")
    broken = Assistant(settings, embedder=embedder)
    folder = settings.data_dir / "uploads"
    staged = stage_uploads([story], folder, settings.max_upload_bytes)
    assert [p.name for p in folder.iterdir()] == ["ferry.txt"]
    broken.close()  # its store is closed: adding raises
    with pytest.raises(Exception):  # noqa: B017 - whatever the store raises
        add_uploads(broken, staged)
    assert list(folder.iterdir()) == []


def test_a_load_error_is_not_a_skip() -> None:
    assert not isinstance(LoadError("x", "y"), Skipped)
    assert isinstance(Skipped("x", "y"), LoadError)


def test_an_unreadable_subfolder_is_named_not_passed_over() -> None:
    # As root, folders are listed whatever their mode: the scan then runs as "nobody".
    folder = Path(tempfile.mkdtemp(prefix="unlistable-"))
    try:
        folder.chmod(0o755)
        (folder / "good.txt").write_text("Headline\nBody.")
        locked = folder / "locked"
        locked.mkdir()
        (locked / "hidden-story.txt").write_text("Headline\nBody.")
        locked.chmod(0)
        found = as_nobody(lambda: list(find_files([folder])))
        assert found == [
            folder / "good.txt",
            LoadError(str(locked), "cannot read folder (Permission denied)"),
        ]
    finally:
        locked.chmod(0o755)
        shutil.rmtree(folder)
