"""Articles: loading files of every supported format, cleaning text, extracting metadata."""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import multiprocessing as mp
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import ForkServerContext, SpawnContext

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".jsonl")
TITLE_MAX_CHARS = 200
META_MAX_CHARS = 200  # an outlet, author or date: shown beside every quote of the article

# Control characters that are not whitespace (whitespace is collapsed to a space instead).
_NON_SPACE_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
# Every run of whitespace, line breaks of every kind included (\n \r \v \f \x85 \u2028 \u2029).
_WHITESPACE = re.compile(r"\s+")


def one_line(text: str, limit: int | None = None) -> str:
    """Metadata as one line of plain text: control characters gone, whitespace runs one space.

    A line break in a title would otherwise end the block it is shown in, and what follows
    would be read as Markdown wherever the title is rendered.
    """
    line = _WHITESPACE.sub(" ", _NON_SPACE_CONTROL.sub("", text)).strip()
    if limit is not None and len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


def safe_url(url: str | None) -> str | None:
    """The URL if it is a plain web link (never `javascript:` or `data:`), else None."""
    if not url:
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    # Characters that would end a Markdown link target or an HTML attribute, percent-encoded.
    return quote(url, safe=":/?#[]@!$&'*+,;=%~-._")


@dataclass(frozen=True)
class Article:
    """An article with its canonical text; citation offsets refer to `text`.

    Its metadata (title, url, outlet, author, date) is single-line plain text, whatever the
    loader or the store gave: it is normalised here, the one place every article is built.
    """

    id: str
    title: str
    text: str
    url: str | None = None
    source: str | None = None
    author: str | None = None
    published: str | None = None
    origin: str | None = None  # the file path or URL a newer version replaces by

    def __post_init__(self) -> None:
        # Frozen: fields are set through object.__setattr__, as dataclasses do themselves.
        # A title of only control characters or spaces would leave nothing to show or click.
        title = one_line(self.title, TITLE_MAX_CHARS) or "Untitled"
        object.__setattr__(self, "title", title)
        object.__setattr__(self, "url", one_line(self.url) or None if self.url else None)
        for name in ("source", "author", "published"):
            value = getattr(self, name)
            object.__setattr__(
                self, name, one_line(value, META_MAX_CHARS) or None if value else None
            )

    @property
    def content_hash(self) -> str:
        fields = [self.title, self.text, self.url, self.source, self.author, self.published]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LoadError:
    """An input that could not become an article, with the reason in one line."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def date_of(published: str | None) -> str:
    """The day of a publication date (`2024-03-01`), or "" when there is none."""
    return (published or "")[:10]


def source_and_date(source: str | None, published: str | None) -> str:
    """`Outlet, 2024-03-01` for sources lists and headers; an unknown part is left out."""
    return ", ".join(x for x in (source, date_of(published)) if x)


Loaded = tuple[str, Article | LoadError]  # (name for reports: path or path:line, outcome)


def text_id(text: str) -> str:
    """Stable id of an article without one: a hash of its cleaned text."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# A photo credit glued to a headline by a scraper: "…Putin?Credit…Doug Mills/The New York Times".
