"""Hostile and broken input: each bad file is a one-line error or handled, nothing stored is lost.

Every input is made here, in tmp_path: nothing large is committed. The first half checks the
loaders one input at a time; the second sends them all through the assistant in one batch, as
`assistant add` and the upload box do, and checks that the articles stored before are untouched.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from as_nobody import as_nobody
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfWriter

from assistant.answer import verify
from assistant.articles import (
    SUPPORTED_SUFFIXES,
    TITLE_MAX_CHARS,
    Article,
    Loaded,
    LoadError,
    Skipped,
    find_files,
    load_file,
)
from assistant.assistant import Assistant, IngestResult
from assistant.cli import cli
from assistant.conversation import CiteRef
from assistant.embeddings import ModelEmbedder
from assistant.settings import Settings
from assistant.uploads import add_with_progress, stage_uploads
from assistant.web.views import article_html

TESTS = Path(__file__).resolve().parent
PROJECT = TESTS.parent
GOOD_PDF = TESTS / "data" / "loaders" / "ferry-strike.pdf"
DEFAULTS = Settings()
MAX_BYTES = DEFAULTS.max_file_bytes
MAX_CHARS = DEFAULTS.max_article_chars

# Stored before each batch; nothing in the bad inputs is about lighthouses.
GOOD_TEXT = (
    "Lighthouse museum reopens after restoration\n"
    "The Millbrook lighthouse museum will reopen on Saturday after a two-year restoration, "
    "the heritage trust said.\n"
    "The trust said the lamp room, closed since a storm in 2023, can be visited again.\n"
)
GOOD_QUESTION = "When will the lighthouse museum reopen after its restoration?"


# --- the bad inputs -------------------------------------------------------------------------


def png() -> bytes:
    """A real 1x1 PNG: binary, full of NUL bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0\xff\0\0"))
    )


def pdf(writer: PdfWriter) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=GOOD_PDF)
    writer.encrypt("secret")
    return pdf(writer)


def blank_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=300, height=300)
    return pdf(writer)


