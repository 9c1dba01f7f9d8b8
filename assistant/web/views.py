"""HTML views for the web UI: an article with a highlighted span, passages, the corpus, results.

Every piece of article or user text goes through `html.escape`: an article is shown as text,
never interpreted as HTML. Links are only ever plain http(s) URLs (`safe_url`).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

from assistant.answer import answer_inside
from assistant.articles import Article, date_of, source_and_date
from assistant.assistant import IngestReport
from assistant.conversation import CiteRef, cite_href, safe_url
from assistant.retrieval import Passage
from assistant.store import ArticleInfo

READER_PLACEHOLDER = (
    '<div class="reader-empty"><p><strong>Reader</strong></p>'
    '<p>Click a citation such as <span class="cite-sample">[1]</span> in an answer, a passage in '
    "Search or a title in Corpus: the whole article opens here with the quoted words "
    "highlighted.</p></div>"
)


def plural(n: int, word: str) -> str:
    """`1 article`, `2 articles`, `1,234 articles`."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def highlight(text: str, start: int, end: int, answer: tuple[int, int] | None = None) -> str:
    """The text, escaped, with `text[start:end]` in a `<mark>` (no mark for an empty span) and
    the answer's words inside it in bold."""
    if not (0 <= start < end <= len(text)):
        return escape(text)
    inside = escape(text[start:end])
    if answer is not None and answer_inside(answer, start, end):
        a, b = answer
        inside = (
            escape(text[start:a])
            + f'<strong class="answer">{escape(text[a:b])}</strong>'
            + escape(text[b:end])
        )
    return escape(text[:start]) + f'<mark class="cited">{inside}</mark>' + escape(text[end:])


def _link(url: str | None, label: str | None = None) -> str:
    safe = safe_url(url)
    if not safe:
        return ""
    shown = label or urlsplit(safe).netloc
    return (
        f'<a href="{escape(safe)}" target="_blank" rel="noopener noreferrer">{escape(shown)} ↗</a>'
    )


def _meta(*items: str) -> str:
    return " · ".join(i for i in items if i)


def article_html(article: Article, ref: CiteRef, nonce: int = 0) -> str:
    """The whole article for the reader panel: headline, outlet, date, link, highlighted span."""
    spans_ok = 0 <= ref.start < ref.end <= len(article.text)
    if spans_ok and ref.n:
        label = f"Quoted as [{ref.n}] · the quote is highlighted" + (
            ", the answer's words in bold" if ref.answer else ""
        )
    elif spans_ok:
        label = "The retrieved passage is highlighted"
    elif ref.start != ref.end:
        label = "The cited span is no longer in this article (was it replaced?)"
    else:
        label = "Article"
    body = highlight(article.text, ref.start, ref.end, ref.answer)
    meta = _meta(
        escape(article.source or ""),
        escape(article.author or ""),
        escape(date_of(article.published)),
        _link(article.url),
    )
    return (
        f'<div class="reader" data-nonce="{nonce}">'
        '<a class="back-to-chat" href="#back-to-chat">↑ Back to the chat</a>'
        f'<div class="reader-label">{label}</div>'
        f'<h2 class="reader-title">{escape(article.title)}</h2>'
        + f'<div class="reader-meta">{meta or "No outlet or date recorded"}</div>'
        + f'<div class="reader-text">{body}</div>'
        f'<div class="reader-id">id {escape(article.id)}'
        + (f" · characters {ref.start}–{ref.end}" if spans_ok else "")
        + "</div></div>"
    )


def missing_html(ref: CiteRef | None) -> str:
    what = (
        "This link is not a citation."
        if ref is None
        else "This article is not in the collection any more (it was removed)."
    )
    return f'<div class="reader"><div class="reader-empty"><p>{escape(what)}</p></div></div>'


def _scores(p: Passage) -> str:
    parts = [f"fused {p.score:.4f}"]
    parts.append(f"meaning {p.dense:.3f}" if p.dense is not None else "meaning —")
    parts.append(f"keywords {p.keyword:.2f}" if p.keyword is not None else "keywords —")
    return " · ".join(parts)


