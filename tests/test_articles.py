"""Loading articles from real files: text, markdown, HTML (trafilatura), PDF (pypdf), JSONL."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import struct
import sys
import time
import zlib
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DecodedStreamObject

from assistant.articles import (
    TITLE_MAX_CHARS,
    Article,
    LoadError,
    Skipped,
    article_from_text,
    clean_text,
    clean_title,
    find_files,
    load_file,
    text_id,
)
from assistant.assistant import Assistant
from assistant.embeddings import ModelEmbedder
from assistant.settings import Settings

TESTS = Path(__file__).resolve().parent
LOADERS = TESTS / "data" / "loaders"
SAMPLE = TESTS.parent / "corpus" / "musk-putin-contact.txt"
MAX = 1_000_000

# tests/data/loaders/ferry-strike.pdf (one page, Helvetica text layer, no metadata)
PDF_HEADLINE = "Ferry workers vote to strike over pay"
PDF_LINES = [
    PDF_HEADLINE,
    "Ferry workers in Port Alder voted on Monday to strike for three days next week,",
    "the first walkout on the harbor routes in twenty years.",
    "The union said 87 percent of members backed the action.",
    "Commuters were told to expect cancellations from 6 a.m. on Tuesday.",
]

HAS_CRYPTOGRAPHY = importlib.util.find_spec("cryptography") is not None


def load_all(path: Path, max_bytes: int = MAX) -> list[tuple[str, Article | LoadError]]:
    return list(load_file(path, max_bytes))


def load_one(path: Path, max_bytes: int = MAX) -> Article:
    results = load_all(path, max_bytes)
    assert len(results) == 1, results
    name, outcome = results[0]
    assert name == str(path)
    assert isinstance(outcome, Article), outcome
    return outcome


def load_error(path: Path, max_bytes: int = MAX) -> LoadError:
    results = load_all(path, max_bytes)
    assert len(results) == 1, results
    name, outcome = results[0]
    assert name == str(path)
    assert isinstance(outcome, LoadError), outcome
    assert outcome.name == str(path)
    assert "\n" not in outcome.reason, "a load error is one line"
    assert str(outcome) == f"{path}: {outcome.reason}"
    return outcome


def write(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_bytes(data.encode())
    else:
        path.write_bytes(data)
    return path


def tiny_png() -> bytes:
    """A real 1x1 PNG (full of NUL bytes, as binary files are)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def rewrite_pdf(src: Path, dest: Path, *, password: str | None = None, **metadata: str) -> Path:
    """A copy of a PDF through pypdf, optionally with document info or encryption."""
    writer = PdfWriter(clone_from=src)
    if metadata:
        writer.add_metadata({f"/{key.title()}": value for key, value in metadata.items()})
    if password is not None:
        writer.encrypt(password)
    writer.write(dest)
    return dest


# --- text and markdown ----------------------------------------------------------------


def test_shipped_sample_title_drops_the_glued_photo_credit() -> None:
    article = load_one(SAMPLE)
    assert article.title == "Is Elon Musk in regular contact with Vladimir Putin?"
    assert article.text.startswith("A Musk-Putin bombshell\n\nElon Musk has ramped up his campaign")
    for stray in ("Credit", "Doug Mills", "…Doug"):
        assert stray not in article.title
        assert stray not in article.text
    assert article.id == text_id(article.text)
    assert article.origin == str(SAMPLE)
    assert (article.url, article.source, article.author, article.published) == (None,) * 4


def test_sample_keeps_one_paragraph_per_line_and_exact_wording() -> None:
    article = load_one(SAMPLE)
    paragraphs = article.text.split("\n\n")
    assert paragraphs[0] == "A Musk-Putin bombshell"
    assert paragraphs[1].startswith("Elon Musk has ramped up his campaign to get Donald Trump")
    assert "what role — if any — Musk should play in politics." in paragraphs[2]
    assert "The Tesla C.E.O. has been in regular contact with Putin since late 2022" in article.text
    assert all(p == p.strip() and p for p in paragraphs)


