"""A conversation with the assistant as Markdown: the chat's answers and the downloadable record.

No UI library here: the chat window renders these strings, the tests read them.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote, unquote

from assistant.answer import (
    ABSTAIN_TEXT,
    NO_ARTICLES_TEXT,
    Answer,
    Citation,
    answer_inside,
    is_quotation,
)
from assistant.articles import one_line, safe_url, source_and_date
from assistant.retrieval import Passage

CITE_PREFIX = "#cite-"

# Characters that can be Markdown syntax inside a line (`_inline_escape` looks at their neighbours).
_INLINE = re.compile(r"[\\`*_~\[\]<&]")
_ENTITY = re.compile(r"#|[A-Za-z0-9]+;")
_ASCII_PUNCTUATION = frozenset(string.punctuation)
# What makes a line a heading, quote, list item, setext underline, rule or table delimiter row.
_LINE_START = re.compile(
    r"^(?:#{1,6}(?=[ \t]|$)|>|[-+*](?=[ \t]|$)|(?P<number>\d{1,9})[.)](?=[ \t]|$)"
    r"|=+[ \t]*$|-+[ \t]*$|_[ \t]*_[ \t]*_[_ \t]*$"
    r"|\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$)",
    re.MULTILINE,
)
_LEADING_SPACE = re.compile(r"^[ \t]+", re.MULTILINE)
# What a GFM renderer (the chat's) would turn into a link on its own: `https://…`, `www.…` and
# e-mail addresses. A backslash before the `:`, the `.` or the `@` keeps them text.
_AUTOLINK = re.compile(r"(?<=[a-z])(:)(?=//)|(?<=\bwww)(\.)|(@)", re.IGNORECASE)
# Characters Markdown could read as syntax, as HTML entities: in an HTML block Markdown is not
# read anyway, but if the block ever ended early, what follows would still be text.
_HTML_MARKDOWN = {c: f"&#{ord(c)};" for c in "[]()!*_`~\\$|:@"}
_WWW_DOT = re.compile(r"(?<=\bwww)\.", re.IGNORECASE)


@dataclass(frozen=True)
class Turn:
    """One question and the answer it got."""

    question: str
    answer: Answer


@dataclass(frozen=True)
class CiteRef:
    """What a citation link points at: a span of one article (start == end: no highlight).

    `n` is the citation number shown in the answer; 0 for a passage that was not quoted.
    """

    n: int
    article_id: str
    start: int
    end: int
    answer: tuple[int, int] | None = None  # the answer's words in the span, shown bold


def _inline_escape(m: re.Match[str]) -> str:
    """The character with a backslash if, between these neighbours, Markdown would read it as
    syntax (the start of the text or its end counts as either, as something may be put there)."""
    c, i, text = m.group(), m.start(), m.string
    before = text[i - 1] if i else ""
    after = text[i + 1] if i + 1 < len(text) else ""
    if c == "\\":
        needed = after in ("", "\n") or after in _ASCII_PUNCTUATION
    elif c in "*~":  # emphasis, strikethrough: not when spaces stand on both sides
        needed = not (before.isspace() and after.isspace())
    elif c == "_":  # nor inside a word (snake_case)
        both_word = before.isalnum() and after.isalnum()
        needed = not (both_word or (before.isspace() and after.isspace()))
    elif c == "[":  # brackets make a link only with `](`, `][` or `]:` (a link definition)
        needed = False
    elif c == "]":
        needed = after in ("", "(", "[", ":")
    elif c == "<":  # an HTML tag, comment or autolink
        needed = after == "" or after in "/!?" or (after.isascii() and after.isalpha())
    elif c == "&":  # an entity such as &amp; or &#38;
        needed = _ENTITY.match(text, i + 1) is not None
    else:  # a backtick: a code span
        needed = True
    return "\\" + c if needed else c


def md_escape(text: str) -> str:
    """Text that renders as itself in Markdown (no emphasis, links, HTML, lists, tables), with a
    backslash only where Markdown would otherwise read syntax, so a downloaded record reads
    cleanly. Not for link text, where a bracket would end the link: `html_inline` is for that."""
    text = _LEADING_SPACE.sub("", text)  # four leading spaces would make a code block
    text = _INLINE.sub(_inline_escape, text)
    text = _AUTOLINK.sub(lambda m: "\\" + m.group(0), text)

    def marker(m: re.Match[str]) -> str:
        s = m.group()
        if m.group("number"):
            return s[:-1] + "\\" + s[-1]
        return "\\" + s

    return _LINE_START.sub(marker, text)


def md_inline(text: str) -> str:
    """Article metadata (a title, an outlet) in Markdown: one line, rendered as itself."""
    return md_escape(one_line(text))


def html_inline(text: str) -> str:
    """Article metadata for the chat: one line, HTML-escaped, Markdown characters as entities.

    Valid as HTML and as Markdown text alike, and safer than backslashes in a link's text,
    where the chat's renderer reads `\\[…\\](…)` as a second link.
    """
    escaped = "".join(_HTML_MARKDOWN.get(c, c) for c in escape(one_line(text)))
    return _WWW_DOT.sub("&#46;", escaped)


def cite_href(
    n: int, article_id: str, start: int, end: int, answer: tuple[int, int] | None = None
) -> str:
    """The link target of a citation: `#cite-<n>-<start>-<end>-<article id>`, the end followed
    by `.<first>.<last>` when the answer's words are marked."""
    marked = f".{answer[0]}.{answer[1]}" if answer else ""
    return f"{CITE_PREFIX}{n}-{start}-{end}{marked}-{quote(article_id, safe='')}"