def passages_html(query: str, passages: Sequence[Passage]) -> str:
    """The ranked passages for a query with their scores, each opening its article."""
    if not query.strip():
        return '<p class="muted">Type a query to see the passages the assistant would read.</p>'
    if not passages:
        return f'<p class="muted">No passages found for “{escape(query)}”. Is the corpus empty?</p>'
    items = []
    for rank, p in enumerate(passages, 1):
        href = cite_href(0, p.article_id, p.start, p.end)
        meta = escape(source_and_date(p.source, p.published))
        items.append(
            '<li class="passage">'
            f'<div class="passage-head"><span class="rank">#{rank}</span> '
            f'<a class="passage-title" href="{escape(href)}">{escape(p.title)}</a>'
            + (f' <span class="muted">{meta}</span>' if meta else "")
            + f'</div><div class="passage-scores">{_scores(p)}</div>'
            f'<div class="passage-text">{escape(p.text)}</div></li>'
        )
    return (
        f'<p class="muted">{plural(len(passages), "passage")} for “{escape(query)}”, best first. '
        "Fused = reciprocal-rank fusion of meaning (cosine similarity) and keywords (BM25); "
        "click a title to read the passage in its article.</p>"
        f'<ol class="passages">{"".join(items)}</ol>'
    )


# Longer tables are slow to send and to draw (5,273 rows: 1.2 MB of HTML and seconds in the
# browser); the Find box reaches the rest.
CORPUS_ROWS = 200


def find_articles(articles: Sequence[ArticleInfo], words: str) -> list[ArticleInfo]:
    """The articles whose title, outlet, date or id contain every word typed (any case), the
    most recently added first."""
    terms = words.casefold().split()
    found = []
    for a in reversed(articles):
        seen = " ".join(x for x in (a.title, a.source, a.published, a.id) if x).casefold()
        if all(t in seen for t in terms):
            found.append(a)
    return found


def corpus_html(articles: Sequence[ArticleInfo], total: int | None = None, words: str = "") -> str:
    """The articles as a table: title (opens the reader), outlet, date, chunks, id.

    `articles` are those found for `words` among `total`; the first `CORPUS_ROWS` are shown.
    """
    total = len(articles) if total is None else total
    if not total:
        return '<p class="muted">No articles yet. Add some in the “Add articles” tab.</p>'
    if not articles:
        return f'<p class="muted">No article matches “{escape(words.strip())}”.</p>'
    note = ""
    if len(articles) > CORPUS_ROWS:
        of = f"{len(articles):,} found" if words.strip() else f"{total:,}"
        note = (
            f'<p class="muted corpus-note">The {CORPUS_ROWS} most recently added of {of}: type '
            "in Find to narrow them.</p>"
        )
    rows = []
    for a in articles[:CORPUS_ROWS]:
        href = cite_href(0, a.id, 0, 0)
        rows.append(
            "<tr>"
            f'<td><a href="{escape(href)}">{escape(a.title)}</a></td>'
            f"<td>{escape(a.source or '')}</td>"
            f'<td class="date">{escape(date_of(a.published))}</td>'
            f'<td class="num">{a.chunks}</td>'
            f'<td class="id">{escape(a.id)}</td>'
            "</tr>"
        )
    return note + (
        '<table class="corpus"><thead><tr><th>Title</th><th>Outlet</th><th>Date</th>'
        '<th class="num">Chunks</th><th class="id">Id</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def corpus_choices(articles: Sequence[ArticleInfo]) -> list[tuple[str, str]]:
    """(label, id) pairs for choosing an article to remove."""
    return [
        (f"{a.title} — {a.source or 'no outlet'} ({a.id})", a.id) for a in articles[:CORPUS_ROWS]
    ]


def ingest_html(report: IngestReport) -> str:
    """One row per file (or JSONL line): name, status, title, reason; then the counts."""
    if not report.results:
        return '<p class="muted">Nothing to add.</p>'
    rows = []
    for r in report.results:
        rows.append(
            f'<tr class="{escape(r.status)}">'
            f"<td>{escape(Path(r.name).name or r.name)}</td>"
            f'<td><span class="status status-{escape(r.status)}">{escape(r.status)}</span></td>'
            f"<td>{escape(r.title or '')}</td>"
            f"<td>{escape(r.reason or '')}</td>"
            "</tr>"
        )
    return (
        f'<p class="ingest-summary">{escape(report.summary())}</p>'
        '<table class="ingest"><thead><tr><th>File</th><th>Result</th><th>Title</th>'
        f"<th>Reason</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