def zip_bomb() -> bytes:
    """100 MB of zeros inflated from about 100 KB: must never be unpacked."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("index.html", b"\0" * 100_000_000)
    return buffer.getvalue()


def jsonl(*records: object) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records).encode() + b"\n"


def record(n: int) -> dict[str, str]:
    return {"id": f"wire-{n}", "title": f"Wire story {n}", "text": f"Wire story number {n}."}


SCRIPT_ONLY = (
    b"<html><head><script>var t = 'Breaking news';</script></head><body>"
    + (
        b"<script>document.write('The harbour ferry will run every hour from Monday.');</script>"
        * 50
    )
    + b"</body></html>"
)

UNCLOSED = (
    b"<html><head><title>Bridge to close for a year</title></head><body><article>"
    b"<h1>Bridge to close for a year<p>The council voted on Tuesday to close the old bridge "
    b"for repairs that will take a year, officials said.<p>Residents said they were worried "
    b"about longer drives to the hospital on the other side of the river.<div><span><b>"
)

HOSTILE_HTML = (
    b"<html><head><title>Park to open in spring</title>"
    b'<link rel="canonical" href="javascript:alert(1)">'
    b'<meta property="og:url" content="javascript:alert(2)"></head><body><article>'
    b'<p>The mayor said the <a href="javascript:alert(3)">new park</a> would open in spring, '
    b"after two years of work on the old rail yard site.</p>"
    b'<iframe src="https://tracker.example/frame"></iframe>'
    b'<img src="x" onerror="alert(4)">'
    b"<p>Residents welcomed the news at a meeting on Monday evening in the town hall.</p>"
    b'<svg onload="alert(5)"></svg><form action="javascript:alert(6)"><input></form>'
    b"</article></body></html>"
)

RTL_TEXT = (
    "المجلس يصوت على إغلاق الجسر القديم\n"
    "صوت مجلس المدينة يوم الثلاثاء على إغلاق الجسر القديم لمدة عام كامل من أجل الإصلاحات.\n"
    "قال السكان إنهم قلقون بشأن الطريق الطويل إلى المستشفى في الجهة الأخرى من النهر.\n"
)

Check = Callable[[Path, list[Loaded]], None]


@dataclass(frozen=True)
class Case:
    """One bad input: its file name, how to make its bytes, and what loading it must give."""

    name: str
    make: Callable[[Path], None]
    check: Check
    # The error through the assistant: the reason expected for the whole file (None: added).
    batch_error: str | None


def data(content: bytes | str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    return make


def sparse(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with path.open("wb") as f:
            f.write(b"Headline\n")
            f.truncate(size)  # a hole: 200 MB on paper, nothing on disk

    return make


def one_error(expected: str) -> Check:
    """The file is one LoadError naming it, on one line, whose reason says `expected`."""

    def check(path: Path, results: list[Loaded]) -> None:
        assert len(results) == 1, results
        name, outcome = results[0]
        assert name == str(path)
        assert isinstance(outcome, LoadError), outcome
        assert outcome.name == str(path)
        assert "\n" not in outcome.reason and "\r" not in outcome.reason
        assert expected in outcome.reason, outcome.reason

    return check


def one_article(test: Callable[[Article], object]) -> Check:
    """The file is one article with text, which `test` accepts."""

    def check(path: Path, results: list[Loaded]) -> None:
        assert len(results) == 1, results
        name, outcome = results[0]
        assert name == str(path)
        assert isinstance(outcome, Article), outcome
        assert outcome.text.strip() and outcome.title.strip()
        assert test(outcome), outcome

    return check


def lines(expected: dict[int, str | None]) -> Check:
    """A JSONL file: per line, an error whose reason says the string, or an article (None)."""

    def check(path: Path, results: list[Loaded]) -> None:
        assert [name for name, _ in results] == [f"{path}:{n}" for n in expected]
        for (name, outcome), want in zip(results, expected.values(), strict=True):
            if want is None:
                assert isinstance(outcome, Article), (name, outcome)
            else:
                assert isinstance(outcome, LoadError), (name, outcome)
                assert outcome.name == name and want in outcome.reason, outcome
                assert "\n" not in outcome.reason

    return check


def kept_exactly_with_a_clean_title(path: Path, results: list[Loaded]) -> None:
    lines({1: None})(path, results)
    article = results[0][1]
    assert isinstance(article, Article)
    assert (article.text, article.title) == ("The ferry\u0000 runs.", "Bell title")


def no_markup(a: Article) -> bool:
    return all(bad not in a.text for bad in ("javascript:", "<iframe", "<script", "onerror", "<"))


HOSTILE = [
    Case("binary.txt", data(png()), one_error("binary data, not text"), "binary data"),
    Case("binary.md", data(png()), one_error("binary data, not text"), "binary data"),
    Case(
        "invalid-utf8.txt",
        data(b"Caf\xe9 closes\nThe caf\xe9 on the square shut its doors."),
        one_error("not valid UTF-8 text (bad byte at offset 3)"),
        "not valid UTF-8",
    ),
    Case("zero-bytes.txt", data(b""), one_error("empty file"), "empty file"),
    Case("zero-bytes.pdf", data(b""), one_error("empty file"), "empty file"),
    Case("whitespace.txt", data(" \t\r\n\u3000\n\u00a0 \n"), one_error("empty file"), "empty"),
    Case(
        "200mb.txt",
        sparse(200 * 1024 * 1024),
        one_error(f"file too large (209,715,200 bytes; the limit is {MAX_BYTES:,})"),
        "file too large",
    ),
    Case(
        "nested.html",
        data(b"<html><body>" + b"<div>" * 100_000 + b"<p>Deep.</p>" + b"</div>" * 100_000),
        one_error("no article text found in the HTML"),
        "no article text found",
    ),
    Case(
        "unclosed.html",
        data(UNCLOSED),
        one_article(
            lambda a: (
                a.title == "Bridge to close for a year"
                and a.text.endswith("other side of the river.")
            )
        ),
        None,
    ),
    Case("script-only.html", data(SCRIPT_ONLY), one_error("no article text found"), "no article"),
    Case(
        "links-and-frames.html",
        data(HOSTILE_HTML),
        one_article(lambda a: no_markup(a) and "new park would open in spring" in a.text),
        None,
    ),
    Case(
        "entities.html",  # "billion laughs": entities that would expand to gigabytes
        data(
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
            + b"".join(
                b'<!ENTITY a%d "%s">' % (i, b"&a%d;" % (i - 1) * 10 if i > 1 else b"&a;" * 10)
                for i in range(1, 10)
            )
            + b"]><html><body><p>&a9;</p><p>The harbour ferry will run every hour from "
            b"Monday, the council said in a statement on Friday.</p></body></html>"
        ),
        one_article(lambda a: len(a.text) < 1000 and "harbour ferry" in a.text),
        None,
    ),
    Case("zip-bomb.html", data(zip_bomb()), one_error("binary data, not text"), "binary data"),
    Case(
        "gzip-bomb.html",
        data(gzip.compress(b"<html>" + b"A" * 50_000_000)),
        one_error("binary data, not text"),
        "binary data",
    ),
    Case("encrypted.pdf", data(encrypted_pdf()), one_error("encrypted PDF"), "encrypted"),
    Case("scanned.pdf", data(blank_pdf()), one_error("no text layer"), "no text layer"),
    Case(
        "html-named.pdf",
        data(b"<html><body><p>Not a PDF at all.</p></body></html>"),
        one_error("not a readable PDF"),
        "not a readable PDF",
    ),
    Case(
        "truncated.pdf",
        data(GOOD_PDF.read_bytes()[:-40]),
        one_error("not a readable PDF"),
        "not a readable PDF",
    ),
    Case(
        "control-chars.txt",
        data("Bell\x07 and escape\x1b[31m\nThe bus\x08 will run\x0b every day\x7f.\n"),
        one_article(
            lambda a: a.title == "Bell and escape[31m" and a.text == "The bus will run every day."
        ),
        None,
    ),
    Case("nul-bytes.txt", data(b"Headline\n\x00\x00\x00 text"), one_error("binary data"), "binary"),
    Case(
        "right-to-left.txt",
        data(RTL_TEXT),
        one_article(lambda a: a.title == RTL_TEXT.split("\n")[0] and a.text.startswith("صوت")),
        None,
    ),
    Case(
        "utf16-bom.txt",
        data("Ferry timetable changes\r\nThe ferry will run every hour.".encode("utf-16")),
        one_article(
            lambda a: (
                a.title == "Ferry timetable changes" and a.text == "The ferry will run every hour."
            )
        ),
        None,
    ),
    Case(
        "utf16-be-bom.md",
        data(
            b"\xfe\xff" + "# Ferry timetable\nRuns every hour, café included.".encode("utf-16-be")
        ),
        one_article(lambda a: a.title == "Ferry timetable" and "café" in a.text),
        None,
    ),
    Case(
        "utf16-odd-bytes.txt",
        data("Ferry".encode("utf-16") + b"\x00"),
        one_error("not valid UTF-16 text"),
        "not valid UTF-16",
    ),
    Case(
        "long-title.txt",
        data("Ferry " * 200_000 + "\nThe ferry will run every second hour."),
        one_article(lambda a: len(a.title) == TITLE_MAX_CHARS and a.title.endswith("…")),
        None,
    ),
    Case(
        "spaces-in-title.txt",  # a run of spaces once made the title cleaning quadratic
        data("Ferry" + " " * 300_000 + "strike\nThe ferry workers voted to strike."),
        one_article(lambda a: a.title == "Ferry strike"),
        None,
    ),
    Case(
        "markup-title.txt",
        data('<img src=x onerror="alert(1)"><script>alert(2)</script>\nBody of the story.'),
        one_article(lambda a: a.title.startswith("<img") and a.text == "Body of the story."),
        None,
    ),
    Case(
        "huge-single-line.txt",
        data("Headline\n" + "The ferry will run every hour " * 80_000),
        one_error(f"article too long (2,399,999 characters; the limit is {MAX_CHARS:,})"),
        "article too long",
    ),
    Case(
        "broken-lines.jsonl",
        data(
            jsonl(
                record(1),
                '{"id": "cut", "text": "The ferry',
                "not json at all",
                record(2),
                '{"id": "x", "text": "a"} trailing',
            )
        ),
        lines({1: None, 2: "not valid JSON", 3: "not valid JSON", 4: None, 5: "not valid JSON"}),
        None,
    ),
    Case(
        "text-not-a-string.jsonl",
        data(
            jsonl(
                {"id": "n", "text": 12},
                {"id": "l", "text": ["The", "ferry"]},
                {"id": "o", "text": {"body": "The ferry"}},
                {"id": "z", "text": None},
                [1, 2],
                "null",
                record(3),
            )
        ),
        lines({1: "no", 2: "no", 3: "no", 4: "no", 5: "not a JSON object", 6: "not", 7: None}),
        None,
    ),
    Case(
        "deep-json.jsonl",  # once ended the whole file at this line (RecursionError)
        data(jsonl("[" * 100_000 + "]" * 100_000, record(4))),
        lines({1: "not readable JSON (RecursionError", 2: None}),
        None,
    ),
    Case(
        "huge-number.jsonl",
        data(jsonl('{"id": 1' + "0" * 5000 + ', "text": "The ferry."}', record(5))),
        lines({1: "not readable JSON (ValueError", 2: None}),
        None,
    ),
    Case(
        "lone-surrogate.jsonl",  # once failed every article stored in the same batch
        data(jsonl('{"id": "s", "text": "The ferry \\ud800 will run."}', record(6))),
        lines({1: '"text" has an invalid character (lone surrogate at 10)', 2: None}),
        None,
    ),
    Case(
        "control-in-json.jsonl",  # JSONL text is kept exactly; the title is cleaned
        data(
            jsonl({"id": "c", "title": "Bell\u0007\u0000 title", "text": "The ferry\u0000 runs."})
        ),
        kept_exactly_with_a_clean_title,
        None,
    ),
    Case(
        "huge-line.jsonl",
        data(jsonl({"id": "big", "text": "x" * (MAX_CHARS + 10)}, record(7))),
        lines({1: "line too long", 2: None}),
        None,
    ),
    Case("binary.jsonl", data(png()), one_error("binary data"), "binary data"),
]
IDS = [case.name for case in HOSTILE]
assert len(set(IDS)) == len(IDS) >= 30


def make(folder: Path, case: Case) -> Path:
    path = folder / case.name
    case.make(path)
    return path


@pytest.mark.parametrize("case", HOSTILE, ids=IDS)
def test_hostile_input_is_an_article_or_a_one_line_error(tmp_path: Path, case: Case) -> None:
    path = make(tmp_path, case)
    case.check(path, list(load_file(path, MAX_BYTES, MAX_CHARS)))


# --- inputs that are not plain files ----------------------------------------------------------


def test_a_200_mb_file_is_refused_by_its_size_without_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "huge.txt"
    sparse(200 * 1024 * 1024)(big)
    real_open = Path.open

    def guarded_open(self: Path, *args: object, **kwargs: object) -> object:
        assert self != big, "the file was opened although its size is over the limit"
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", guarded_open)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read_bytes called"))
    one_error("file too large (209,715,200 bytes")(big, list(load_file(big, MAX_BYTES)))

    staged = stage_uploads([big], tmp_path / "uploads", DEFAULTS.max_upload_bytes)
    assert staged.paths == ()
    [refused] = staged.refused
    assert refused.name == "huge.txt" and refused.status == "failed"
    assert refused.reason == (
        "200.0 MB is over the upload limit of 25.0 MB (ASSISTANT_MAX_UPLOAD_BYTES); not added"
    )
    assert not (tmp_path / "uploads" / "huge.txt").exists()  # not even copied


def test_a_file_larger_than_its_size_says_is_cut_off_at_the_limit(tmp_path: Path) -> None:
    # Files under /proc report a size of 0 bytes and hold more: reading stops past the limit.
    status = Path("/proc/self/status")
    if not status.exists():
        pytest.skip("needs Linux's /proc, whose files report a size of 0")
    link = tmp_path / "status.txt"
    link.symlink_to(status)
    assert link.stat().st_size == 0
    one_error("file too large (over the limit of 100 bytes)")(link, list(load_file(link, 100)))
    [(_, article)] = load_file(link, MAX_BYTES)
    assert isinstance(article, Article) and article.title.startswith("Name:")


def test_a_device_or_a_named_pipe_is_not_read(tmp_path: Path) -> None:
    zeros = tmp_path / "zeros.txt"
    zeros.symlink_to("/dev/zero")  # would be read without end
    one_error("cannot read file (a device, not a regular file)")(
        zeros, list(load_file(zeros, MAX_BYTES))
    )

    pipe = tmp_path / "pipe.txt"
    os.mkfifo(pipe)
    # If the loader ever opened the pipe, this writer would feed it an article (and the test
    # would fail on that) instead of the loader waiting for ever.
    writer = threading.Thread(target=pipe.write_bytes, args=(b"Headline\nA story.",), daemon=True)
    writer.start()
    try:
        results = list(load_file(pipe, MAX_BYTES))
    finally:
        reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer finish
        writer.join(timeout=10)
        os.close(reader)
    one_error("cannot read file (a named pipe, not a regular file)")(pipe, results)
    # A folder scan takes only plain files, and names what it leaves out.
    assert list(find_files([tmp_path])) == [
        Skipped(str(pipe), "a named pipe, not a regular file"),
        Skipped(str(zeros), "a link to a file outside this folder; not followed"),
    ]


def test_a_folder_named_like_a_file_is_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "story.txt"
    (folder / "inner").mkdir(parents=True)
    (folder / "inner" / "real.txt").write_text("Headline\nBody.")
    one_error("cannot read file (a folder, not a file)")(folder, list(load_file(folder, MAX_BYTES)))
    assert list(find_files([folder])) == [folder / "inner" / "real.txt"]  # added as a folder


def test_symlink_loops_and_dangling_links_end(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    (root / "story.txt").write_text("Headline\nBody.")
    (root / "again").symlink_to(root, target_is_directory=True)  # in/again/again/again/…
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to(root, target_is_directory=True)
    (root / "self.txt").symlink_to(root / "self.txt")
    (root / "gone.txt").symlink_to(root / "missing.txt")
    nowhere = "a link to nothing (its target is missing or links back)"
    assert list(find_files([root])) == [
        Skipped(str(root / "gone.txt"), nowhere),
        Skipped(str(root / "self.txt"), nowhere),
        root / "story.txt",
    ]

    for link in (root / "self.txt", root / "gone.txt"):
        [found] = find_files([link])
        assert found == LoadError(
            str(link), "a link to nothing (its target is missing or links back)"
        )
    [(_, looped)] = load_file(root / "self.txt", MAX_BYTES)
    assert isinstance(looped, LoadError)
    assert looped.reason == "cannot read file (Too many levels of symbolic links)"


def test_an_unreadable_file_is_a_one_line_error() -> None:
    # Root reads files whatever their mode (CI runs as root): then the load runs with the
    # effective user id of "nobody", so the permission check is real either way.
    folder = Path(tempfile.mkdtemp(prefix="unreadable-"))
    try:
        folder.chmod(0o755)  # the file's own mode, not its folder's, is what stops the read
        path = folder / "locked.txt"
        path.write_text("Headline\nBody.")
        path.chmod(0)
        results = as_nobody(lambda: list(load_file(path, MAX_BYTES)))
        assert results == [
            (str(path), LoadError(str(path), "cannot read file (Permission denied)"))
        ]
    finally:
        shutil.rmtree(folder)


def test_ten_thousand_jsonl_lines_with_one_bad_name_only_that_line(tmp_path: Path) -> None:
    records = [json.dumps(record(n)) for n in range(1, 10_001)]
    records[6_789] = '{"id": "wire-6790", "text": "cut off'
    path = tmp_path / "wire.jsonl"
    path.write_text("\n".join(records) + "\n")
    results = list(load_file(path, MAX_BYTES, MAX_CHARS))
    assert len(results) == 10_000
    errors = [outcome for _, outcome in results if isinstance(outcome, LoadError)]
    assert errors == [
        LoadError(f"{path}:6790", "not valid JSON (Unterminated string starting at column 29)")
    ]
    assert str(errors[0]).startswith(f"{path}:6790: not valid JSON")


def test_a_configured_article_limit_applies_to_every_format(tmp_path: Path) -> None:
    story = "Ferry to run every hour\nThe ferry will run every hour from Monday, the council said."
    txt = tmp_path / "story.txt"
    txt.write_text(story)
    line = tmp_path / "story.jsonl"
    line.write_text(json.dumps({"text": story}) + "\n")
    body = len(story.split("\n")[1])
    one_error(f"article too long ({body} characters; the limit is {body - 1})")(
        txt, list(load_file(txt, MAX_BYTES, max_chars=body - 1))
    )
    assert isinstance(next(iter(load_file(txt, MAX_BYTES, max_chars=body)))[1], Article)
    # A JSONL line is measured before it is parsed: the whole line counts.
    size = len(line.read_text().strip())
    lines({1: f"line too long ({size} characters; the limit per article is {size - 1})"})(
        line, list(load_file(line, MAX_BYTES, max_chars=size - 1))
    )
    lines({1: None})(line, list(load_file(line, MAX_BYTES, max_chars=size)))


# --- the whole batch through the assistant ------------------------------------------------------


@pytest.fixture
def stored(
    assistant: Assistant, tmp_path: Path
) -> tuple[Assistant, Article, list[tuple[str, str]]]:
    """An assistant holding one good article, with the quotes it answers the question with."""
    path = tmp_path / "before" / "ferry.txt"
    path.parent.mkdir()
    path.write_text(GOOD_TEXT)
    assert assistant.add([path]).count("added") == 1
    [info] = assistant.list_articles()
    article = assistant.get(info.id)
    assert article is not None
    answer = assistant.ask(GOOD_QUESTION)
    assert not answer.abstained and answer.citations
    return assistant, article, [(c.article_id, c.quote) for c in answer.citations]


def assert_untouched(assistant: Assistant, before: Article, quotes: list[tuple[str, str]]) -> None:
    """The article stored before the batch has the same text and still answers the same."""
    assert assistant.get(before.id) == before
    answer = assistant.ask(GOOD_QUESTION)
    assert [(c.article_id, c.quote) for c in answer.citations] == quotes
    for citation in answer.citations:
        article = assistant.get(citation.article_id)
        assert article is not None
        verify(citation, article)
    assert assistant.search(GOOD_QUESTION)[0].article_id == before.id


def expected_batch(folder: Path) -> tuple[dict[str, str], set[str]]:
    """Per input, the reason of its failure; and the inputs that become articles."""
    failures: dict[str, str] = {}
    added: set[str] = set()
    for case in HOSTILE:
        path = folder / case.name
        if case.name.endswith(".jsonl") and case.batch_error is None:
            outcomes = list(load_file(path, MAX_BYTES, MAX_CHARS))
            for name, outcome in outcomes:
                if isinstance(outcome, LoadError):
                    failures[name] = outcome.reason
                else:
                    added.add(name)
        elif case.batch_error is None:
            added.add(str(path))
        else:
            failures[str(path)] = case.batch_error
    return failures, added


def check_report(
    results: tuple[IngestResult, ...], failures: dict[str, str], added: set[str]
) -> None:
    by_name = {r.name: r for r in results}
    assert set(by_name) == set(failures) | added
    for name, reason in failures.items():
        result = by_name[name]
        assert result.status == "failed", result
        assert result.reason and reason in result.reason and "\n" not in result.reason, result
    for name in added:
        assert by_name[name].status == "added", by_name[name]


def test_a_hostile_batch_adds_the_good_names_the_bad_and_keeps_what_was_stored(
    stored: tuple[Assistant, Article, list[tuple[str, str]]], tmp_path: Path
) -> None:
    assistant, before, quotes = stored
    folder = tmp_path / "batch"
    folder.mkdir()
    for case in HOSTILE:
        make(folder, case)
    (folder / "good.txt").write_text(
        "Library extends opening hours\nThe town library will open until nine on weekdays."
    )
    failures, added = expected_batch(folder)
    added.add(str(folder / "good.txt"))

    report = assistant.add([folder])

    check_report(report.results, failures, added)
    assert len(added) == report.count("added") >= 15
    assert len(assistant.list_articles()) == 1 + len(added)
    assert_untouched(assistant, before, quotes)
    # The surrogate's neighbour in its file and the good file went in, fully searchable.
    assert assistant.get("wire-6") is not None
    rtl = next(a for a in assistant.list_articles() if a.title.startswith("المجلس"))
    assert assistant.get(rtl.id) is not None

    # The same batch again changes nothing and loses nothing.
    again = assistant.add([folder])
    assert again.count("added") == 0 and again.count("unchanged") == len(added)
    assert_untouched(assistant, before, quotes)


def test_right_to_left_text_is_stored_and_cited_exactly(
    assistant: Assistant, tmp_path: Path
) -> None:
    path = tmp_path / "bridge.txt"
    path.write_text(RTL_TEXT)
    [result] = assistant.add([path]).results
    assert result.status == "added"
    article = assistant.get(result.article_id or "")
    assert article is not None and article.text == "\n\n".join(RTL_TEXT.strip().split("\n")[1:])
    answer = assistant.ask("متى صوت مجلس المدينة على إغلاق الجسر القديم؟")
    assert answer.citations, answer
    for citation in answer.citations:
        verify(citation, article)
    assert "صوت مجلس المدينة يوم الثلاثاء" in answer.citations[0].quote


def test_upload_names_cannot_leave_the_uploads_folder(assistant: Assistant, tmp_path: Path) -> None:
    outside = tmp_path / "etc" / "passwd.txt"
    outside.parent.mkdir()
    outside.write_text("Not a secret\nThe uploaded file says the ferry runs hourly.")
    (tmp_path / "a" / "b").mkdir(parents=True)
    sneaky = tmp_path / "client"
    sneaky.mkdir()
    (sneaky / "..\\..\\evil.txt").write_text("Backslashes\nA name with backslashes in it.")
    (sneaky / "%2e%2e%2fencoded.txt").write_text("Encoded\nA name with an encoded slash.")
    uploads = [
        f"{tmp_path}/a/b/../../etc/passwd.txt",  # ../../etc/passwd.txt, as a browser could send
        str(sneaky / "..\\..\\evil.txt"),
        str(sneaky / "%2e%2e%2fencoded.txt"),
        str(outside),  # the same name twice: kept apart, never over another file
    ]
    folder = assistant.settings.data_dir / "uploads"
    data_dir = assistant.settings.data_dir

    def outside_the_data_dir() -> set[Path]:
        return {p for p in tmp_path.rglob("*") if p != data_dir and data_dir not in p.parents}

    everything_before = outside_the_data_dir()

    staged = stage_uploads(uploads, folder, DEFAULTS.max_upload_bytes)

    assert staged.refused == ()
    assert [p.name for p in staged.paths] == [
        "passwd.txt",
        "..\\..\\evil.txt",
        "%2e%2e%2fencoded.txt",
        "passwd (2).txt",
    ]
    for path in staged.paths:
        assert path.resolve().parent == folder.resolve()
    assert outside_the_data_dir() == everything_before
    assert outside.read_text().startswith("Not a secret")  # the original is never written

    report = add_with_progress(assistant, staged.paths)
    assert report.count("added") == 3 and report.count("unchanged") == 1, report
    origins = {a.origin for a in map(assistant.get, [i.id for i in assistant.list_articles()]) if a}
    assert all(o and Path(o).parent == folder for o in origins), origins


def test_a_mixed_upload_adds_the_good_and_names_the_bad(
    stored: tuple[Assistant, Article, list[tuple[str, str]]], tmp_path: Path
) -> None:
    assistant, before, quotes = stored
    client = tmp_path / "client"
    client.mkdir()
    cases = {c.name: c for c in HOSTILE}
    chosen = ["binary.txt", "encrypted.pdf", "broken-lines.jsonl", "utf16-bom.txt", "200mb.txt"]
    paths = [make(client, cases[name]) for name in chosen]
    (client / "notes.docx").write_bytes(b"PK\x03\x04")
    paths.append(client / "notes.docx")

    staged = stage_uploads(paths, tmp_path / "uploads", DEFAULTS.max_upload_bytes)
    report = add_with_progress(assistant, staged.paths)

    refused = {r.name: r.reason or "" for r in staged.refused}
    assert set(refused) == {"200mb.txt", "notes.docx"}
    assert "over the upload limit" in refused["200mb.txt"]
    assert "unsupported file type '.docx'" in refused["notes.docx"]
    by_name = {Path(r.name).name: r for r in report.results}
    assert by_name["binary.txt"].status == "failed"
    assert "binary data" in (by_name["binary.txt"].reason or "")
    assert "encrypted" in (by_name["encrypted.pdf"].reason or "")
    assert by_name["utf16-bom.txt"].status == "added"
    assert by_name["broken-lines.jsonl:1"].status == "added"
    assert by_name["broken-lines.jsonl:2"].status == "failed"
    assert report.count("added") == 3
    assert_untouched(assistant, before, quotes)


def test_article_markup_is_shown_as_text_in_the_reader(
    assistant: Assistant, tmp_path: Path
) -> None:
    cases = {c.name: c for c in HOSTILE}
    paths = [make(tmp_path, cases[n]) for n in ("links-and-frames.html", "markup-title.txt")]
    md = tmp_path / "script.md"
    md.write_text("# Story <script>alert(1)</script>\nText with <b>tags</b> & <iframe src=x>.")
    report = assistant.add([*paths, md])
    assert report.count("added") == 3, report
    for info in assistant.list_articles():
        article = assistant.get(info.id)
        assert article is not None
        assert article.url is None or article.url.startswith("http")
        page = article_html(article, CiteRef(1, article.id, 0, min(10, len(article.text))))
        # Markup in the article shows as text (escaped); none of it becomes an element.
        for raw in ("<script", "<iframe", "<img", "<b>", "<svg", "<form", 'href="javascript'):
            assert raw not in page, (raw, page)
        if article.title.startswith("<img"):
            assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_the_cli_names_each_bad_file_on_one_line(embedder: ModelEmbedder, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    failing = [c for c in HOSTILE if c.batch_error is not None]
    for case in failing:
        make(folder, case)
    result = CliRunner().invoke(cli, ["add", "-q", str(folder)], obj={"embedder": embedder})
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    assert len(errors) == len(failing)
    for case, line in zip(sorted(failing, key=lambda c: c.name), errors, strict=True):
        assert line.startswith(f"failed: {folder / case.name}: "), line
        assert case.batch_error in line  # type: ignore[operator]
    assert result.stdout.strip() == f"0 added, 0 unchanged, 0 replaced, {len(failing)} failed"


# --- fuzzing: the loaders never raise, whatever the bytes -----------------------------------------


@dataclass(frozen=True)
class Scratch:
    folder: Path


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    yield Scratch(tmp_path_factory.mktemp("fuzz"))


def load_written(scratch: Scratch, suffix: str, content: bytes, max_chars: int = MAX_CHARS) -> None:
    """Write `content` as a file of this type and check the loader's promises about it."""
    path = scratch.folder / f"input{suffix}"
    path.write_bytes(content)
    results = list(load_file(path, 1_000_000, max_chars))
    assert results
    for name, outcome in results:
        assert name == str(path) or name.startswith(f"{path}:")
        if isinstance(outcome, LoadError):
            assert outcome.name == name and outcome.reason
            assert "\n" not in outcome.reason and "\r" not in outcome.reason, outcome
        else:
            assert isinstance(outcome, Article)
            assert isinstance(outcome.title, str) and outcome.title.strip()
            assert isinstance(outcome.text, str) and outcome.text.strip()
            assert len(outcome.title) <= TITLE_MAX_CHARS
            assert len(outcome.text) <= max_chars
            outcome.text.encode()  # storable: no lone surrogates
            outcome.title.encode()
            assert outcome.id


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXT = st.text(
    st.characters(codec="utf-8") | st.sampled_from("\n\r\t #<>\"'\\{}[]:,"),
    max_size=300,
)