# Case-sensitive and at a word start, so "Consumer credit: what…" keeps its words. The credit
# runs to the end, so the search stops at the first name after the mark: asking that it reach
# the end of the line (`.*$`) made the search quadratic in a title with many marks and a newline.
_CREDIT = re.compile(
    r"(?:(?<=[^\w\s])|(?<=\s)|(?<=[a-z]))(?:(?:Photo|Image)\s+[Cc]redit|Credit|Photograph|Photo)"
    r"\s*(?:…|\.\.\.|:)\s*\S"
)
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
# Anchored at the start of a run of spaces: otherwise a long run makes the search quadratic.
_MD_CLOSING = re.compile(r"(?<!\s)\s++#++\s*+$")
_SPACES = re.compile(r"[ \t\f\v\u00a0\u200b]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Half of a UTF-16 pair on its own: JSON can spell it ("\\ud800"), but no UTF-8 text holds it.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_title(line: str) -> str:
    """A headline without markdown marks, glued-on photo credits or extra spaces."""
    title = _MD_HEADING.sub("", _SURROGATE.sub("\ufffd", _CONTROL.sub("", line)))
    credit = _CREDIT.search(title)
    if credit and credit.start() > 0:  # a title that *starts* with "Photo:" keeps its words
        title = title[: credit.start()]
    title = _SPACES.sub(" ", _MD_CLOSING.sub("", title)).strip()
    if len(title) > TITLE_MAX_CHARS:
        title = title[: TITLE_MAX_CHARS - 1].rstrip() + "…"
    return title


# A paragraph that is only a page's advertising marker ("Advertisement", "SKIP ADVERTISEMENT",
# "Story continues below advertisement"): saved pages and scraped text keep them between
# paragraphs, where they would be quoted and embedded as if the reporter had written them.
_AD_MARKER = re.compile(
    r"(?:advertisement|advertising|skip advertisement|ad|sponsored(?: content)?"
    r"|(?:story|article) continues below(?: this)? (?:advertisement|ad)"
    r"|continue reading(?: the main story)?(?: below)?)[\s.:…–—-]*",
    re.IGNORECASE,
)


def clean_text(raw: str) -> str:
    """Canonical article text: paragraphs joined by a blank line, spaces collapsed.

    Text with blank lines is read as hard-wrapped paragraphs (single newlines are soft);
    text without any reads each line as a paragraph, as scrapers write it. Paragraphs that
    are only an advertising marker are left out.
    """
    raw = _CONTROL.sub("", raw.replace("\r\n", "\n").replace("\r", "\n"))
    if re.search(r"\S[ \t]*\n[ \t]*\n\s*\S", raw):
        blocks = re.split(r"\n[ \t]*\n", raw)
        paragraphs = [" ".join(line.strip() for line in b.split("\n")) for b in blocks]
    else:
        paragraphs = raw.split("\n")
    cleaned = (_SPACES.sub(" ", p).strip() for p in paragraphs)
    return "\n\n".join(p for p in cleaned if p and not _AD_MARKER.fullmatch(p))


def _title_from_text(text: str) -> str:
    first = next((line for line in text.split("\n") if line.strip()), "")
    return clean_title(first) or "Untitled"


class _Skip(Exception):
    """Raised inside a loader to report a LoadError for the current input."""


# Byte-order marks of the encodings Windows editors save as "Unicode" (UTF-32 first: its
# little-endian mark starts with UTF-16's).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decode(data: bytes) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as e:
                reason = f"not valid {encoding.upper()} text (bad bytes at offset {e.start})"
                raise _Skip(reason) from e
    if b"\x00" in data[:8192]:
        raise _Skip("binary data, not text (is the file type right?)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _Skip(f"not valid UTF-8 text (bad byte at offset {e.start}); re-save as UTF-8") from e


def _need_text(text: str) -> str:
    if not text.strip():
        raise _Skip("no article text found (empty file?)")
    return text


def _from_plain(path: Path, data: bytes) -> Article:
    raw = _decode(data).replace("\r\n", "\n").replace("\r", "\n")
    lines = raw.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise _Skip("empty file: no text")
    title = clean_title(lines[first])
    body = clean_text("\n".join(lines[first + 1 :]))
    if not body:
        # A one-paragraph file: the line is both headline and text.
        body = clean_text(lines[first])
    return Article(id=text_id(body), title=title or "Untitled", text=body, origin=str(path))


def _from_html(path: Path, data: bytes) -> Article:
    import trafilatura

    html = _decode(data)
    extracted = trafilatura.extract(
        html, output_format="json", with_metadata=True, include_comments=False, url=None
    )
    if not extracted:
        raise _Skip("no article text found in the HTML")
    meta = json.loads(extracted)
    text = clean_text(_need_text(meta.get("text") or ""))
    title = clean_title(meta.get("title") or "") or _title_from_text(text)
    headline, _, rest = text.partition("\n\n")
    if rest and clean_title(headline) == title:
        text = rest  # the page's <h1> repeats the title: keep it out of the body
    return Article(
        id=text_id(text),
        title=title,
        text=text,
        url=meta.get("source") or None,
        source=meta.get("sitename") or meta.get("source-hostname") or meta.get("hostname") or None,
        author=meta.get("author") or None,
        published=meta.get("date") or None,
        origin=str(path),
    )


def _pdf_page_text(page_text: str) -> str:
    """A page's visual lines joined into paragraphs: a line ending a sentence ends one."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in page_text.split("\n"):
        line = line.strip()
        if not line:
            continue
        current.append(line)
        if re.search(r"[.!?:\"”’)]$", line):
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n".join(paragraphs)


@dataclass(frozen=True)
class _PdfInfo:
    """The document info a PDF's reader passes back: plain strings, so it crosses processes."""

    title: str | None
    author: str | None


def _read_pdf(data: bytes, max_pages: int | None) -> tuple[list[str], _PdfInfo]:
    """The text of each page and the document info; _Skip for an unreadable or too long PDF."""
    import io

    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PdfReadError

    # pypdf logs what it repairs or cannot read ("EOF marker not found") on the terminal; a
    # file it cannot read is reported once, with the reason, like any other bad file.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise _Skip("encrypted PDF (needs a password); skipped")
        count = len(reader.pages)
        if max_pages is not None and count > max_pages:
            raise _Skip(f"{count:,} pages; the limit is {max_pages:,}; skipped")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta = reader.metadata
        info = _PdfInfo(
            str(meta.title) if meta and meta.title else None,
            str(meta.author) if meta and meta.author else None,
        )
    except _Skip:
        raise
    except DependencyError as e:  # AES encryption without the optional crypto package
        raise _Skip("encrypted PDF (needs a password); skipped") from e
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as e:
        raise _Skip(f"not a readable PDF ({e})") from e
    return pages, info


def _pdf_worker(send: Connection, data: bytes, max_pages: int | None) -> None:
    """Runs in a child process: reads the PDF and sends back the outcome."""
    try:
        send.send(("read", _read_pdf(data, max_pages)))
    except _Skip as e:
        send.send(("skip", str(e)))
    except Exception as e:  # a parser crashing on hostile input
        send.send(("skip", f"could not be read ({type(e).__name__}: {e})"))
    finally:
        send.close()


def _reader_context() -> ForkServerContext | SpawnContext:
    """How PDF readers are started: forked from a fork server where there is one.

    The fork server is a clean process with pypdf loaded: a reader starts quickly, and forking
    it is safe while this process runs other threads (the web UI, the embedding model).
    """
    if "forkserver" in mp.get_all_start_methods():
        context = mp.get_context("forkserver")
        context.set_forkserver_preload(["assistant.articles", "pypdf"])
        return context
    return mp.get_context("spawn")


def _read_pdf_in_time(
    data: bytes, max_pages: int | None, seconds: float | None
) -> tuple[list[str], _PdfInfo]:
    """`_read_pdf` in a child process stopped after `seconds`: pypdf parses a page's drawing
    commands in one go, which a hostile page can make last minutes, and only a process can be
    stopped part-way."""
    if seconds is None:
        return _read_pdf(data, max_pages)
    context = _reader_context()
    receive, send = context.Pipe(duplex=False)
    worker = context.Process(target=_pdf_worker, args=(send, data, max_pages), daemon=True)
    worker.start()
    send.close()
    try:
        if not receive.poll(seconds):
            raise _Skip(f"reading took longer than the limit of {seconds:g} s; skipped")
        kind, outcome = receive.recv()
    except EOFError:
        raise _Skip("the PDF reader stopped without an answer (out of memory?); skipped") from None
    finally:
        worker.kill()
        worker.join()
        receive.close()
    if kind == "skip":
        raise _Skip(outcome)
    pages, info = outcome
    return pages, info


def _from_pdf(
    path: Path, data: bytes, max_pages: int | None = None, seconds: float | None = None
) -> Article:
    pages, info = _read_pdf_in_time(data, max_pages, seconds)
    lines = [ln.strip() for ln in "\n".join(pages).split("\n") if ln.strip()]
    if not lines:
        raise _Skip("no text layer (scanned image?); skipped")
    # The first line is the headline: a paragraph of its own, never joined to the next line.
    headline = lines[0]
    first_page = pages[0].strip().split("\n", 1)[1] if "\n" in pages[0].strip() else ""
    body = "\n".join(_pdf_page_text(p) for p in [first_page, *pages[1:]])
    meta_title = clean_title(str(info.title)) if info and info.title else ""
    # With a title in the document info, the first line is text (a headline or not): keep it.
    text = clean_text(f"{headline}\n{body}" if meta_title or not body.strip() else body)
    author = str(info.author) if info and info.author else None
    return Article(
        id=text_id(text),
        title=meta_title or clean_title(headline) or "Untitled",
        text=text,
        author=author,
        origin=str(path),
    )


_JSONL_FIELDS = ("id", "title", "url", "source", "author", "published")


def _from_jsonl_line(line: str, max_chars: int | None = None) -> Article:
    if max_chars is not None and len(line) > max_chars:
        # Checked before parsing: the whole line counts, as it bounds the text it can hold.
        raise _Skip(
            f"line too long ({len(line):,} characters; the limit per article is {max_chars:,})"
        )
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        # json's own message for a cut-off string ends in "starting at": say where once.
        message = e.msg.removesuffix(" at")
        raise _Skip(f"not valid JSON ({message} at column {e.colno})") from e
    except (RecursionError, ValueError) as e:  # nested too deep; a number too long to read
        raise _Skip(f"not readable JSON ({type(e).__name__}: {e})") from e
    if not isinstance(record, dict):
        raise _Skip("not a JSON object")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise _Skip('no "text" field with article text')
    bad = _SURROGATE.search(text)
    if bad:
        # The text is kept exactly, so it cannot be repaired; the store could not hold it.
        raise _Skip(f'"text" has an invalid character (lone surrogate at {bad.start()})')
    fields = {
        k: (_SURROGATE.sub("\ufffd", str(record[k])) if record.get(k) is not None else None)
        for k in _JSONL_FIELDS
    }
    # The text is stored exactly as given, so that offsets from elsewhere stay valid.
    return Article(
        id=fields["id"] or text_id(text),
        title=clean_title(fields["title"] or "") or _title_from_text(text),
        text=text,
        url=fields["url"],
        source=fields["source"],
        author=fields["author"],
        published=fields["published"],
        origin=fields["url"],
    )


def _jsonl_lines(f: BinaryIO, max_line_bytes: int) -> Iterator[bytes | None]:
    """The lines of a byte stream, one at a time; None for a line longer than the limit."""
    while line := f.readline(max_line_bytes + 1):
        if len(line) > max_line_bytes and not line.endswith(b"\n"):
            while (rest := f.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass  # skipped in pieces: a 10 GB line never sits in memory
            yield None
        else:
            yield line


def _load_jsonl(path: Path, max_bytes: int, max_chars: int | None) -> Iterator[Loaded]:
    """A bulk file, streamed line by line: only each line is limited, not the whole file."""
    with path.open("rb") as f:
        head = f.read(8192)
        if any(head.startswith(bom) for bom, _ in _BOMS):  # UTF-16/32: lines are not bytes
            yield from _load_jsonl_text(path, _read_limited(f, head, max_bytes), max_chars)
            return
        if b"\x00" in head:
            raise _Skip("binary data, not text (is the file type right?)")
        f.seek(3 if head.startswith(codecs.BOM_UTF8) else 0)
        # A character is at most 4 bytes in UTF-8; the exact limit is checked once decoded.
        limit = 4 * (max_chars or max_bytes) + 2
        found = False
        for lineno, raw in enumerate(_jsonl_lines(f, limit), 1):
            name = f"{path}:{lineno}"
            try:
                line = _line_text(raw, limit)
            except _Skip as e:
                found = True
                yield name, LoadError(name, str(e))
                continue
            if line.strip():
                found = True
                yield _record(name, line, max_chars)
        if not found:
            raise _Skip("empty file: no text")


def _line_text(raw: bytes | None, limit: int) -> str:
    """One streamed line as text, without its newline; _Skip if too long or not UTF-8."""
    if raw is None:
        raise _Skip(f"line too long (over {limit:,} bytes)")
    try:
        return raw.decode("utf-8").removesuffix("\n")
    except UnicodeDecodeError as e:
        column = e.start + 1
        raise _Skip(f"not valid UTF-8 text (bad byte at column {column}); re-save as UTF-8") from e


def _record(name: str, line: str, max_chars: int | None) -> Loaded:
    """One JSONL line as an article, or the error naming it (the batch goes on)."""
    try:
        return name, _from_jsonl_line(line, max_chars)
    except _Skip as e:
        return name, LoadError(name, str(e))


def _read_limited(f: BinaryIO, head: bytes, max_bytes: int) -> bytes:
    data = head + f.read(max_bytes + 1 - len(head))
    if len(data) > max_bytes:
        raise _Skip(f"file too large (over the limit of {max_bytes:,} bytes)")
    return data


def _load_jsonl_text(path: Path, data: bytes, max_chars: int | None) -> Iterator[Loaded]:
    text = _decode(data)
    if not text.strip():
        raise _Skip("empty file: no text")
    for lineno, line in enumerate(text.split("\n"), 1):
        if line.strip():
            yield _record(f"{path}:{lineno}", line, max_chars)


_LOADERS = {
    ".txt": _from_plain,
    ".md": _from_plain,
    ".html": _from_html,
    ".htm": _from_html,
    ".pdf": _from_pdf,
}


def _not_regular(mode: int) -> str | None:
    """Why a path that is no plain file is not read: a pipe would block, a device never ends."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "a named pipe, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a regular file"
    return "not a regular file"


def load_file(
    path: Path,
    max_bytes: int,
    max_chars: int | None = None,
    *,
    max_pdf_pages: int | None = None,
    pdf_seconds: float | None = None,
) -> Iterator[Loaded]:
    """Articles from one file (many for .jsonl), or an error naming the file and reason.

    The size is checked before anything is read or parsed; `max_chars` limits each article,
    `max_pdf_pages` and `pdf_seconds` the pages of a PDF and the time spent reading them.
    A JSONL bulk file is streamed, so `max_bytes` does not limit it; each line is limited
    (before it is parsed) instead.
    """
    name = str(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = " ".join(SUPPORTED_SUFFIXES)
        reason = f"unsupported file type '{suffix or path.name}' (supported: {supported})"
        yield name, LoadError(name, reason)
        return
    try:
        info = path.stat()
        not_regular = _not_regular(info.st_mode)
        if not_regular:
            yield name, LoadError(name, f"cannot read file ({not_regular})")
            return
        if suffix == ".jsonl":  # bulk import: streamed, so only each line is limited
            yield from _guarded(name, _load_jsonl(path, max_bytes, max_chars))
            return
        if info.st_size > max_bytes:
            reason = f"file too large ({info.st_size:,} bytes; the limit is {max_bytes:,})"
            yield name, LoadError(name, reason)
            return
        with path.open("rb") as f:
            # One byte past the limit: a file that grew since stat() is still caught.
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            yield name, LoadError(name, f"file too large (over the limit of {max_bytes:,} bytes)")
            return
    except OSError as e:
        yield name, LoadError(name, f"cannot read file ({e.strerror or e})")
        return
    try:
        if not data.strip():
            raise _Skip("empty file: no text")
        if suffix == ".pdf":
            article = _from_pdf(path, data, max_pdf_pages, pdf_seconds)
        else:
            article = _LOADERS[suffix](path, data)
        if not article.text.strip():  # e.g. nothing but control characters
            raise _Skip("no article text found (only spaces or control characters?)")
        if max_chars is not None and len(article.text) > max_chars:
            raise _Skip(
                f"article too long ({len(article.text):,} characters; the limit is {max_chars:,})"
            )
        yield name, article
    except _Skip as e:
        yield name, LoadError(name, str(e))
    except Exception as e:  # a parser crashing on hostile input must not end the batch
        yield name, LoadError(name, f"could not be read ({type(e).__name__}: {e})")


def _guarded(name: str, loaded: Iterator[Loaded]) -> Iterator[Loaded]:
    """The articles of a stream; a failure part-way becomes one error, after those already read."""
    try:
        yield from loaded
    except _Skip as e:
        yield name, LoadError(name, str(e))
    except OSError as e:
        yield name, LoadError(name, f"cannot read file ({e.strerror or e})")
    except Exception as e:  # hostile input must not end the batch
        yield name, LoadError(name, f"could not be read ({type(e).__name__}: {e})")


@dataclass(frozen=True)
class Skipped(LoadError):
    """A file in a folder that is left out on purpose (another type, a link leading out)."""


def find_files(paths: list[Path]) -> Iterator[Path | LoadError]:
    """Every supported file under the given paths (folders recursively), in a stable order.

    A path named is read even if it is a link; inside a folder, links that lead out of it are
    not followed, and files of other types are skipped: both are reported as `Skipped`.
    """
    for path in paths:
        if path.is_dir():
            yield from sorted(
                _walk(path), key=lambda f: Path(f.name) if isinstance(f, LoadError) else f
            )
        elif path.exists():
            yield path
        elif path.is_symlink():
            yield LoadError(str(path), "a link to nothing (its target is missing or links back)")
        else:
            yield LoadError(str(path), "no such file or folder")


def _walk(folder: Path) -> Iterator[Path | LoadError]:
    """The files under a folder and what is skipped there; hidden files and folders are left out."""
    root = folder.resolve()
    unreadable: list[OSError] = []
    # Links to folders are listed in `folders`, not entered.
    for here, folders, files in os.walk(folder, onerror=unreadable.append):
        base = Path(here)
        folders[:] = [d for d in folders if not d.startswith(".")]
        for name in folders:
            link = base / name
            if link.is_symlink() and not _inside(link, root):
                yield Skipped(str(link), "a link to a folder outside this folder; not followed")
            # A link to a folder inside it is not entered either: its files are read where they are.
        for name in files:
            if not name.startswith("."):
                yield _found(base / name, root)
    for e in unreadable:  # a subfolder that cannot be listed: its files would be missed
        yield LoadError(str(e.filename or folder), f"cannot read folder ({e.strerror or e})")


def _inside(link: Path, root: Path) -> bool:
    try:
        return link.resolve(strict=True).is_relative_to(root)
    except (OSError, RuntimeError):  # missing or looping: it leads nowhere, so not out
        return True


def _found(path: Path, root: Path) -> Path | LoadError:
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return Skipped(str(path), "a link to nothing (its target is missing or links back)")
        if not target.is_relative_to(root):
            return Skipped(str(path), "a link to a file outside this folder; not followed")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        return Skipped(str(path), f"unsupported file type '{suffix or path.name}'")
    try:
        not_regular = _not_regular(path.stat().st_mode)
    except OSError as e:
        return LoadError(str(path), f"cannot read file ({e.strerror or e})")
    return Skipped(str(path), not_regular) if not_regular else path


def article_from_text(text: str, title: str | None = None, url: str | None = None) -> Article:
    """An article from pasted text (the UI's paste box)."""
    body = clean_text(text)
    if not body:
        raise ValueError("the pasted text is empty")
    if _SURROGATE.search(body):
        raise ValueError("the pasted text has an invalid character (a lone surrogate)")
    return Article(
        id=text_id(body),
        title=clean_title(title or "") or _title_from_text(body),
        text=body,
        url=_SURROGATE.sub("\ufffd", url) if url else None,
        origin=_SURROGATE.sub("\ufffd", url) if url else None,
    )