def test_txt_title_is_first_non_empty_line_and_id_hashes_cleaned_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "council.txt",
        "\n\n   \nRiverton  council approves\t$42 million rail line \n"
        "The council voted 7-2 on Tuesday.\n"
        "  Mayor Elena Ortiz called it \u00a0a turning point.  \n",
    )
    article = load_one(path)
    assert article.title == "Riverton council approves $42 million rail line"
    assert article.text == (
        "The council voted 7-2 on Tuesday.\n\nMayor Elena Ortiz called it a turning point."
    )
    assert article.id == hashlib.sha256(article.text.encode()).hexdigest()[:16]
    assert article.id == text_id(article.text)
    assert article.origin == str(path)


def test_crlf_and_lf_files_give_the_same_article(tmp_path: Path) -> None:
    lines = [
        "Storm closes the harbor",
        "",
        "Boats stayed in port",
        "all day.",
        "",
        "Winds hit 70 mph.",
    ]
    lf = load_one(write(tmp_path, "lf.txt", "\n".join(lines)))
    crlf = load_one(write(tmp_path, "crlf.txt", "\r\n".join(lines) + "\r\n"))
    old_mac = load_one(write(tmp_path, "cr.txt", "\r".join(lines)))
    assert lf.title == crlf.title == old_mac.title == "Storm closes the harbor"
    # Blank lines separate hard-wrapped paragraphs; single newlines are soft.
    assert lf.text == "Boats stayed in port all day.\n\nWinds hit 70 mph."
    assert crlf.text == old_mac.text == lf.text
    assert crlf.id == lf.id == old_mac.id
    assert "\r" not in crlf.text


def test_trailing_blank_line_does_not_merge_paragraphs(tmp_path: Path) -> None:
    plain = load_one(SAMPLE)
    padded = SAMPLE.read_text(encoding="utf-8").rstrip("\n") + "\n\n\n"
    article = load_one(write(tmp_path, SAMPLE.name, padded))
    assert article.text == plain.text
    assert article.id == plain.id


def test_markdown_heading_becomes_the_title(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "harbor-storm.md",
        "\ufeff# Storm floods Port Alder harbor\r\n\r\n*By Jonah Weiss*\r\n\r\n"
        "A late-season storm pushed seawater over\r\nthe harbor wall early Sunday.\r\n",
    )
    article = load_one(path)
    assert article.title == "Storm floods Port Alder harbor"
    assert article.text == (
        "*By Jonah Weiss*\n\nA late-season storm pushed seawater over the harbor wall early Sunday."
    )
    assert "#" not in article.title and "\ufeff" not in article.title


def test_markdown_closed_heading_and_uppercase_suffix(tmp_path: Path) -> None:
    article = load_one(write(tmp_path, "NOTES.MD", "## Ferry fares to rise ##\nFares rise 5%.\n"))
    assert article.title == "Ferry fares to rise"
    assert article.text == "Fares rise 5%."


def test_one_line_file_is_both_headline_and_text(tmp_path: Path) -> None:
    article = load_one(write(tmp_path, "brief.txt", "  Council meets on Tuesday at 7 p.m.  \n\n"))
    assert article.title == "Council meets on Tuesday at 7 p.m."
    assert article.text == "Council meets on Tuesday at 7 p.m."


def test_control_characters_are_removed_from_text(tmp_path: Path) -> None:
    article = load_one(write(tmp_path, "ctl.txt", "Headline\nBell\x07 and\x1b escape\x7f gone.\n"))
    assert article.text == "Bell and escape gone."


# --- clean_title / clean_text ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "Is Elon Musk in regular contact with Vladimir Putin?"
            "Credit…Doug Mills/The New York Times",
            "Is Elon Musk in regular contact with Vladimir Putin?",
        ),
        ("Harbor wall fails in storm Credit...Jane Doe/Reuters", "Harbor wall fails in storm"),
        ("Harbor wall fails in storm Credit: Jane Doe", "Harbor wall fails in storm"),
        ("Harbor wall fails in storm Photo credit: AP", "Harbor wall fails in storm"),
        ("Harbor wall fails in storm Image Credit … Getty Images", "Harbor wall fails in storm"),
        ("Photo: A fire tears through the old mill", "Photo: A fire tears through the old mill"),
        ("Photograph: Crowds at the final", "Photograph: Crowds at the final"),
        ("# Storm floods harbor", "Storm floods harbor"),
        ("###   Storm   floods\tharbor  ###", "Storm floods harbor"),
        ("  Storm\u00a0floods\u200bharbor ", "Storm floods harbor"),
        ("", ""),
    ],
)
def test_clean_title(raw: str, expected: str) -> None:
    assert clean_title(raw) == expected