@FUZZ
@given(content=st.binary(max_size=2000), suffix=st.sampled_from(SUPPORTED_SUFFIXES))
def test_fuzz_any_bytes_in_any_format(scratch: Scratch, content: bytes, suffix: str) -> None:
    load_written(scratch, suffix, content)


@FUZZ
@given(text=TEXT, suffix=st.sampled_from(SUPPORTED_SUFFIXES), bom=st.sampled_from(["", "utf-16"]))
def test_fuzz_any_text_in_any_format(scratch: Scratch, text: str, suffix: str, bom: str) -> None:
    load_written(scratch, suffix, text.encode(bom) if bom else text.encode(), max_chars=200)


TAGS = [
    "<div>",
    "</div>",
    "<p>",
    "</p>",
    "<script>",
    "</script>",
    "<iframe src=x>",
    "<b>",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<title>",
    "</title>",
    "<article>",
    "<a href='javascript:x'>",
    "<h1>",
    "<style>",
    "&amp;",
    "&#0;",
    "&lol;",
    "<meta charset=utf-16>",
    "<html>",
    "<body>",
]


@FUZZ
@given(parts=st.lists(st.sampled_from(TAGS) | TEXT, max_size=40))
def test_fuzz_html_soup(scratch: Scratch, parts: list[str]) -> None:
    load_written(scratch, ".html", "".join(parts).encode())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
RECORD = st.fixed_dictionaries(
    {},
    optional={k: JSON for k in ("id", "title", "url", "source", "author", "published")}
    | {"text": TEXT | JSON},
)


@FUZZ
@given(rows=st.lists(RECORD | JSON, max_size=8), cut=st.integers(0, 50))
def test_fuzz_jsonl_records(scratch: Scratch, rows: list[object], cut: int) -> None:
    content = "\n".join(json.dumps(r) for r in rows).encode()
    load_written(scratch, ".jsonl", content)
    load_written(scratch, ".jsonl", content[: len(content) - cut])  # cut off mid-record


@FUZZ
@given(st.data())
def test_fuzz_damaged_pdf(scratch: Scratch, data: st.DataObject) -> None:
    content = bytearray(GOOD_PDF.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(content) - 1))
        content[at] = data.draw(st.integers(0, 255))
    end = data.draw(st.integers(len(content) // 2, len(content)))
    load_written(scratch, ".pdf", bytes(content[:end]))
