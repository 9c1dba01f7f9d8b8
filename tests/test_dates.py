"""Dates: reading them, the periods questions name, and searching within a period."""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant import store as store_module
from assistant.articles import Article
from assistant.assistant import Assistant
from assistant.chunking import Chunk
from assistant.cli import cli
from assistant.conversation import Turn, answer_markdown, turn_markdown
from assistant.dates import (
    DateRange,
    names_period,
    parse_day,
    period,
    published_day,
    question_period,
    recent_period,
)
from assistant.embeddings import ModelEmbedder
from assistant.settings import Settings
from assistant.store import Store

D = date

# --- reading dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, start, end",
    [
        ("2024-03-05", D(2024, 3, 5), D(2024, 3, 5)),
        ("2024-03", D(2024, 3, 1), D(2024, 3, 31)),
        ("2024-02", D(2024, 2, 1), D(2024, 2, 29)),  # leap year
        ("2023-02", D(2023, 2, 1), D(2023, 2, 28)),
        ("2024", D(2024, 1, 1), D(2024, 12, 31)),
        (" 2024-3-5 ", D(2024, 3, 5), D(2024, 3, 5)),
    ],
)
def test_parse_day_reads_a_day_a_month_or_a_year(value: str, start: date, end: date):
    assert parse_day(value) == start
    assert parse_day(value, end=True) == end


@pytest.mark.parametrize("value", ["March", "2024-13", "2023-02-29", "24-03-05", "", "2024/03"])
def test_parse_day_refuses_what_is_not_a_date(value: str):
    with pytest.raises(ValueError, match="is not a date"):
        parse_day(value)


def test_period_from_command_line_values():
    assert period("2024-03", "2024-04") == DateRange(D(2024, 3, 1), D(2024, 4, 30))
    assert period("2024", None) == DateRange(D(2024, 1, 1), None)
    assert period("", " ") == DateRange()
    assert not period(None, None).active
    with pytest.raises(ValueError, match="starts .* after it ends"):
        period("2024-05", "2024-04")