def parse_cite(ref: str) -> CiteRef | None:
    """The CiteRef in a citation link target (with or without `#cite-`), or None if malformed."""
    if ref.startswith(CITE_PREFIX):
        ref = ref[len(CITE_PREFIX) :]
    parts = ref.split("-", 3)
    if len(parts) != 4 or not parts[3]:
        return None
    numbers = [*parts[:2], *parts[2].split(".")]
    if len(numbers) not in (3, 5) or not all(p.isdigit() for p in numbers):
        return None
    n, start, end = (int(p) for p in numbers[:3])
    answer = (int(numbers[3]), int(numbers[4])) if len(numbers) == 5 else None
    if end < start or (answer is not None and not answer_inside(answer, start, end)):
        return None
    return CiteRef(n, unquote(parts[3]), start, end, answer)


def closest_passages(passages: Sequence[Passage], n: int = 3) -> list[Passage]:
    """The best passage of each of the first `n` articles, in rank order."""
    best: dict[str, Passage] = {}
    for p in passages:
        best.setdefault(p.article_id, p)
        if len(best) == n:
            break
    return list(best.values())


def period_note(answer: Answer) -> str | None:
    """`Articles from 1–31 March 2024.` when the answer was searched in a period."""
    period = answer.date_range
    if period is None:
        return None
    text = "A" + period.articles()[1:]
    return f"{text} first (the period the question names)." if period.soft else f"{text}."


# --- the chat ----------------------------------------------------------------------------------


# Where the answer's words begin and end while the quote is escaped: characters no article keeps
# (a quote that has them anyway is shown without bold).
_OPEN, _CLOSE = "\ue000", "\ue001"


def marked_quote(c: Citation) -> str:
    """The quote as Markdown, the words the reader points at as the answer in bold."""
    if c.answer is None or _OPEN in c.quote or _CLOSE in c.quote:
        return md_escape(c.quote)
    a, b = c.answer[0] - c.start, c.answer[1] - c.start
    marked = c.quote[:a] + _OPEN + c.quote[a:b] + _CLOSE + c.quote[b:]
    return md_escape(marked).replace(_OPEN, "<strong>").replace(_CLOSE, "</strong>")