def test_clean_title_truncates_long_headlines() -> None:
    title = clean_title("word " * 100)
    assert len(title) == TITLE_MAX_CHARS
    assert title.endswith("…")
    assert title.startswith("word word")


@pytest.mark.parametrize(
    "title", ["Why I love C#", "#MeToo at five years", "Microsoft ships C# 13 and F#"]
)
def test_clean_title_keeps_hash_signs_that_are_part_of_the_headline(title: str) -> None:
    assert clean_title(title) == title


@pytest.mark.parametrize(
    "title",
    [
        "Consumer credit: what the Fed cut means for you",
        "Senators try to discredit: a timeline of the hearing",
        "Telephoto: the lens that changed sports coverage",
    ],
)
def test_clean_title_keeps_credit_words_inside_a_headline(title: str) -> None:
    assert clean_title(title) == title


def test_clean_text_paragraph_rules() -> None:
    # No blank lines: each line is a paragraph (scraper output).
    assert clean_text("One.\r\nTwo.\n") == "One.\n\nTwo."
    assert clean_text("One.\nTwo.\n  Three.  ") == "One.\n\nTwo.\n\nThree."
    # Blank lines present: single newlines are soft wraps.
    assert clean_text("One\ncontinues.\n \t\nTwo\ncontinues.") == "One continues.\n\nTwo continues."
    assert clean_text("a\u00a0\u00a0b\t\tc") == "a b c"
    assert clean_text(" \n\t\n ") == ""


def test_advertising_markers_are_not_article_text() -> None:
    scraped = (
        "The council met on Monday.\nADVERTISEMENT\nSKIP ADVERTISEMENT\n"
        "Story continues below advertisement\nContinue reading the main story\n"
        "It voted 6-3.\nAdvertisement:"
    )
    assert clean_text(scraped) == "The council met on Monday.\n\nIt voted 6-3."
    kept = "An advertisement for the fair ran on Monday.\nAd spending rose 4%."
    assert clean_text(kept) == kept.replace("\n", "\n\n")  # words about ads are text


# --- HTML --------------------------------------------------------------------------------

HTML_FIXTURE = LOADERS / "council-budget.html"


def test_html_article_metadata_and_text() -> None:
    article = load_one(HTML_FIXTURE)
    assert article.title == "Harbor City council passes $1.2 billion budget after all-night session"
    assert article.author == "Marisol Okafor"
    assert article.published == "2024-11-06"
    assert article.url == "https://www.coastalledger.example/local/2024/11/06/budget-passes"
    assert article.origin == str(HTML_FIXTURE)
    paragraphs = article.text.split("\n\n")
    # The <h1> repeats the title, so the body starts with the first paragraph.
    assert paragraphs[0].startswith("The Harbor City Council approved a $1.2 billion operating")
    assert "ending weeks of argument over police overtime and library hours." in paragraphs[0]
    assert len(paragraphs) == 5
    assert '"Nobody got everything they wanted, and that is what a compromise looks like,"' in (
        article.text
    )
    assert paragraphs[-1] == (
        "The new budget takes effect on January 1. The mayor is expected to sign it on Friday."
    )
    assert article.id == text_id(article.text)


@pytest.mark.parametrize(
    "boilerplate",
    [
        "Subscribe today",  # nav
        "Politics",  # nav
        "cookie",  # cookie banner
        "Accept all",  # cookie banner button
        "All rights reserved",  # footer
        "Privacy policy",  # footer
        "Most read",  # sidebar
        "taco trucks",  # sidebar
        "dataLayer",  # script
        "The Coastal Ledger",  # site name belongs in `source`, not the text
        "advertisement",  # ad markers between paragraphs
    ],
)
def test_html_boilerplate_is_not_in_the_text(boilerplate: str) -> None:
    assert boilerplate.lower() not in load_one(HTML_FIXTURE).text.lower()


def test_html_site_name_becomes_the_source() -> None:
    assert load_one(HTML_FIXTURE).source == "The Coastal Ledger"