@pytest.mark.parametrize(
    "published, day",
    [
        ("2024-03-05", D(2024, 3, 5)),
        ("2024-03-05T23:30:00Z", D(2024, 3, 5)),
        ("2024-03-05 09:00:00+02:00", D(2024, 3, 5)),
        ("March 5, 2024", D(2024, 3, 5)),
        ("Tue, 5 Mar 2024 10:00:00 GMT", D(2024, 3, 5)),
        ("March 2024", None),  # no day: not a publication day
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_published_day(published: str | None, day: date | None):
    assert published_day(published) == day


def test_date_range_contains_labels_and_bounds():
    march = DateRange(D(2024, 3, 1), D(2024, 3, 31))
    assert march.contains(D(2024, 3, 1)) and march.contains(D(2024, 3, 31))
    assert not march.contains(D(2024, 4, 1)) and not march.contains(None)
    assert march.label() == "1–31 March 2024"
    assert str(DateRange(D(2024, 3, 5), D(2024, 3, 5))) == "5 March 2024"
    assert DateRange(D(2024, 2, 1), D(2024, 3, 31)).label() == "1 February – 31 March 2024"
    assert DateRange(D(2023, 12, 1), D(2024, 1, 31)).label() == "1 December 2023 – 31 January 2024"
    assert DateRange(D(2023, 1, 1)).label() == "1 January 2023 onwards"
    assert DateRange(None, D(2023, 1, 1)).label() == "up to 1 January 2023"
    assert march.articles() == "articles from 1–31 March 2024"
    assert DateRange(D(2023, 1, 1)).articles() == "articles from 1 January 2023 onwards"
    assert DateRange(None, D(2023, 1, 1)).articles() == "articles up to 1 January 2023"
    assert march.day_numbers() == (20240301, 20240331)
    assert DateRange(D(2023, 1, 1)).day_numbers() == (20230101, 99991231)
    assert DateRange(D(2023, 1, 1)).iso() == "2023-01-01/.."


# --- the periods questions name -----------------------------------------------------------------

WED = D(2024, 3, 13)  # a Wednesday in a leap year


@pytest.mark.parametrize(
    "question, as_of, since, until",
    [
        ("What happened today?", WED, D(2024, 3, 13), D(2024, 3, 13)),
        ("What did the mayor say yesterday?", WED, D(2024, 3, 12), D(2024, 3, 12)),
        ("Who resigned this week?", WED, D(2024, 3, 11), D(2024, 3, 17)),
        ("Who resigned last week?", WED, D(2024, 3, 4), D(2024, 3, 10)),
        ("Who resigned last week?", D(2024, 3, 11), D(2024, 3, 4), D(2024, 3, 10)),  # a Monday
        ("What closed this month?", WED, D(2024, 3, 1), D(2024, 3, 31)),
        ("What closed last month?", WED, D(2024, 2, 1), D(2024, 2, 29)),
        ("What closed last month?", D(2024, 1, 15), D(2023, 12, 1), D(2023, 12, 31)),
        ("What closed last month?", D(2023, 3, 31), D(2023, 2, 1), D(2023, 2, 28)),
        ("Which records fell this year?", WED, D(2024, 1, 1), D(2024, 12, 31)),
        ("Which records fell last year?", WED, D(2023, 1, 1), D(2023, 12, 31)),
        ("Who won the vote in March?", WED, D(2024, 3, 1), D(2024, 3, 31)),
        ("Who won the vote in March?", D(2024, 2, 10), D(2023, 3, 1), D(2023, 3, 31)),
        ("Who won the vote in December?", D(2024, 1, 2), D(2023, 12, 1), D(2023, 12, 31)),
        ("Who won the vote in March 2022?", WED, D(2022, 3, 1), D(2022, 3, 31)),
        ("What was agreed during Sept. 2021?", WED, D(2021, 9, 1), D(2021, 9, 30)),
        ("What happened in February 2024?", WED, D(2024, 2, 1), D(2024, 2, 29)),
        ("What happened on March 5?", WED, D(2024, 3, 5), D(2024, 3, 5)),
        ("What happened on March 5th?", D(2024, 3, 1), D(2023, 3, 5), D(2023, 3, 5)),
        ("What happened on 5 March 2021?", WED, D(2021, 3, 5), D(2021, 3, 5)),
        ("What happened on the 5th of March?", WED, D(2024, 3, 5), D(2024, 3, 5)),
        ("What happened on February 29?", D(2025, 6, 1), D(2024, 2, 29), D(2024, 2, 29)),
        ("What changed since 2023?", WED, D(2023, 1, 1), None),
        ("What changed since March?", D(2024, 1, 5), D(2023, 3, 1), None),
        ("What was built in 2019?", WED, D(2019, 1, 1), D(2019, 12, 31)),
        # Weekdays count back from the as-of day, as news writes them.
        ("Which media figure died on Monday at age 87?", WED, D(2024, 3, 11), D(2024, 3, 11)),
        ("What was announced on Wednesday?", WED, D(2024, 3, 13), D(2024, 3, 13)),
        ("What was announced on Thursday?", WED, D(2024, 3, 7), D(2024, 3, 7)),
        ("What was announced last Wednesday?", WED, D(2024, 3, 6), D(2024, 3, 6)),
        # The first expression wins.
        ("What changed since 2023, and what happened last week?", WED, D(2023, 1, 1), None),
    ],
)
def test_question_period(question: str, as_of: date, since: date, until: date | None):
    assert question_period(question, as_of) == DateRange(since, until)


@pytest.mark.parametrize(
    "question",
    [
        "Who won the 2024 election?",  # a year naming a topic
        "Which team won March Madness?",  # a month naming a topic
        "What may happen to the bridge?",  # "may" the verb
        "Who led the march on Washington in may?",  # lowercase month: not a date
        "Who played in 2024-25 season openers?",
        "What happened on February 30?",  # no such day
        "What is the weekly average?",
        "Who is the person of the week?",
        "What happened on Monday, March 3?",  # a weekday that only introduces a date
        "Which band plays Wednesday nights?",
        "Who sang on monday night?",  # lowercase: not trusted as a date
    ],
)
def test_questions_without_a_clear_period_have_none(question: str):
    assert question_period(question, WED) is None
    if "February 30" not in question:
        assert not names_period(question)


# --- searching within a period ------------------------------------------------------------------

TRAM = "The Riverton council voted on the tram line extension to the harbour district."
ARTICLES = [
    Article(
        "tram-jan",
        "Riverton council delays tram vote",
        TRAM + " The vote was delayed until spring because the budget was not ready.",
        published="2024-01-15",
    ),
    Article(
        "tram-mar",
        "Riverton council approves tram line",
        TRAM + " Councillors approved the extension by nine votes to four.",
        published="2024-03-05",
    ),
    Article(
        "tram-mar2",
        "Tram works begin in Riverton",
        TRAM + " Construction crews began laying the first rails near the harbour.",
        published="2024-03-20T08:00:00Z",
    ),
    Article(
        "tram-undated",
        "Riverton tram explained",
        TRAM + " The line will have eleven stops and run every ten minutes.",
        published=None,
    ),
]
MARCH = DateRange(D(2024, 3, 1), D(2024, 3, 31))
QUERY = "Riverton council tram line vote"


@pytest.fixture
def trams(assistant: Assistant) -> Assistant:
    report = assistant.add_loaded([(a.id, a) for a in ARTICLES])
    assert report.count("added") == 4
    return assistant


def _articles(hits: list[tuple[str, float]]) -> set[str]:
    return {chunk_id.rsplit(":", 1)[0] for chunk_id, _ in hits}


@pytest.mark.parametrize(
    ("question", "recent"),
    [
        ("Who recently won the tram vote?", True),
        ("In recent weeks, who won the tram vote?", True),
        ("Thanks to a recent change in the law, who can vote?", True),
        ("Who won the most recent tram vote?", True),
        ("How has the tram changed in recent years?", False),
        ("What did recent decades bring?", False),
        ("Is recentness a word?", False),
    ],
)
def test_recent_asks_about_the_month_before_the_question(question: str, recent: bool):
    as_of = D(2024, 6, 1)
    want = DateRange(D(2024, 5, 2), as_of) if recent else None
    assert recent_period(question, as_of) == want


def test_dense_and_keyword_search_keep_to_the_period(trams: Assistant):
    store = trams.store
    vector = trams.embedder.embed_query(QUERY)
    assert _articles(store.dense_search(vector, 10)) == {a.id for a in ARTICLES}
    assert _articles(store.keyword_search(QUERY, 10)) == {a.id for a in ARTICLES}
    assert _articles(store.dense_search(vector, 10, MARCH)) == {"tram-mar", "tram-mar2"}
    assert _articles(store.keyword_search(QUERY, 10, MARCH)) == {"tram-mar", "tram-mar2"}
    since_march = DateRange(D(2024, 3, 6))
    assert _articles(store.dense_search(vector, 10, since_march)) == {"tram-mar2"}
    assert _articles(store.keyword_search(QUERY, 10, since_march)) == {"tram-mar2"}
    empty = DateRange(D(2020, 1, 1), D(2020, 12, 31))
    assert store.dense_search(vector, 10, empty) == []
    assert store.keyword_search(QUERY, 10, empty) == []
    assert store.newest_day() == D(2024, 3, 20)


def test_ask_and_search_with_an_explicit_period(trams: Assistant):
    passages = trams.search(QUERY, since=D(2024, 3, 1), until=D(2024, 3, 31))
    assert {p.article_id for p in passages} == {"tram-mar", "tram-mar2"}
    answer = trams.ask("How many votes approved the tram extension?", since=D(2024, 3, 1))
    assert answer.date_range == DateRange(D(2024, 3, 1), None)
    assert {p.article_id for p in answer.passages} == {"tram-mar", "tram-mar2"}
    assert not answer.abstained and "nine votes to four" in answer.text
    # Without a period all four articles are searched, the undated one included.
    assert {p.article_id for p in trams.search(QUERY)} == {a.id for a in ARTICLES}
    assert trams.ask("How many votes approved the tram extension?").date_range is None


def test_an_empty_period_abstains_and_names_the_period(trams: Assistant):
    answer = trams.ask(
        "How many votes approved the tram extension?", since=D(2023, 1, 1), until=D(2023, 12, 31)
    )
    assert answer.abstained and answer.citations == () and answer.passages == ()
    assert (
        answer.text
        == "No articles from 1 January – 31 December 2023, so there is nothing to quote."
    )
    assert answer.date_range == DateRange(D(2023, 1, 1), D(2023, 12, 31))
    shown = answer_markdown(answer)
    assert "No articles from 1 January – 31 December 2023" in shown
    assert "is the collection empty" not in shown
    assert "*Articles from 1 January – 31 December 2023.*" in turn_markdown(Turn("q", answer))


def test_a_period_named_in_the_question_ranks_its_articles_first(trams: Assistant):
    # As of the newest article (20 March 2024), "last month" is February: nothing then, so the
    # default (prefer) still answers from the other articles.
    question = "What did the Riverton council decide about the tram this month?"
    answer = trams.ask(question)
    assert answer.date_range == DateRange(D(2024, 3, 1), D(2024, 3, 31), soft=True)
    ids = [p.article_id for p in answer.passages]
    assert set(ids[:2]) == {"tram-mar", "tram-mar2"} and set(ids) == {a.id for a in ARTICLES}
    assert answer.searched_for == question  # the words stay in the query
    assert "*Articles from 1–31 March 2024 first (the period the question names).*" in (
        answer_markdown(answer)
    )


def test_a_period_named_in_the_question_filters_when_set_to(
    settings: Settings, embedder: ModelEmbedder
):
    strict = Assistant(settings.model_copy(update={"question_dates": "filter"}), embedder=embedder)
    strict.add_loaded([(a.id, a) for a in ARTICLES])
    answer = strict.ask("What did the Riverton council decide about the tram this month?")
    assert answer.date_range == MARCH
    assert {p.article_id for p in answer.passages} == {"tram-mar", "tram-mar2"}
    nothing = strict.ask("What did the Riverton council decide about the tram last month?")
    assert nothing.abstained and nothing.text.startswith("No articles from 1–29 February 2024")
    # An explicit as-of date moves "this month".
    january = Assistant(
        settings.model_copy(update={"question_dates": "filter", "as_of": D(2024, 1, 31)}),
        store=strict.store,
        embedder=embedder,
    )
    answer = january.ask("What did the Riverton council decide about the tram this month?")
    assert {p.article_id for p in answer.passages} == {"tram-jan"}
    off = Assistant(
        settings.model_copy(update={"question_dates": "off"}), store=strict.store, embedder=embedder
    )
    assert off.ask("What did the council decide about the tram this month?").date_range is None
    strict.close()


def test_a_period_after_the_newest_article_abstains_and_says_why(
    settings: Settings, embedder: ModelEmbedder
):
    dated = Assistant(settings, embedder=embedder)
    dated.add_loaded([(a.id, a) for a in ARTICLES if a.published])
    question = "How many votes approved the tram extension this week?"
    # Asked in the week of the newest article (20 March 2024): answered from the articles.
    answer = dated.ask(question, as_of=D(2024, 3, 22))
    assert not answer.abstained and answer.date_range == DateRange(
        D(2024, 3, 18), D(2024, 3, 24), soft=True
    )
    # Asked a month later: no article can be from that week, so it abstains and says why.
    later = dated.ask(question, as_of=D(2024, 4, 24))
    assert later.abstained and later.citations == () and later.passages == ()
    assert later.text == (
        "No articles from 22–28 April 2024: the newest article is from 20 March 2024, "
        "so the articles cannot say."
    )
    shown = answer_markdown(later)
    assert "the newest article is from 20 March 2024" in shown
    assert "is the collection empty" not in shown
    # The same question without its date counts "this week" from the newest article.
    assert not dated.ask(question).abstained
    # "Recently" is too vague to rank by, but not when the archive ended long before.
    recently = "How many votes recently approved the tram extension?"
    assert not dated.ask(recently, as_of=D(2024, 4, 10)).abstained
    assert dated.ask(recently, as_of=D(2024, 4, 10)).date_range is None
    stale = dated.ask(recently, as_of=D(2024, 6, 1))
    assert stale.abstained and stale.text.startswith("No articles from 2 May – 1 June 2024: the")
    assert not dated.ask(recently).abstained  # without the day it was asked: no such check
    # The day set for a whole session (--as-of, ASSISTANT_AS_OF) counts like the question's.
    session = Assistant(
        settings.model_copy(update={"as_of": D(2024, 6, 1)}), store=dated.store, embedder=embedder
    )
    assert session.ask(recently).text.startswith("No articles from 2 May – 1 June 2024: the")
    # An article dated long after the question (an event's date read from its text) does not
    # switch the check off; one from the weeks after it does, as it may report on that week.
    misdated = Article(
        "fair", "County fair", "The county fair opens on July 4.", published="2031-07-04"
    )
    dated.add_loaded([("fair", misdated)])
    assert dated.ask(question, as_of=D(2024, 4, 24)).abstained
    soon = Article("later", "Tram report", "The tram report came out.", published="2024-05-10")
    dated.add_loaded([("later", soon)])
    assert not dated.ask(question, as_of=D(2024, 4, 24)).abstained
    # A question naming no period is answered whenever it is asked.
    assert not dated.ask(
        "How many votes approved the tram extension?", as_of=D(2030, 1, 1)
    ).abstained
    dated.close()


def test_an_undated_article_might_be_from_the_period_so_no_abstention(trams: Assistant):
    question = "What did the Riverton council decide about the tram line this week?"
    answer = trams.ask(question, as_of=D(2024, 6, 5))
    assert not answer.abstained and answer.citations
    assert answer.date_range == DateRange(D(2024, 6, 3), D(2024, 6, 9), soft=True)


def test_a_question_without_a_period_is_searched_as_before(trams: Assistant):
    question = "What did the Riverton council decide about the tram?"
    vector = trams.embedder.embed_query(question)
    assert trams.period(question) is None
    found = trams.retriever.retrieve(question, vector=vector)
    assert trams.ask(question).passages == tuple(found.passages)


def test_a_store_written_before_dates_were_indexed_gets_them(
    settings: Settings, embedder: ModelEmbedder, monkeypatch: pytest.MonkeyPatch
):
    # Write vectors the old way (no day in their metadata), and forget the store was migrated.
    def old_metadata(chunk: Chunk, day: date | None) -> dict[str, str]:
        return {"article_id": chunk.article_id, "chunk_id": chunk.id}

    monkeypatch.setattr(store_module, "_chunk_metadata", old_metadata)
    first = Assistant(settings, embedder=embedder)
    first.add_loaded([(a.id, a) for a in ARTICLES])
    first.close()
    monkeypatch.undo()
    with sqlite3.connect(settings.data_dir / "articles.sqlite3") as db:
        db.execute("DELETE FROM meta WHERE key='vector_days'")
    store = Store(settings, embedder)
    vector = embedder.embed_query(QUERY)
    collection = store.vectors._collection
    assert all("day" not in m for m in collection.get(include=["metadatas"])["metadatas"])
    assert _articles(store.dense_search(vector, 10, MARCH)) == {"tram-mar", "tram-mar2"}
    days = {
        m["article_id"]: m.get("day") for m in collection.get(include=["metadatas"])["metadatas"]
    }
    assert days == {
        "tram-jan": 20240115,
        "tram-mar": 20240305,
        "tram-mar2": 20240320,
        "tram-undated": None,
    }
    store.close()


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture
def run(embedder: ModelEmbedder, data_dir: Path, tmp_path: Path):
    lines = [
        json.dumps({"id": a.id, "title": a.title, "text": a.text, "published": a.published})
        for a in ARTICLES
    ]
    (tmp_path / "trams.jsonl").write_text("\n".join(lines) + "\n")

    def invoke(*args: str):
        return CliRunner().invoke(cli, list(args), obj={"embedder": embedder})

    assert invoke("add", "-q", str(tmp_path / "trams.jsonl")).exit_code == 0
    return invoke


def test_cli_since_until(run, tmp_path: Path):
    question = "How many votes approved the tram extension?"
    out = run("ask", "--json", "--since", "2024-03", "--until", "2024-03", question)
    assert out.exit_code == 0, out.output
    answer = json.loads(out.stdout)
    assert answer["date_range"] == {"since": "2024-03-01", "until": "2024-03-31", "soft": False}
    assert {p["article_id"] for p in answer["passages"]} == {"tram-mar", "tram-mar2"}
    text = run("ask", "--since", "2024-03-01", question)
    assert (
        "nine votes to four" in text.stdout and "Articles from 1 March 2024 onwards." in text.stdout
    )
    assert json.loads(run("ask", "--json", question).stdout)["date_range"] is None

    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "q1", "question": question}) + "\n")
    batch = run("ask", "--batch", str(questions), "--json", "--until", "2024-02")
    record = json.loads(batch.stdout)
    assert record["date_range"] == {"since": None, "until": "2024-02-29", "soft": False}
    assert {p["article_id"] for p in record["passages"]} == {"tram-jan"}

    empty = run("ask", "--since", "2025", question)
    assert empty.exit_code == 0
    assert empty.stdout.startswith("No articles from 1 January 2025 onwards, so there is nothing")