def quote_markdown(c: Citation, link: bool = True) -> str:
    """A quote as a Markdown blockquote followed by its `[n]` citation; in the chat (`link`)
    the citation is a link and the answer's words are bold, in the record the quote is plain."""
    body = (marked_quote(c) if link else md_escape(c.quote)).replace("\n", "\n> ")
    if not is_quotation(c.quote):
        body = f"“{body}”"
    href = cite_href(c.n, c.article_id, c.start, c.end, c.answer)
    mark = f"[\\[{c.n}\\]]({href})" if link else f"[{c.n}]"
    return f"> {body} {mark}"


def written_markdown(answer: Answer, link: bool = True) -> str:
    """A written answer's supported sentences, each with `[n]` links to the quotes it cites."""
    sentences = []
    for st in answer.statements:
        if not st.supported:
            continue
        marks = []
        for i in st.citations:
            c = answer.citations[i]
            href = cite_href(c.n, c.article_id, c.start, c.end, c.answer)
            marks.append(f"[\\[{c.n}\\]]({href})" if link else f"[{c.n}]")
        sentences.append(f"{md_escape(st.text)} {''.join(dict.fromkeys(marks))}")
    return " ".join(sentences)


def source_html(c: Citation) -> str:
    """`[n] Title — Outlet, date · original ↗`; the title opens the article in the reader."""
    href = escape(cite_href(c.n, c.article_id, c.start, c.end, c.answer))
    line = f'[{c.n}] <a href="{href}">{html_inline(c.title)}</a>'
    details = source_and_date(c.source, c.published)
    if details:
        line += f' — <span class="details">{html_inline(details)}</span>'
    url = safe_url(c.url)
    if url:
        link = f'<a href="{escape(url)}" target="_blank" rel="noopener noreferrer">original ↗</a>'
        line += f" · {link}"
    if c.also_in:
        outlets = []
        for o in c.also_in:
            label = html_inline(source_and_date(o.source, o.published) or o.title)
            o_url = safe_url(o.url)
            outlets.append(
                f'<a href="{escape(o_url)}" target="_blank" rel="noopener noreferrer">{label}</a>'
                if o_url
                else label
            )
        line += f' <span class="also-in">(same story also in: {"; ".join(outlets)})</span>'
    return f'<div class="source">{line}</div>'


def sources_html(sources: Sequence[Citation]) -> str:
    """The sources list, as one HTML block (no blank line inside, so Markdown leaves it be)."""
    rows = "".join(source_html(s) for s in sources)
    return f'<div class="sources"><div class="sources-head">Sources</div>{rows}</div>'


def searched_for_html(query: str) -> str:
    """The query actually searched, with a link that puts it in the question box to edit."""
    return (
        f'<div class="searched-for">Searched for: <span class="query">{html_inline(query)}</span>'
        ' · <a href="#edit-query" title="Put this query in the question box">edit</a></div>'
    )


def answer_blocks(answer: Answer) -> list[str]:
    """The answer as Markdown blocks, in the order they stream into the chat."""
    if answer.text == NO_ARTICLES_TEXT:
        return [f"**{NO_ARTICLES_TEXT}** Add articles first (the *Add articles* tab)."]
    if answer.abstained:
        blocks = [f"**{ABSTAIN_TEXT}**"]
        closest = closest_passages(answer.passages)
        if closest:
            lines = ["The closest articles (click one to read the nearest passage):"]
            for p in closest:
                link = f"[{html_inline(p.title)}]({cite_href(0, p.article_id, p.start, p.end)})"
                details = source_and_date(p.source, p.published)
                lines.append(f"- {link}" + (f" — {html_inline(details)}" if details else ""))
            blocks.append("\n".join(lines))
        elif answer.date_range and answer.text != ABSTAIN_TEXT:  # its text says why: no articles
            blocks.append(md_escape(answer.text))
        else:
            blocks.append("No passage matched at all: is the collection empty? Add articles first.")
    else:
        blocks = [written_markdown(answer)] if answer.mode == "llm" else []
        blocks += [quote_markdown(c) for c in answer.citations]
        blocks.append(sources_html(answer.sources))
    if answer.notice:
        blocks.append(f"*{md_escape(answer.notice)}*")
    note = period_note(answer)
    if note:
        blocks.append(f"*{md_escape(note)}*")
    blocks.append(searched_for_html(answer.searched_for))
    return blocks


