"""The UI's pure parts: Markdown of answers and conversations, escaping, highlighting, uploads."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from assistant.answer import ABSTAIN_TEXT, NO_ARTICLES_TEXT, Answer, Citation, render
from assistant.articles import Article
from assistant.assistant import Assistant, IngestReport, IngestResult
from assistant.conversation import (
    CiteRef,
    Turn,
    answer_blocks,
    answer_markdown,
    answer_stream,
    cite_href,
    conversation_markdown,
    md_escape,
    message_text,
    parse_cite,
    quote_markdown,
    safe_url,
)
from assistant.embeddings import ModelEmbedder
from assistant.keywords import KeywordIndex
from assistant.retrieval import Passage
from assistant.settings import Settings
from assistant.store import ArticleInfo
from assistant.uploads import add_with_progress, human_size, stage_uploads
from assistant.web.views import (
    CORPUS_ROWS,
    article_html,
    corpus_choices,
    corpus_html,
    find_articles,
    highlight,
    ingest_html,
    passages_html,
)

MD = MarkdownIt("commonmark")
TAG = re.compile(r"<[^>]*>")
HOSTILE = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    "[click](javascript:alert(1))",
    "![x](http://example.com/x.png)",
    "# not a heading",
    "1. not a list\n2) nor this\n- nor this\n+ nor this",
    "    not code",
    "*not emphasis* and _not_ either, **nor** this",
    "`not code` ~~not struck~~ | not | a | table |",
    "AT&T &amp; $1 million and $3 billion",
    "a backslash \\ and \\*",
    "> not a quote\n---\n===",
    "<http://example.com> autolink",
]

TEXT = "First sentence here. The quoted <b>sentence</b> & more. Last one."
START = TEXT.index("The quoted")
END = TEXT.index(" Last")


def rendered_text(markdown: str) -> str:
    """What a reader sees when the Markdown is rendered: tags dropped, entities decoded."""
    return " ".join(html.unescape(TAG.sub(" ", MD.render(markdown))).split())


def citation(n: int = 1, quote: str = TEXT[START:END], **kw: object) -> Citation:
    fields: dict[str, object] = dict(
        n=n,
        article_id="a-1/x",
        title="A <b>title</b>",
        source="The Herald",
        url="https://news.example.org/story?id=1",
        published="2025-05-18T21:30:00Z",
        quote=quote,
        start=START,
        end=END,
    )
    fields.update(kw)
    return Citation(**fields)  # type: ignore[arg-type]


def passage(article_id: str, title: str, start: int = 0, end: int = 10) -> Passage:
    return Passage(
        article_id,
        f"{article_id}:0",
        TEXT[start:end],
        start,
        end,
        0.03,
        0.5,
        2.0,
        title,
        "Outlet",
        None,
        "2025-01-02",
    )


def answer(citations: tuple[Citation, ...] = (citation(),), **kw: object) -> Answer:
    fields: dict[str, object] = dict(
        question="What was quoted?",
        searched_for="What was quoted? (Herald)",
        text="",
        citations=citations,
        passages=(passage("a-1/x", "A <b>title</b>"),),
        abstained=False,
        confidence=0.7,
        sources=tuple({c.n: c for c in citations}.values()),
    )
    fields.update(kw)
    return Answer(**fields)  # type: ignore[arg-type]


# --- escaping ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE)
def test_md_escape_renders_hostile_text_as_itself(text: str) -> None:
    out = MD.render(md_escape(text))
    assert rendered_text(md_escape(text)) == " ".join(text.split())
    assert not re.search(r"<(script|img|a|em|strong|code|h1|ol|ul|li|pre|hr|blockquote)\b", out)


@given(st.text(alphabet=st.sampled_from(list("ab1. \n#>-+=*_`[]()<>!&;|~$\\:/\"'")), max_size=60))
def test_md_escape_property(text: str) -> None:
    assert rendered_text(md_escape(text)) == " ".join(text.split())


GFM = MarkdownIt("commonmark").enable(["table", "strikethrough"])  # as chat windows render


@given(st.text(alphabet=st.sampled_from(list("ab1. \n#>-+=*_`[]()<>!&;|~$\\:/\"'")), max_size=60))
def test_md_escape_property_with_tables_and_strikethrough(text: str) -> None:
    html_out = GFM.render(md_escape(text))
    assert " ".join(html.unescape(TAG.sub(" ", html_out)).split()) == " ".join(text.split())


def test_md_escape_leaves_plain_news_text_alone() -> None:
    plain = (
        "AT&T paid $45 for a 7-day pass [sic] | e-mail: snake_case 3 * 4 – well-known "
        "“quotes” (and brackets) 2024. 3.5 million #hashtag <3 a > b"
    )
    assert md_escape(plain) == plain
    assert md_escape("&amp; *x* _y_ [a](b) <b> `c`") == r"\&amp; \*x\* \_y\_ [a\](b) \<b> \`c\`"


@pytest.mark.parametrize(
    ("quote", "shown"),
    [
        ("He left.", "“He left.”"),
        ("“We stay,” she said.", "““We stay,” she said.”"),  # it does not end with a mark
        ("“We stay.”", "“We stay.”"),
        ('"We stay."', '"We stay."'),
        ("‘Yes.’", "‘Yes.’"),
    ],
)
def test_a_quotation_is_not_wrapped_in_a_second_pair_of_marks(quote: str, shown: str) -> None:
    c = citation(quote=quote)
    assert quote_markdown(c, link=False) == f"> {md_escape(shown)} [1]"
    assert render([c], [c]).startswith(f"{shown} [1]")


def test_safe_url_keeps_web_links_only() -> None:
    assert safe_url("https://example.org/a?b=1#c") == "https://example.org/a?b=1#c"
    assert safe_url('http://example.org/a b(c)"d') == "http://example.org/a%20b%28c%29%22d"
    for bad in (
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,x",
        "/local",
        "",
        None,
        "ftp://example.org/x",
        "https://",
    ):
        assert safe_url(bad) is None


def test_the_answers_words_are_bold_inside_the_quote_and_in_the_reader() -> None:
    a = TEXT.index("<b>sentence")
    b = a + len("<b>sentence</b>")
    c = citation(answer=(a, b))
    shown = quote_markdown(c).rsplit(" [", 1)[0]
    assert shown == "> “The quoted <strong>\\<b>sentence\\</b></strong> & more.”"
    # The quote itself is unchanged: only the bold is added, around the escaped words.
    plain = shown.replace("<strong>", "").replace("</strong>", "").replace("\\", "")
    assert plain == f"> “{c.quote}”"
    assert quote_markdown(c, link=False) == f"> {md_escape(f'“{c.quote}”')} [1]"  # the record
    href = quote_markdown(c).rsplit("(", 1)[1].rstrip(")")
    assert parse_cite(href) == CiteRef(1, "a-1/x", START, END, (a, b))
    page = article_html(Article(id="a-1/x", title="t", text=TEXT), parse_cite(href))  # type: ignore[arg-type]
    bold = re.findall(r'<strong class="answer">(.*?)</strong>', page)
    assert [html.unescape(x) for x in bold] == ["<b>sentence</b>"]
    assert "the answer's words in bold" in page
    # No bold without an answer, nor when the quote holds the characters that stand for it.
    assert "<strong>" not in quote_markdown(citation())
    odd = TEXT[START:END].replace("quoted", "quoted\ue000")
    assert "<strong>" not in quote_markdown(citation(quote=odd, answer=(a, b)))


@given(
    st.integers(0, 99),
    st.text(min_size=1, max_size=30),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.booleans(),
)
def test_cite_href_round_trips(n: int, article_id: str, a: int, b: int, marked: bool) -> None:
    start, end = sorted((a, b))
    answer = (start, end) if marked and start < end else None
    href = cite_href(n, article_id, start, end, answer)
    assert re.fullmatch(r"#cite-[A-Za-z0-9%._~-]+", href), href  # nothing to escape in an href
    assert parse_cite(href) == CiteRef(n, article_id, start, end, answer)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "#cite-",
        "#cite-1-2-3",
        "#cite-x-1-2-id",
        "#cite-1-9-2-id",
        "#cite-1-2-9.1-id",  # an answer needs both ends
        "#cite-1-2-9.1.12-id",  # outside the quote
        "#cite-1-2-9.5.5-id",  # empty
        "#cite-1-2-9.x.5-id",
    ],
)
def test_parse_cite_rejects_malformed(bad: str) -> None:
    assert parse_cite(bad) is None


# --- highlighting ------------------------------------------------------------------------------


def test_highlight_marks_exactly_the_span_and_escapes_everything() -> None:
    out = highlight(TEXT, START, END)
    assert out.count("<mark") == 1 and "<b>" not in out
    inside = re.search(r'<mark class="cited">(.*)</mark>', out, re.S)
    assert inside and html.unescape(inside.group(1)) == TEXT[START:END]
    assert html.unescape(TAG.sub("", out)) == TEXT


@given(st.text(max_size=80), st.integers(0, 90), st.integers(0, 90))
def test_highlight_property(text: str, a: int, b: int) -> None:
    start, end = sorted((a, b))
    out = highlight(text, start, end)
    assert html.unescape(TAG.sub("", out)) == text
    marked = re.findall(r'<mark class="cited">(.*?)</mark>', out, re.S)
    if 0 <= start < end <= len(text):
        assert [html.unescape(m) for m in marked] == [text[start:end]]
    else:
        assert marked == []


def test_article_html_escapes_and_links_only_web_urls() -> None:
    article = Article(
        id="x1",
        title="<img src=x onerror=alert(1)>",
        text=TEXT,
        url="javascript:alert(1)",
        source="<b>Outlet</b>",
        published="2025-05-18T21:30:00Z",
    )
    out = article_html(article, CiteRef(2, "x1", START, END))
    assert "<img" not in out and "<b>" not in out and "javascript:" not in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out and "2025-05-18" in out
    assert "Quoted as [2]" in out
    linked = article_html(
        Article(id="x1", title="t", text=TEXT, url="https://e.org/a"), CiteRef(0, "x1", 0, 0)
    )
    assert '<a href="https://e.org/a" target="_blank" rel="noopener noreferrer">' in linked
    assert "<mark" not in linked
    bare = article_html(Article(id="x1", title="t", text=TEXT), CiteRef(0, "x1", 0, 0))
    assert "No outlet or date recorded" in bare


def test_the_corpus_list_is_found_by_words_and_capped() -> None:
    n = 2 * CORPUS_ROWS + 50
    infos = [
        ArticleInfo(
            f"id{i}",
            f"Story {i}",
            None,
            "The Herald" if i % 2 else "Wire",
            None,
            f"2025-03-{i % 28 + 1:02d}",
            1,
            f"t{i:04d}",
        )
        for i in range(n)
    ]
    assert [a.id for a in find_articles(infos, "")][:2] == [f"id{n - 1}", f"id{n - 2}"]
    herald = find_articles(infos, "herald STORY")
    assert len(herald) == n // 2 and all(a.source == "The Herald" for a in herald)
    assert [a.id for a in find_articles(infos, "2025-03-05 story")] == [
        a.id for a in reversed(infos) if a.published == "2025-03-05"
    ]
    out = corpus_html(find_articles(infos, ""), n)
    assert out.count("<tr>") == CORPUS_ROWS + 1  # the header row and the capped rows
    assert f"The {CORPUS_ROWS} most recently added of {n:,}:" in out
    assert f"of {n // 2} found" in corpus_html(herald, n, "herald")
    assert "No article matches “&lt;b&gt;”" in corpus_html([], 3, "<b>")
    assert "No articles yet" in corpus_html([], 0)
    assert len(corpus_choices(herald)) == CORPUS_ROWS


def test_tables_escape_titles_and_reasons() -> None:
    info = ArticleInfo("id<1>", "<script>x</script>", None, "<i>o</i>", None, None, 3, "now")
    out = corpus_html([info])
    assert "<script>" not in out and "&lt;script&gt;" in out and "<i>" not in out
    report = IngestReport((IngestResult("/tmp/up/<x>.txt", "failed", reason="bad <b>"),))
    out = ingest_html(report)
    assert "<b>" not in out and "&lt;x&gt;.txt" in out and "status-failed" in out
    assert "0 added, 0 unchanged, 0 replaced, 1 failed" in out
    out = passages_html("<q>", [passage("p", "<t>")])
    assert "<t>" not in out and "&lt;q&gt;" in out and "fused 0.0300" in out


# --- answers in the chat -----------------------------------------------------------------------


def test_answer_streams_quote_by_quote_then_sources_then_query() -> None:
    cites = (citation(1), citation(2, article_id="b", title="Second"))
    a = answer(cites)
    steps = list(answer_stream(a))
    assert len(steps) == len(cites) + 2
    assert all(later.startswith(earlier) for earlier, later in zip(steps, steps[1:], strict=False))
    assert steps[0].count("> “") == 1 and steps[1].count("> “") == 2
    assert "Sources" in steps[2] and "searched-for" not in steps[2]
    assert steps[-1] == answer_markdown(a)
    assert f"[\\[1\\]]({cite_href(1, 'a-1/x', START, END)})" in steps[0]


def test_answer_markdown_shows_quotes_as_text_with_sources_and_query() -> None:
    md = answer_markdown(answer())
    text = rendered_text(md)
    assert "“The quoted <b>sentence</b> & more.” [1]" in text
    assert "A <b>title</b> — The Herald, 2025-05-18" in text
    assert "Searched for: What was quoted? (Herald)" in text
    assert '<a href="https://news.example.org/story?id=1" target="_blank"' in md
    assert "<b>" not in MD.render(md).replace("&lt;b&gt;", "")


def test_abstention_is_plain_and_offers_the_closest_articles() -> None:
    closest = (passage("a", "First"), passage("a", "First", 10, 20), passage("b", "Second"))
    md = answer_markdown(answer((), abstained=True, sources=(), passages=closest))
    blocks = answer_blocks(answer((), abstained=True, sources=(), passages=closest))
    assert blocks[0] == f"**{ABSTAIN_TEXT}**"
    assert md.count(cite_href(0, "a", 0, 10)) == 1 and cite_href(0, "b", 0, 10) in md
    assert cite_href(0, "a", 10, 20) not in md  # one passage per article: the best


def test_abstention_says_which_names_the_closest_passages_never_mention() -> None:
    why = "None of the closest passages mentions “<b>Wembley</b>” or “2031”."
    declined = answer((), abstained=True, sources=(), notice=why)
    assert "None of the closest passages mentions “<b>Wembley</b>” or “2031”." in rendered_text(
        answer_markdown(declined)
    )
    assert "<b>" not in MD.render(answer_markdown(declined)).replace("&lt;b&gt;", "")
    record = conversation_markdown([Turn("Who won at Wembley in 2031?", declined)])
    assert f"*{md_escape(why)}*" in record


def test_abstention_with_nothing_found_says_the_collection_may_be_empty() -> None:
    md = answer_markdown(answer((), abstained=True, sources=(), passages=()))
    assert "is the collection empty?" in md


def test_an_empty_collection_is_named_as_the_reason(assistant: Assistant) -> None:
    answer = assistant.ask("Who won the Northern Cup final?")  # nothing added yet
    assert answer.abstained and answer.text == NO_ARTICLES_TEXT
    blocks = answer_blocks(answer)
    assert blocks[0].startswith(f"**{NO_ARTICLES_TEXT}**") and "*Add articles* tab" in blocks[0]
    assert ABSTAIN_TEXT not in "".join(blocks)
    record = conversation_markdown([Turn("Who won?", answer)])
    assert NO_ARTICLES_TEXT in record and ABSTAIN_TEXT not in record


def test_message_text_reads_both_content_shapes() -> None:
    assert message_text("hi") == "hi"
    assert message_text([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == "ab"
    assert message_text(None) == ""


# --- the downloaded conversation ---------------------------------------------------------------


def test_conversation_markdown_keeps_quotes_citations_and_sources() -> None:
    first = Turn("What was <i>quoted</i>?", answer())
    second = Turn("And then?", answer((), abstained=True, sources=()))
    md = conversation_markdown([first, second])
    text = rendered_text(md)
    assert md.startswith("# Conversation with the news assistant")
    assert "## What was \\<i>quoted\\</i>?" in md
    assert "“The quoted <b>sentence</b> & more.” [1]" in text
    assert "[1] A <b>title</b> — The Herald, 2025-05-18 https://news.example.org/story?id=1" in text
    assert f"characters {START}–{END}" in md and "(article a\\-1/x" not in md
    assert ABSTAIN_TEXT in text and "Searched for: What was quoted? (Herald)" in text
    assert "<i>" not in MD.render(md).replace("&lt;i&gt;", "")


def test_conversation_of_a_real_answer(loaded: Assistant) -> None:
    q1 = "What did Putin ask Musk not to do?"
    a1 = loaded.ask(q1)
    a2 = loaded.ask("Has he been in regular contact with him?", history=[q1])
    md = conversation_markdown([Turn(q1, a1), Turn("Has he been in regular contact with him?", a2)])
    text = rendered_text(md)
    for a in (a1, a2):
        for c in a.citations:
            assert f"“{' '.join(c.quote.split())}” [{c.n}]" in text
            assert f"{c.start}–{c.end}" in md
        assert f"Searched for: {a.searched_for}" in text
    assert a2.searched_for != a2.question


# --- uploads -----------------------------------------------------------------------------------


def test_stage_uploads_checks_size_and_type_and_keeps_names(tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    (incoming / "a").mkdir(parents=True)
    (incoming / "b").mkdir()
    small = incoming / "a" / "story.txt"
    small.write_text("Title\nBody.")
    same_name = incoming / "b" / "story.txt"
    same_name.write_text("Other\nBody.")
    big = incoming / "a" / "big.md"
    big.write_text("x" * 3000)
    exe = incoming / "a" / "tool.exe"
    exe.write_text("MZ")
    staged = stage_uploads([small, same_name, big, exe], tmp_path / "uploads", max_bytes=2048)
    assert [p.name for p in staged.paths] == ["story.txt", "story (2).txt"]
    assert (tmp_path / "uploads" / "story.txt").read_text() == "Title\nBody."
    reasons = {r.name: r.reason or "" for r in staged.refused}
    assert set(reasons) == {"big.md", "tool.exe"}
    assert (
        "2.9 KB is over the upload limit of 2.0 KB (ASSISTANT_MAX_UPLOAD_BYTES)"
        in reasons["big.md"]
    )
    assert "unsupported file type '.exe'" in reasons["tool.exe"]
    assert all(r.status == "failed" for r in staged.refused)


def test_human_size() -> None:
    assert human_size(512) == "512 bytes"
    assert human_size(200_000) == "195.3 KB"  # as Gradio's own message says it
    assert human_size(25 * 1024 * 1024) == "25.0 MB"


def test_an_upload_reports_reading_then_storing_and_builds_the_keyword_index_once(
    settings: Settings, embedder: ModelEmbedder, articles_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small write batches, so the articles are stored in several steps.
    assistant = Assistant(settings.model_copy(update={"write_batch_chunks": 4}), embedder=embedder)
    builds: list[int] = []
    build = KeywordIndex.build

    def counted(index: KeywordIndex, generation: int, *rest: Any, **options: Any) -> None:
        builds.append(generation)
        build(index, generation, *rest, **options)

    monkeypatch.setattr(KeywordIndex, "build", counted)
    (articles_dir / "empty.txt").write_text("")
    notes = [
        {"id": f"note-{i}", "text": f"Council note {i}: the library opens at {i % 12 + 1} am."}
        for i in range(40)
    ]
    (articles_dir / "notes.jsonl").write_text("".join(json.dumps(n) + "\n" for n in notes))
    steps: list[tuple[int, int, str]] = []
    paths = sorted(articles_dir.iterdir())
    report = add_with_progress(assistant, paths, lambda *step: steps.append(step))
    assert report.count("added") == 46 and [r.name for r in report.failed] == [
        str(articles_dir / "empty.txt")
    ]
    assert len(builds) == 1, "the keyword index is built once per upload"
    reading = [s for s in steps if s[2].startswith("Reading")]
    storing = [s for s in steps if s[2].startswith("Storing articles")]
    assert [s[0] for s in reading] == list(range(len(paths)))
    assert [s[0] for s in storing] == sorted(s[0] for s in storing)
    assert {s[1] for s in storing} == {47} and any(0 < s[0] < 47 for s in storing)
    assert steps[-1] == (47, 47, "Done")
    again = add_with_progress(assistant, paths)
    assert again.count("unchanged") == 46 and len(builds) == 1
    assistant.close()


@pytest.mark.parametrize("hostile", HOSTILE)
def test_other_outlets_of_a_story_are_listed_and_escaped(hostile: str) -> None:
    from assistant.conversation import source_html
    from assistant.retrieval import Outlet

    outlets = (
        Outlet("b", "Same story", hostile, "javascript:alert(1)", "2026-03-02"),
        Outlet("c", hostile, None, "https://wire.example/x", None),
    )
    c = Citation(1, "a", "Title", "paper.example", None, None, "q", 0, 1, outlets)
    line = source_html(c)
    assert "same story also in:" in line
    assert "<script" not in line and "onerror=" not in line.replace("onerror=&quot;", "")
    assert 'href="javascript:' not in line
    assert 'href="https://wire.example/x"' in line
    assert " ".join(hostile.split()) in html.unescape(line)  # shown as itself, on one line