def test_htm_suffix_in_any_case_uses_the_html_loader(tmp_path: Path) -> None:
    path = write(tmp_path, "COPY.HTM", HTML_FIXTURE.read_bytes())
    article = load_one(path)
    assert article.title == "Harbor City council passes $1.2 billion budget after all-night session"
    assert "<p>" not in article.text and "</article>" not in article.text


# --- PDF ---------------------------------------------------------------------------------


def test_pdf_text_layer_is_extracted() -> None:
    path = LOADERS / "ferry-strike.pdf"
    article = load_one(path)
    assert article.title == PDF_HEADLINE
    # Visual lines are joined into paragraphs; a line that ends a sentence ends one.
    assert article.text.split("\n\n") == [
        f"{PDF_LINES[1]} {PDF_LINES[2]}",
        PDF_LINES[3],
        PDF_LINES[4],
    ]
    assert article.id == text_id(article.text)
    assert article.author is None
    assert article.origin == str(path)


def test_pdf_document_info_gives_title_and_author(tmp_path: Path) -> None:
    path = rewrite_pdf(
        LOADERS / "ferry-strike.pdf",
        tmp_path / "with-info.pdf",
        title="Ferry strike called Credit: Port Alder Gazette",
        author="Nadia Brennan",
    )
    article = load_one(path)
    assert article.title == "Ferry strike called"
    assert article.author == "Nadia Brennan"
    assert article.text.startswith(PDF_HEADLINE + "\n\n")


def test_two_page_pdf_title_is_the_headline() -> None:
    article = load_one(LOADERS / "ferry-strike-two-pages.pdf")
    assert article.title == PDF_HEADLINE


def test_two_page_pdf_keeps_all_pages_text() -> None:
    article = load_one(LOADERS / "ferry-strike-two-pages.pdf")
    flat = " ".join(article.text.split())
    assert article.title == PDF_HEADLINE
    assert flat == " ".join(PDF_LINES[1:])


def test_pdf_page_without_text_layer() -> None:
    error = load_error(LOADERS / "blank-page.pdf")
    assert "no text layer" in error.reason


def test_encrypted_pdf_is_skipped_with_a_reason(tmp_path: Path) -> None:
    path = rewrite_pdf(LOADERS / "ferry-strike.pdf", tmp_path / "locked.pdf", password="secret")
    assert PDF_HEADLINE.encode() not in path.read_bytes()  # really encrypted
    error = load_error(path)
    assert "encrypted" in error.reason and "password" in error.reason


def test_pdf_with_owner_password_only_still_loads(tmp_path: Path) -> None:
    path = rewrite_pdf(LOADERS / "ferry-strike.pdf", tmp_path / "owner.pdf", password="")
    assert load_one(path).title == PDF_HEADLINE


def test_aes256_encrypted_pdf_is_skipped_with_a_reason() -> None:
    error = load_error(LOADERS / "ferry-strike-aes256.pdf")
    assert "encrypted" in error.reason and "password" in error.reason


def pages_pdf(dest: Path, pages: int) -> Path:
    """A PDF of this many copies of the one-page ferry story."""
    writer = PdfWriter()
    page = PdfReader(LOADERS / "ferry-strike.pdf").pages[0]
    for _ in range(pages):
        writer.add_page(page)
    writer.write(dest)
    return dest


def test_a_pdf_over_the_page_limit_is_skipped_naming_its_pages(tmp_path: Path) -> None:
    path = pages_pdf(tmp_path / "report.pdf", 1200)
    [(name, error)] = load_file(path, MAX, max_pdf_pages=500)
    assert isinstance(error, LoadError)
    assert str(error) == f"{path}: 1,200 pages; the limit is 500; skipped"


def slow_pdf(dest: Path, copies: int) -> Path:
    """The ferry story with its page's drawing commands repeated: slow to read, one page long."""
    writer = PdfWriter(clone_from=LOADERS / "ferry-strike.pdf")
    page = writer.pages[0]
    commands = DecodedStreamObject()
    commands.set_data(page.get_contents().get_data() * copies)
    page.replace_contents(commands)
    writer.write(dest)
    return dest