def answer_stream(answer: Answer) -> Iterator[str]:
    """The chat message growing block by block: each quote, then the sources, then the query."""
    blocks = answer_blocks(answer)
    for i in range(1, len(blocks) + 1):
        yield "\n\n".join(blocks[:i])


def answer_markdown(answer: Answer) -> str:
    return "\n\n".join(answer_blocks(answer))


def message_text(content: object) -> str:
    """The text of a chat message: Gradio 6 gives a string or a list of `{"type": "text"}` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, list | tuple):
        return "".join(message_text(part) for part in content)
    return ""


# --- the downloadable record -------------------------------------------------------------------


def _offsets(answer: Answer, n: int) -> str:
    spans = [f"{c.start}–{c.end}" for c in answer.citations if c.n == n]
    return "characters " + ", ".join(spans)


def turn_markdown(turn: Turn) -> str:
    """One question and its answer for the downloaded record (citations as plain `[n]`)."""
    a = turn.answer
    lines = [f"## {md_escape(' '.join(turn.question.split()))}", ""]
    if a.abstained:
        lines.append(f"*{NO_ARTICLES_TEXT if a.text == NO_ARTICLES_TEXT else ABSTAIN_TEXT}*")
        closest = closest_passages(a.passages)
        if closest:
            lines += ["", "The closest articles:", ""]
            for p in closest:
                details = source_and_date(p.source, p.published)
                line = f"- {md_inline(p.title)}" + (f" — {md_inline(details)}" if details else "")
                url = safe_url(p.url)
                lines.append(line + (f" <{url}>" if url else ""))
    else:
        if a.mode == "llm":
            lines += [written_markdown(a, link=False), ""]
        for c in a.citations:
            lines += [quote_markdown(c, link=False), ""]
        lines += ["Sources:", ""]
        for s in a.sources:
            details = source_and_date(s.source, s.published)
            line = f"- [{s.n}] {md_inline(s.title)}"
            line += f" — {md_inline(details)}" if details else ""
            url = safe_url(s.url)
            line += f" <{url}>" if url else ""
            line += f" (article {md_inline(s.article_id)}, {_offsets(a, s.n)})"
            lines.append(line)
    if a.notice:
        lines += ["", f"*{md_escape(a.notice)}*"]
    note = period_note(a)
    if note:
        lines += ["", f"*{md_escape(note)}*"]
    lines += ["", f"*Searched for: {md_inline(a.searched_for)}*"]
    return "\n".join(lines)


def conversation_markdown(turns: Sequence[Turn], now: datetime | None = None) -> str:
    """The whole conversation as a Markdown document, quotes and sources intact."""
    return records_markdown([turn_markdown(t) for t in turns], now)


def records_markdown(records: Sequence[str], now: datetime | None = None) -> str:
    """The downloadable document from each turn's `turn_markdown`."""
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    head = [
        "# Conversation with the news assistant",
        "",
        f"Exported {when}. Every quote is the article's own text; [n] refers to the sources",
        "listed under each answer, with the character offsets of each quote in the article.",
    ]
    return "\n\n".join(["\n".join(head), *records]) + "\n"


def export_name(now: datetime | None = None) -> str:
    return f"conversation-{(now or datetime.now(UTC)).strftime('%Y-%m-%d-%H%M%S')}.md"
