"""Articles: loading files of every supported format, cleaning text, extracting metadata."""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from assistant.dates import published_day

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".jsonl")
TITLE_MAX_CHARS = 200


@dataclass(frozen=True)
class Article:
    """An article with its canonical text; citation offsets refer to `text`."""

    id: str
    title: str
    text: str
    url: str | None = None
    source: str | None = None
    author: str | None = None
    published: str | None = None
    origin: str | None = None  # the file path or URL a newer version replaces by

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
# Case-sensitive and at a word start, so "Consumer credit: what…" keeps its words.
_CREDIT = re.compile(
    r"(?:(?<=[^\w\s])|(?<=\s)|(?<=[a-z]))(?:(?:Photo|Image)\s+[Cc]redit|Credit|Photograph|Photo)"
    r"\s*(?:…|\.\.\.|:)\s*\S.*$"
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


def _from_pdf(path: Path, data: bytes) -> Article:
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
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
    except _Skip:
        raise
    except DependencyError as e:  # AES encryption without the optional crypto package
        raise _Skip("encrypted PDF (needs a password); skipped") from e
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as e:
        raise _Skip(f"not a readable PDF ({e})") from e
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
    # A crawler's metadata date wins when it is a date: in the benchmark corpus `published` is
    # a date read from the text, and that is sometimes an event's ("July 4, 2026" in 2025).
    meta = record.get("published_meta")
    published = meta if published_day(str(meta) if meta else None) else fields["published"]
    # The text is stored exactly as given, so that offsets from elsewhere stay valid.
    return Article(
        id=fields["id"] or text_id(text),
        title=clean_title(fields["title"] or "") or _title_from_text(text),
        text=text,
        url=fields["url"],
        source=fields["source"],
        author=fields["author"],
        published=_SURROGATE.sub("\ufffd", str(published)) if published else None,
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


def load_file(path: Path, max_bytes: int, max_chars: int | None = None) -> Iterator[Loaded]:
    """Articles from one file (many for .jsonl), or an error naming the file and reason.

    The size is checked before anything is read or parsed; `max_chars` limits each article.
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


def find_files(paths: list[Path]) -> Iterator[Path | LoadError]:
    """Every supported file under the given paths (folders recursively), in a stable order."""
    for path in paths:
        if path.is_dir():
            for found in sorted(p for p in path.rglob("*") if p.is_file()):
                hidden = any(part.startswith(".") for part in found.relative_to(path).parts)
                if found.suffix.lower() in SUPPORTED_SUFFIXES and not hidden:
                    yield found
        elif path.exists():
            yield path
        elif path.is_symlink():
            yield LoadError(str(path), "a link to nothing (its target is missing or links back)")
        else:
            yield LoadError(str(path), "no such file or folder")


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
