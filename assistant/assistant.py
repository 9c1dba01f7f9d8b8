"""The Assistant: the one object the CLI, the UI and the tests drive."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda

from assistant.answer import Answer, Composer, Query, empty_period, no_articles
from assistant.articles import (
    Article,
    Loaded,
    LoadError,
    Skipped,
    article_from_text,
    find_files,
    load_file,
)
from assistant.chunking import chunk_article
from assistant.dates import (
    RECENT_DAYS,
    DateRange,
    names_period,
    question_period,
    recent_period,
)
from assistant.embeddings import Embedder, ModelEmbedder, engine_for, vector_space
from assistant.generate import Writer, build_chat_model
from assistant.ranker import Reader
from assistant.retrieval import HybridRetriever, Passage
from assistant.settings import Settings
from assistant.store import ArticleInfo, Embedded, Pending, Store, StoreBusy

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]  # (done, total, name)
SKIPPED_NAMED = 5  # skipped files named in a report's summary line


@dataclass(frozen=True)
class IngestResult:
    """What happened to one input: added, unchanged, replaced, failed or skipped (with the
    reason; skipped: a file in a folder left out on purpose, such as one of another type)."""

    name: str
    status: str
    article_id: str | None = None
    title: str | None = None
    reason: str | None = None
    duplicate_of: str | None = None  # a near-duplicate of this stored article (same story)


@dataclass(frozen=True)
class IngestReport:
    results: tuple[IngestResult, ...]

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> list[IngestResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def skipped(self) -> list[IngestResult]:
        return [r for r in self.results if r.status == "skipped"]

    def summary(self) -> str:
        """`1 added, 0 unchanged, 0 replaced, 0 failed`, and what was skipped, by name."""
        counts = [f"{self.count(s)} {s}" for s in ("added", "unchanged", "replaced", "failed")]
        skipped = self.skipped
        if skipped:
            # A folder may hold hundreds of other files: the first few are named, not all.
            names = [Path(r.name).name or r.name for r in skipped[:SKIPPED_NAMED]]
            more = len(skipped) - len(names)
            named = ", ".join(names) + (f" and {more:,} more" if more else "")
            counts.append(f"{len(skipped)} skipped ({named})")
        repeats = sum(1 for r in self.results if r.duplicate_of)
        if repeats:
            counts.append(f"{repeats} near-duplicate{'s' if repeats > 1 else ''} of stored stories")
        return ", ".join(counts)


class QuestionTooLong(ValueError):
    """A question (or search query) over the `max_question_chars` setting."""


_FOLLOW_UP = re.compile(
    r"\b(he|she|it|they|him|her|them|his|hers|its|their|theirs|this|that|these|those|there)\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*")


def standalone_query(question: str, history: Sequence[str]) -> str:
    """The question made searchable on its own: a follow-up borrows the names asked about before.

    Without a language model this stays extractive: if the question points back ("What did
    he say?"), the capitalised names of the previous questions are added to it.
    """
    if not history or not _FOLLOW_UP.search(question):
        return question
    own = {m.group(0) for m in _NAME.finditer(question[1:])}
    names: list[str] = []
    for previous in reversed(history[-3:]):
        for m in _NAME.finditer(previous):
            name = m.group(0).rstrip(".")
            if m.start() == 0:
                # "Has Elon Musk": the first word is capitalised only because it starts the line.
                name = name.partition(" ")[2]
            if name and name not in own and name not in names:
                names.append(name)
        if names:
            break
    return f"{question} ({' '.join(names)})" if names else question


class Assistant:
    """Adds, lists, shows, removes articles; answers questions with exact, cited quotes."""

    def __init__(
        self,
        settings: Settings | None = None,
        store: Store | None = None,
        embedder: Embedder | None = None,
        llm: Any = None,
    ) -> None:
        self.settings = settings or Settings()
        model = ModelEmbedder(
            self.settings.embedding_engine, self.settings.cache_dir, self.settings.embed_batch_size
        )
        self.embedder = embedder or model
        self.store = store or Store(self.settings, self.embedder)
        if embedder is None and self.store.vector_space != vector_space(model.engine):
            # Vectors of another kind would be searched with the wrong ones: the index decides.
            log.warning(
                "%s holds %s vectors: it is searched and added to with the %s engine, not %s",
                self.settings.data_dir,
                self.store.vector_space,
                engine_for(self.store.vector_space),
                model.engine,
            )
            model.engine = engine_for(self.store.vector_space)
        # A written-answer model: injected (tests), else from the settings (None: extractive).
        self.llm = llm if llm is not None else build_chat_model(self.settings)
        self.retriever = HybridRetriever(self.store, self.settings)
        self.composer = Composer(
            self.settings,
            embed=self.embedder.embed_documents,
            term_weights=self.store.term_weights,
            articles=self.store.articles,
            sentences=self.retriever.sentences,
            stored=self.store.sentence_vectors,
            reader=Reader() if self.settings.answer_ranker == "trained" else None,
        )
        self.writer = (
            Writer(
                self.settings,
                self.llm,
                self.composer,
                sentences=self.retriever.sentences,
            )
            if self.llm is not None
            else None
        )
        self.chain = self._build_chain()

    # --- corpus ----------------------------------------------------------------------------

    def add(self, paths: Iterable[str | Path], progress: Progress | None = None) -> IngestReport:
        """Add the articles in these files and folders (recursively)."""
        return self.add_loaded(self.read(paths), progress)

    def read(self, paths: Iterable[str | Path], progress: Progress | None = None) -> list[Loaded]:
        """The articles in these files and folders (recursively), and what could not be read.

        `progress` hears of each file before it is read: (files read, files, its name).
        """
        files = list(find_files([Path(p) for p in paths]))
        loaded: list[Loaded] = []
        for done, found in enumerate(files):
            if isinstance(found, LoadError):
                loaded.append((found.name, found))
                continue
            if progress:
                progress(done, len(files), found.name)
            s = self.settings
            loaded.extend(
                load_file(
                    found,
                    s.max_file_bytes,
                    s.max_article_chars,
                    max_pdf_pages=s.max_pdf_pages,
                    pdf_seconds=s.pdf_seconds,
                )
            )
        return loaded

    def add_text(self, text: str, title: str | None = None, url: str | None = None) -> IngestReport:
        """Add one pasted article."""
        try:
            article = article_from_text(text, title, url)
        except ValueError as e:
            return IngestReport((IngestResult("pasted text", "failed", reason=str(e)),))
        name = title or "pasted text"
        try:
            return self.add_loaded([(name, article)])
        except StoreBusy as e:  # one article: its failure, like any other
            return IngestReport((IngestResult(name, "failed", article.id, article.title, str(e)),))

    def add_loaded(
        self, loaded: Sequence[Loaded], progress: Progress | None = None
    ) -> IngestReport:
        """Store loaded articles in batches; failures are reported, never fatal.

        `progress` hears (articles done, articles, the latest one's name): an article is done
        when it is stored or turned away, so the count moves as batches are written.
        """
        self.store.catch_up()  # server mode: what replaces what is judged on current records
        results: list[IngestResult] = []
        batch: list[tuple[str, Pending, str]] = []
        in_batch: dict[str, str] = {}  # id -> content hash of the articles in `batch`
        origins: set[str] = set()  # their files or URLs

        def write(items: list[tuple[str, Pending, str]], embedded: Embedded | None = None) -> None:
            pending = [p for _, p, _ in items]
            try:
                if embedded is None:
                    embedded = self.store.embed(pending)
                repeats = self.store.write(pending, embedded)
            except StoreBusy:  # another writer kept the folder: so would it for the rest
                raise
            except Exception as e:  # the store refused the batch: report, keep going
                if len(items) > 1:  # one article may be the cause: the others still go in,
                    for item in items:  # with the vectors already made, if they were
                        own = item[1].article.id
                        write([item], {own: embedded[own]} if embedded is not None else None)
                    return
                name, p, _ = items[0]
                reason = f"could not be stored ({e})"
                results.append(IngestResult(name, "failed", p.article.id, p.article.title, reason))
                return
            results.extend(
                IngestResult(
                    name,
                    status,
                    p.article.id,
                    p.article.title,
                    duplicate_of=repeats.get(p.article.id),
                )
                for name, p, status in items
            )

        def flush() -> None:
            if batch:
                write(list(batch))
            batch.clear()
            in_batch.clear()
            origins.clear()

        for done, (name, item) in enumerate(loaded, 1):
            if isinstance(item, LoadError):
                status = "skipped" if isinstance(item, Skipped) else "failed"
                results.append(IngestResult(name, status, reason=item.reason))
            else:
                # A new version of an article in this batch (the same id, or the same file or
                # URL) must find the first one stored, to replace it.
                if in_batch.get(item.id, item.content_hash) != item.content_hash or (
                    item.id not in in_batch and item.origin in origins
                ):
                    flush()
                result = self._prepare(name, item, in_batch)
                if isinstance(result, IngestResult):
                    results.append(result)
                else:
                    batch.append(result)
                    in_batch[item.id] = item.content_hash
                    if item.origin:
                        origins.add(item.origin)
                    if sum(len(p.chunks) for _, p, _ in batch) >= self.settings.write_batch_chunks:
                        flush()
            if progress:
                progress(done - len(batch), len(loaded), name)
        flush()
        if progress and loaded:
            progress(len(loaded), len(loaded), loaded[-1][0])
        # Build the keyword index now, once for the whole add, so no question pays for it.
        self.store.refresh_keywords()
        return IngestReport(tuple(results))

    def add_sentence_vectors(self, progress: Progress | None = None) -> int:
        """Give articles stored by an older version their sentence vectors, so their answers
        need no model run per sentence; returns how many. Stopped, it resumes where it was."""
        missing = self.store.without_sentence_vectors()
        batch: list[Pending] = []
        for done, article_id in enumerate(missing, 1):
            pending = self.store.stored(article_id)
            if pending is not None:
                batch.append(pending)
            if sum(len(p.chunks) for p in batch) >= self.settings.write_batch_chunks:
                self.store.add_sentence_vectors(batch)
                batch.clear()
            if progress:
                progress(done, len(missing), article_id)
        self.store.add_sentence_vectors(batch)
        return len(missing)

    def sweep(self) -> int:
        """Server mode: delete the vectors no article uses (a killed writer's), written over an
        hour ago; returns how many (always 0 for the embedded store)."""
        replica = self.store.replica
        return replica.sweep() if replica is not None else 0

    def _prepare(
        self, name: str, article: Article, in_batch: dict[str, str]
    ) -> IngestResult | tuple[str, Pending, str]:
        if len(article.text) > self.settings.max_article_chars:
            return IngestResult(
                name,
                "failed",
                article.id,
                article.title,
                f"article too long ({len(article.text):,} characters; "
                f"the limit is {self.settings.max_article_chars:,})",
            )
        if in_batch.get(article.id) == article.content_hash:
            return IngestResult(name, "unchanged", article.id, article.title)
        status, replaces = self.store.status(article)
        if status == "unchanged":
            return IngestResult(name, "unchanged", article.id, article.title)
        chunks = chunk_article(
            article.id,
            article.text,
            self.settings.chunk_chars,
            self.settings.chunk_overlap_sentences,
        )
        if not chunks:
            return IngestResult(name, "failed", article.id, article.title, "no sentences found")
        status = "replaced" if status == "replaced" else "added"
        return name, Pending(article, chunks, replaces), status

    def remove(self, article_ids: Iterable[str]) -> list[str]:
        """Remove articles (text, chunks, vectors, keywords); returns those that existed."""
        self.store.catch_up()
        removed = self.store.delete(article_ids)
        self.store.refresh_keywords()
        return removed

    def list_articles(self) -> list[ArticleInfo]:
        self.store.catch_up()
        return self.store.list_articles()

    def get(self, article_id: str) -> Article | None:
        self.store.catch_up()
        return self.store.get(article_id)

    # --- questions -------------------------------------------------------------------------

    def period(
        self,
        question: str,
        since: date | None = None,
        until: date | None = None,
        as_of: date | None = None,
    ) -> DateRange | None:
        """The period to search: the one given, else the one the question names (if any).

        A named period ("last week") is resolved against the as-of date: the day the question
        was asked if known, else the setting, else the newest article's date (in an archive
        "last week" means the archive's last week).
        """
        if since or until:
            return DateRange(since, until)
        if self.settings.question_dates == "off" or not names_period(question):
            return None  # and the store's dates are not even read
        as_of = as_of or self.settings.as_of or self.store.newest_day()
        named = question_period(question, as_of) if as_of else None
        if named is None:
            return None
        return replace(named, soft=self.settings.question_dates == "prefer")

    def _after_archive(
        self, question: str, period: DateRange | None, as_of: date | None
    ) -> tuple[DateRange, date] | None:
        """The question's time and the newest article's day, if that time is after it (so no
        article can say): the period it names, or "recently" when the day it was asked is known
        (given with the question or set as `as_of`).
        """
        asked = as_of or self.settings.as_of
        recent = recent_period(question, asked) if asked else None
        times = [r for r in (period, recent) if r is not None and r.since is not None]
        if not times:
            return None
        if None in self.store.days().values():  # an undated article might be from the period
            return None
        # Dates long after the day the question was asked do not count: a date read from an
        # article's text is sometimes an event's ("July 4, 2026" in an article of 2025), and
        # one such date would otherwise switch this check off. Articles from the weeks after
        # it do count: they report on the days before.
        newest = self.store.newest_day(asked + timedelta(days=RECENT_DAYS) if asked else None)
        if newest is None:
            return None
        after = [r for r in times if r.since and r.since > newest]
        return (after[0], newest) if len(after) == len(times) else None

    def search(
        self,
        query: str,
        k: int | None = None,
        since: date | None = None,
        until: date | None = None,
        as_of: date | None = None,
    ) -> list[Passage]:
        """The ranked passages for a query, as the answer step sees them."""
        self._check_length(query, "the search")
        self.store.catch_up()
        found = self.retriever.retrieve(query, k, period=self.period(query, since, until, as_of))
        return found.passages

    def _retrieve(self, inputs: dict[str, Any]) -> dict[str, Any]:
        history = inputs.get("history") or []
        self.store.catch_up()  # server mode: other processes' changes first
        if self.store.count() == 0:  # say so, rather than that the articles don't answer
            return {**inputs, "done": no_articles(inputs["question"])}
        query = self.writer.standalone(inputs["question"], history) if self.writer else None
        query = query or standalone_query(inputs["question"], history)
        period = self.period(
            inputs["question"], inputs.get("since"), inputs.get("until"), inputs.get("as_of")
        )
        state = {**inputs, "searched_for": query, "period": period}
        after = self._after_archive(inputs["question"], period, inputs.get("as_of"))
        if after:  # "this week", asked after the newest article: even a soft period abstains
            return {**state, "empty": True, "period": after[0], "newest": after[1]}
        if period and not period.soft and not self.store.articles_in(period):
            return {**state, "empty": True}
        vector = self.embedder.embed_query(query)
        found = self.retriever.retrieve(query, inputs.get("k"), vector=vector, period=period)
        return {**state, "vector": vector, "passages": found.passages, "articles": found.articles}

    def _answer(self, state: dict[str, Any]) -> Answer:
        """The answer step: written by the model if one is configured, else extractive."""
        if "done" in state:
            return state["done"]
        if state.get("empty"):
            return empty_period(
                state["question"], state["searched_for"], state["period"], state.get("newest")
            )
        make = self.writer.write if self.writer else self.composer.compose
        return replace(make(self._query(state)), date_range=state["period"])

    def _query(self, state: dict[str, Any]) -> Query:
        """What the answer step needs from the retrieval step's state."""
        return Query(
            state["question"],
            state["searched_for"],
            state["passages"],
            state["vector"],
            state["articles"],
            state.get("as_of") or self.settings.as_of,
        )

    def _build_chain(self) -> Runnable[dict[str, Any], Answer]:
        return RunnableLambda(self._retrieve) | RunnableLambda(self._answer)

    def ask(
        self,
        question: str,
        history: Sequence[str] = (),
        k: int | None = None,
        since: date | None = None,
        until: date | None = None,
        as_of: date | None = None,
    ) -> Answer:
        """Answer a question from the articles, with the user's earlier questions as context.

        `since`/`until` limit the search to articles published in that period (undated ones
        are left out); without them, a period the question names is used (see `period`),
        counted from `as_of`, the day the question is asked, when given.
        """
        return self.chain.invoke(self._inputs(question, history, k, since, until, as_of))

    def stream(
        self,
        question: str,
        history: Sequence[str] = (),
        k: int | None = None,
        since: date | None = None,
        until: date | None = None,
        as_of: date | None = None,
    ) -> Iterator[str | Answer]:
        """Pieces of the model's unchecked draft as they arrive (llm mode), then the Answer."""
        inputs = self._inputs(question, history, k, since, until, as_of)
        if self.writer is None:
            yield from self.chain.stream(inputs)
            return
        state = self._retrieve(inputs)
        if "done" in state or state.get("empty"):
            yield self._answer(state)
            return
        for item in self.writer.stream(self._query(state)):
            yield replace(item, date_range=state["period"]) if isinstance(item, Answer) else item

    def _check_length(self, text: str, what: str = "the question") -> None:
        """Refuse text over the limit: every face (CLI, chat, API) passes through here."""
        limit = self.settings.max_question_chars
        if len(text) > limit:
            raise QuestionTooLong(
                f"{what} is {len(text):,} characters long; the limit is {limit:,} "
                "(ASSISTANT_MAX_QUESTION_CHARS)"
            )

    def _inputs(
        self,
        question: str,
        history: Sequence[str],
        k: int | None,
        since: date | None,
        until: date | None,
        as_of: date | None = None,
    ) -> dict[str, Any]:
        self._check_length(question)
        for earlier in history:
            self._check_length(earlier, "an earlier question")
        return {
            "question": question,
            "history": list(history),
            "k": k,
            "since": since,
            "until": until,
            "as_of": as_of,
        }

    def close(self) -> None:
        self.store.close()