def test_a_pdf_read_past_its_time_limit_is_stopped_and_skipped(tmp_path: Path) -> None:
    path = slow_pdf(tmp_path / "slow.pdf", 5000)  # several seconds of pypdf's parsing
    started = time.perf_counter()
    [(name, error)] = load_file(path, 10 * MAX, pdf_seconds=0.5)
    elapsed = time.perf_counter() - started
    assert isinstance(error, LoadError) and name == str(path)
    assert error.reason == "reading took longer than the limit of 0.5 s; skipped"
    # A generous bound: the reader is stopped, not waited for.
    assert elapsed < 5, f"{elapsed:.1f} s"


def test_a_pdf_read_in_time_in_a_reader_process_is_read_as_in_this_one(tmp_path: Path) -> None:
    two_pages = LOADERS / "ferry-strike-two-pages.pdf"
    path = rewrite_pdf(two_pages, tmp_path / "info.pdf", title="Ferry strike", author="Ann Lee")
    [(_, timed)] = load_file(path, MAX, pdf_seconds=60)
    assert timed == load_one(path)
    assert isinstance(timed, Article) and (timed.title, timed.author) == ("Ferry strike", "Ann Lee")
    truncated = write(tmp_path, "truncated.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog")
    locked = rewrite_pdf(LOADERS / "ferry-strike.pdf", tmp_path / "locked.pdf", password="secret")
    for bad in (truncated, locked):
        [(_, error)] = load_file(bad, MAX, pdf_seconds=60)
        assert isinstance(error, LoadError) and error == load_error(bad)
    long = pages_pdf(tmp_path / "long.pdf", 3)
    [(_, too_long)] = load_file(long, MAX, max_pdf_pages=2, pdf_seconds=60)
    assert isinstance(too_long, LoadError) and too_long.reason == "3 pages; the limit is 2; skipped"