def test_cli_batch_lines_say_when_they_were_asked(run, tmp_path: Path):
    question = "What did the Riverton council decide about the tram this month?"
    lines = [
        {"id": "jan", "question": question, "as_of": "2024-01-31"},
        {"id": "plain", "question": question},
        {"id": "bad", "question": question, "as_of": "31/01/2024"},
        {"id": "odd", "question": question, "as_of": 20240131},
    ]
    questions = tmp_path / "dated.jsonl"
    questions.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = run("ask", "--batch", str(questions), "--json")
    assert out.exit_code == 1
    records = {r["id"]: r for r in map(json.loads, out.stdout.splitlines())}
    assert set(records) == {"jan", "plain"}
    assert records["jan"]["date_range"]["since"] == "2024-01-01"
    assert records["jan"]["passages"][0]["article_id"] == "tram-jan"
    assert records["plain"]["date_range"]["since"] == "2024-03-01"  # the newest article's month
    assert f"{questions}:3: \"as_of\": '31/01/2024' is not a date" in out.stderr
    assert f'{questions}:4: "as_of" is not a date string: 20240131' in out.stderr


def test_cli_as_of_and_bad_dates(run):
    question = "What did the Riverton council decide about the tram this month?"
    out = run("ask", "--json", "--as-of", "2024-01-31", question)
    assert json.loads(out.stdout)["date_range"] == {
        "since": "2024-01-01",
        "until": "2024-01-31",
        "soft": True,
    }
    assert json.loads(out.stdout)["passages"][0]["article_id"] == "tram-jan"
    bad = run("ask", "--since", "March", question)
    assert bad.exit_code == 2 and "'March' is not a date" in bad.output
    backwards = run("ask", "--since", "2024-04", "--until", "2024-03", question)
    assert backwards.exit_code == 2 and "is after --until" in backwards.output