def test_pdf_limits_come_from_the_settings_and_the_batch_goes_on(
    tmp_path: Path, embedder: ModelEmbedder
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    pages_pdf(folder / "a-long.pdf", 4)
    write(folder, "b-story.txt", "Tide tables\n\nThe harbour master set new tide tables on Monday.")
    pages_pdf(folder / "c-at-the-limit.pdf", 3)
    assistant = Assistant(Settings(data_dir=tmp_path / "data", max_pdf_pages=3), embedder=embedder)
    try:
        report = assistant.add([folder])
    finally:
        assistant.close()
    outcome = {Path(r.name).name: (r.status, r.reason) for r in report.results}
    assert outcome["a-long.pdf"] == ("failed", "4 pages; the limit is 3; skipped")
    assert outcome["b-story.txt"][0] == "added" and outcome["c-at-the-limit.pdf"][0] == "added"


# --- JSONL bulk import -------------------------------------------------------------------


def test_the_benchmark_harness_imports_the_crawlers_date_as_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In the benchmark corpus `published` was read from the text and may be an event's date;
    # the harness gives the assistant the crawler's date (`published_meta`) instead.
    spec = importlib.util.spec_from_file_location("bench_run", TESTS.parent / "bench" / "run.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_run", bench)  # its dataclasses look themselves up
    spec.loader.exec_module(bench)
    preview = {
        "id": "america250",
        "text": "Celebrations are planned for July 4, 2026.",
        "published": "2026-07-04",
        "published_meta": "2025-07-02",
    }
    # One that is not a date does not replace one that is.
    garbled = {"id": "garbled", "text": "Rail fares rise.", "published": "2025-03-03"}
    garbled["published_meta"] = "unknown"
    records = [bench.product_article(r) for r in (preview, garbled)]
    assert all("published_meta" not in r for r in records)
    lines = "".join(json.dumps(r) + "\n" for r in records)
    articles = [a for _, a in load_all(write(tmp_path, "dates.jsonl", lines))]
    assert [a.published for a in articles if isinstance(a, Article)] == [
        "2025-07-02",
        "2025-03-03",
    ]


def test_jsonl_records_and_bad_lines(tmp_path: Path) -> None:
    odd_text = (
        "  Family bakery closes\u00a0after 92 years.\r\n\n\tOwner Ruth Kessler, 68,  said so.  "
    )
    lines = [
        json.dumps(
            {
                "id": "wire-bakery-0001",
                "title": "# Family bakery closes Credit: Ana Ruiz/Wire",
                "url": "https://news.example.org/bakery",
                "source": "example.org",
                "author": "Ana Ruiz",
                "published": "2025-03-02",
                "text": odd_text,
            }
        ),
        "",
        "{this is not json",
        "   ",
        json.dumps({"id": 42, "published": "2025-03-04", "text": "Ferry fares rise.\nBy 5%."}),
        json.dumps({"id": "no-text", "title": "Missing"}),
        json.dumps({"id": "empty", "text": "  \n "}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": "number", "text": 12}),
        json.dumps({"text": "Untitled wire copy.", "published": None}),
    ]
    path = write(tmp_path, "wire.jsonl", "\n".join(lines) + "\n")
    results = load_all(path)
    names = [name for name, _ in results]
    assert names == [f"{path}:{n}" for n in (1, 3, 5, 6, 7, 8, 9, 10)]  # blank lines skipped
    outcomes = dict(results)

    first = outcomes[f"{path}:1"]
    assert isinstance(first, Article)
    assert first.id == "wire-bakery-0001"
    assert first.text == odd_text  # exactly as given, so outside offsets stay valid
    assert first.title == "Family bakery closes"
    assert first.url == first.origin == "https://news.example.org/bakery"
    assert (first.source, first.author, first.published) == (
        "example.org",
        "Ana Ruiz",
        "2025-03-02",
    )

    fifth = outcomes[f"{path}:5"]
    assert isinstance(fifth, Article)
    assert fifth.id == "42"
    assert fifth.text == "Ferry fares rise.\nBy 5%."
    assert fifth.title == "Ferry fares rise."  # the first line of the text
    assert fifth.published == "2025-03-04"
    assert (fifth.url, fifth.source, fifth.author, fifth.origin) == (None,) * 4

    last = outcomes[f"{path}:10"]
    assert isinstance(last, Article)
    assert last.id == text_id("Untitled wire copy.")
    assert last.published is None

    errors = {name: outcome for name, outcome in results if isinstance(outcome, LoadError)}
    assert sorted(errors) == [f"{path}:{n}" for n in (3, 6, 7, 8, 9)]
    for name, error in errors.items():
        assert error.name == name
        assert str(error).startswith(f"{path}:")
        assert "\n" not in error.reason
    assert errors[f"{path}:3"].reason.startswith("not valid JSON (")
    assert "column 2" in errors[f"{path}:3"].reason
    assert errors[f"{path}:6"].reason == 'no "text" field with article text'
    assert errors[f"{path}:7"].reason == 'no "text" field with article text'
    assert errors[f"{path}:8"].reason == "not a JSON object"
    assert errors[f"{path}:9"].reason == 'no "text" field with article text'


def test_jsonl_with_crlf_lines_and_bom(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "crlf.jsonl",
        b'\xef\xbb\xbf{"id": "a", "text": "One\\r\\nTwo"}\r\n\r\n{"id": "b", "text": "Three"}\r\n',
    )
    results = load_all(path)
    assert [name for name, _ in results] == [f"{path}:1", f"{path}:3"]
    texts = [(a.id, a.text) for _, a in results if isinstance(a, Article)]
    assert texts == [("a", "One\r\nTwo"), ("b", "Three")]


def test_shipped_jsonl_test_articles_load() -> None:
    path = TESTS / "data" / "articles" / "wire.jsonl"
    results = load_all(path)
    assert results, "wire.jsonl has records"
    assert all(isinstance(a, Article) for _, a in results), results
    first = results[0][1]
    assert isinstance(first, Article)
    assert first.id == "wire-bakery-0001"
    assert first.title == "Family bakery in Millbrook closes after 92 years"
    assert first.text.startswith("The Kessler family bakery in Millbrook closed its doors")


@pytest.mark.parametrize("data", [b"\xef\xbb\xbf\n", "\u00a0\n\u3000\n".encode()])
def test_blank_jsonl_reports_an_error(tmp_path: Path, data: bytes) -> None:
    error = load_error(write(tmp_path, "blank.jsonl", data))
    assert "empty" in error.reason


# --- bad inputs ----------------------------------------------------------------------------


BAD_INPUTS = [
    ("report.docx", b"PK\x03\x04 not really a docx", "unsupported file type '.docx'"),
    ("README", b"no suffix at all", "unsupported file type 'README'"),
    ("empty.txt", b"", "empty file: no text"),
    ("empty.pdf", b"", "empty file: no text"),
    ("empty.jsonl", b"", "empty file: no text"),
    ("spaces.txt", b"  \r\n\t\n   \n", "empty file: no text"),
    ("spaces.md", " \u00a0 \n\u3000\n".encode(), "empty file: no text"),
    ("spaces.html", b"\n\n   \n", "empty file: no text"),
    ("bom-only.txt", b"\xef\xbb\xbf", "empty file: no text"),
    ("latin1.txt", "Caf\xe9 closes\nThe caf\xe9 shut.".encode("latin-1"), "not valid UTF-8"),
    ("latin1.md", b"# Headline\n\xff\xfe broken", "bad byte at offset 11"),
    ("image.txt", tiny_png(), "binary data, not text"),
    ("image.jsonl", tiny_png(), "binary data, not text"),
    ("image.html", tiny_png(), "binary data, not text"),
    ("garbage.pdf", bytes(range(256)) * 3, "not a readable PDF"),
    ("truncated.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog", "not a readable PDF"),
    ("image.pdf", tiny_png(), "not a readable PDF"),
    (
        "app.html",
        b"<html><head><title>App</title><script>var a = 1;</script></head><body>"
        b"<script>document.write('Loading the latest headlines for you now')</script>"
        b"</body></html>",
        "no article text found in the HTML",
    ),
    (
        "title-only.html",
        b"<html><head><title>Only</title></head><body></body></html>",
        "no article text found in the HTML",
    ),
]


@pytest.mark.parametrize(("name", "data", "expected"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_a_one_line_error(
    tmp_path: Path, name: str, data: bytes, expected: str
) -> None:
    path = write(tmp_path, name, data)
    error = load_error(path)
    assert expected in error.reason


def test_an_unreadable_pdf_is_reported_once_without_the_readers_own_messages(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    error = load_error(write(tmp_path, "truncated.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog"))
    assert "not a readable PDF" in error.reason
    # pypdf says "EOF marker not found" through logging: on a terminal that is noise above
    # the one line that reports the file.
    assert [r.getMessage() for r in caplog.records if r.name.startswith("pypdf")] == []


def test_utf8_error_reports_the_offset(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, "latin1.txt", "Caf\xe9 closes".encode("latin-1")))
    assert error.reason == "not valid UTF-8 text (bad byte at offset 3); re-save as UTF-8"


def test_file_larger_than_max_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, "big.txt", "Headline\n" + "word " * 400)
    size = path.stat().st_size
    error = load_error(path, max_bytes=size - 1)
    assert error.reason == f"file too large ({size:,} bytes; the limit is {size - 1:,})"
    assert load_one(path, max_bytes=size).title == "Headline"  # the limit itself is allowed


def test_jsonl_bulk_file_is_streamed_past_the_file_size_limit(tmp_path: Path) -> None:
    # The benchmark's full corpus is a 53 MB JSONL file: bulk import must not stop at a size.
    lines = [json.dumps({"id": f"a{i}", "text": f"Story {i}."}) for i in range(200)]
    lines.insert(100, json.dumps({"id": "huge", "text": "word " * 300}))
    lines.insert(150, '{"id": "bad", "text": "caf\xe9"}')
    path = write(tmp_path, "big.jsonl", "\n".join(lines).encode("latin-1") + b"\n")
    assert path.stat().st_size > 1000
    results = list(load_file(path, max_bytes=1000, max_chars=200))
    articles = [a for _, a in results if isinstance(a, Article)]
    errors = {name: e.reason for name, e in results if isinstance(e, LoadError)}
    assert [a.id for a in articles] == [f"a{i}" for i in range(200)]
    assert errors == {
        f"{path}:101": "line too long (over 802 bytes)",
        f"{path}:151": "not valid UTF-8 text (bad byte at column 27); re-save as UTF-8",
    }


def test_jsonl_line_over_the_article_limit_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "long.jsonl", json.dumps({"text": "word " * 50}) + "\n")
    [(name, error)] = load_file(path, max_bytes=10**6, max_chars=100)
    assert name == f"{path}:1"
    assert isinstance(error, LoadError)
    assert error.reason.startswith("line too long (2")


def test_missing_file_read_directly(tmp_path: Path) -> None:
    error = load_error(tmp_path / "gone.txt")
    assert error.reason.startswith("cannot read file (")
    assert "No such file" in error.reason


def test_folder_named_like_an_article(tmp_path: Path) -> None:
    folder = tmp_path / "looks-like.txt"
    folder.mkdir()
    assert load_error(folder).reason.startswith("cannot read file (")


# --- find_files --------------------------------------------------------------------------


def test_find_files_recurses_sorted_and_filters(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for rel in [
        "b.txt",
        "a.md",
        "Z.PDF",
        "sub/deeper/c.jsonl",
        "sub/d.html",
        "sub/e.htm",
        "notes.docx",
        "image.png",
        "no-suffix",
        ".hidden.txt",
        "sub/.draft.md",
    ]:
        write(root, rel, "x")
    (root / "empty-folder").mkdir()
    found = list(find_files([root]))
    # Files of other types are named as skipped, in their place; hidden ones are left out.
    skipped = [
        (Path(f.name).relative_to(root).as_posix(), f.reason)
        for f in found
        if isinstance(f, Skipped)
    ]
    assert skipped == [
        ("image.png", "unsupported file type '.png'"),
        ("no-suffix", "unsupported file type 'no-suffix'"),
        ("notes.docx", "unsupported file type '.docx'"),
    ]
    assert all(isinstance(p, Path | Skipped) for p in found)
    assert [p.relative_to(root).as_posix() for p in found if isinstance(p, Path)] == [
        "Z.PDF",
        "a.md",
        "b.txt",
        "sub/d.html",
        "sub/deeper/c.jsonl",
        "sub/e.htm",
    ]
    assert list(find_files([root])) == found  # stable


def test_find_files_keeps_argument_order_and_explicit_files(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    one = write(folder, "one.txt", "x")
    two = write(folder, "two.txt", "x")
    explicit = write(tmp_path, "z-explicit.docx", "x")  # named explicitly: load_file reports it
    dotfile = write(tmp_path, ".explicit.md", "x")
    missing = tmp_path / "missing-folder"
    found = list(find_files([explicit, folder, missing, dotfile]))
    assert found[:3] == [explicit, one, two]
    assert found[3] == LoadError(str(missing), "no such file or folder")
    assert str(found[3]) == f"{missing}: no such file or folder"
    assert found[4] == dotfile
    assert len(found) == 5
    error = load_error(explicit)
    assert error.reason.startswith("unsupported file type '.docx' (supported: .txt .md")


def test_find_files_on_the_test_articles() -> None:
    folder = TESTS / "data" / "articles"
    found = list(find_files([folder]))
    assert [p.name for p in found if isinstance(p, Path)] == sorted(
        p.name for p in folder.iterdir() if not p.name.startswith(".")
    )


def test_find_files_skips_hidden_folders(tmp_path: Path) -> None:
    root = tmp_path / "in"
    write(root, "story.txt", "x")
    write(root, ".ipynb_checkpoints/story-checkpoint.txt", "x")
    write(root, ".cache/copy.md", "x")
    assert list(find_files([root])) == [root / "story.txt"]


# --- article_from_text -------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\r\n\t", "\x00\x07"])
def test_article_from_empty_text_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        article_from_text(text)


def test_article_from_text_without_title_or_url() -> None:
    article = article_from_text("  Council meets Tuesday\r\nThe agenda has one item.  ")
    assert article.title == "Council meets Tuesday"
    assert article.text == "Council meets Tuesday\n\nThe agenda has one item."
    assert article.id == text_id(article.text)
    assert article.url is None and article.origin is None


def test_article_from_text_with_title_and_url() -> None:
    article = article_from_text(
        "The agenda has one item.",
        title="  # Council meets   Tuesday Credit: City Hall  ",
        url="https://example.org/council",
    )
    assert article.title == "Council meets Tuesday"
    assert article.text == "The agenda has one item."
    assert article.url == article.origin == "https://example.org/council"


def test_article_from_text_blank_title_and_url_fall_back() -> None:
    article = article_from_text("Body line.", title="   ", url="")
    assert article.title == "Body line."
    assert article.url is None and article.origin is None


def test_content_hash_tracks_metadata_but_id_tracks_text() -> None:
    a = article_from_text("Same body.", title="One")
    b = article_from_text("Same body.", title="Two")
    assert a.id == b.id
    assert a.content_hash != b.content_hash
    assert a.content_hash == article_from_text("Same body.", title="One").content_hash
