"""The store: article texts and chunk offsets in SQLite, vectors in Chroma, keywords in bm25s.

SQLite is the record of truth: an article exists when its row is committed. The rules that keep
the three in agreement:

- One writer at a time: every write (a batch added, articles removed, the keyword index rebuilt)
  holds the data folder's write lock (`locking.WriteLock`) from its first change to its last, so
  two processes sharing a folder take turns; readers never take it.
- A write first records in SQLite which articles' vectors it is about to change ("unsettled"),
  then writes vectors, commits the rows, deletes the vectors no row refers to any more, and
  clears the record. A crash anywhere leaves the record behind, and the next writer (or the next
  start) settles those articles: their vectors that are not of a current chunk are deleted, and
  a current chunk whose vector is missing or was overwritten by the uncommitted write is embedded
  again. Searches meanwhile ignore vectors that no row refers to.
- The keyword index is rebuilt when the corpus generation moves on and replaced in one rename
  (see keywords), so a reader sees the old index or the new one, never a part.

In server mode (ASSISTANT_CHROMA_URL) the article records on the Chroma server are the truth and
this folder only a cache of them, kept in step by `assistant.replica`: the write lock still makes
the writers of one folder take turns (over the cache's SQLite and keyword index), while settling
and the orphan sweep are the embedded store's (the server's unused vectors are swept by
`assistant upgrade`).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from assistant.articles import Article
from assistant.chunking import Chunk, sentence_spans
from assistant.dates import DateRange, day_number, published_day
from assistant.duplicates import NearDuplicates
from assistant.embeddings import Embedder, vector_space
from assistant.keywords import KeywordIndex, background
from assistant.locking import Busy, CrashPoints, WriteLock
from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.replica import Replica

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL, url TEXT, source TEXT,
    author TEXT, published TEXT, origin TEXT, content_hash TEXT NOT NULL, added_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS articles_origin ON articles(origin);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY, article_id TEXT NOT NULL REFERENCES articles(id),
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
-- Each sentence's vector pooled from its chunk's token states (float16), so answering needs no
-- model run per sentence. Stores written before this have none and embed sentences when asked.
CREATE TABLE IF NOT EXISTS sentence_vectors (
    article_id TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (article_id, start, "end")
) WITHOUT ROWID;
-- Each article's sentences as split when it was indexed (int32 start, end pairs), so a question
-- needs not split it again. Stores written before this split the articles they quote.
CREATE TABLE IF NOT EXISTS sentence_spans (
    article_id TEXT PRIMARY KEY, spans BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('generation', '0');
-- Whether every vector carries its article's publication day (stores written before dates were
-- indexed get them added on the first date-filtered search).
INSERT OR IGNORE INTO meta
    SELECT 'vector_days', CASE WHEN EXISTS(SELECT 1 FROM articles) THEN '0' ELSE '1' END;
-- Whether Chroma was checked for vectors of no stored chunk, which crashes could leave before
-- writes recorded what they were changing (a new store has none).
INSERT OR IGNORE INTO meta
    SELECT 'vectors_swept', CASE WHEN EXISTS(SELECT 1 FROM articles) THEN '0' ELSE '1' END;
"""


class StoreError(Exception):
    """The data directory cannot be used; the message says why and what to do."""


class StoreBusy(StoreError):
    """Another process kept writing to the data directory for longer than we could wait."""


@dataclass(frozen=True)
class ArticleInfo:
    """An article's metadata for listings (no text)."""

    id: str
    title: str
    url: str | None
    source: str | None
    author: str | None
    published: str | None
    chunks: int
    added_at: str


@dataclass(frozen=True)
class Pending:
    """An article ready to be written: its chunks, and the articles it replaces."""

    article: Article
    chunks: list[Chunk]
    replaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChunkPlace:
    """Where a stored chunk lies in its article (its text is read with the article, once)."""

    id: str
    article_id: str
    start: int
    end: int


SentenceKey = tuple[str, int, int]  # article id, start, end
# Article id -> its chunks' vectors (in order) and its sentences' vectors.
Embedded = dict[str, tuple[list[list[float]], dict[SentenceKey, Any]]]


def index_text(title: str, chunk_text: str) -> str:
    """What is embedded and keyword-indexed for a chunk: its headline gives it context."""
    return f"{title}\n{chunk_text}"


def _chunk_metadata(chunk: Chunk, day: date | None) -> dict[str, Any]:
    """A vector's metadata; `day` (YYYYMMDD) only if the article has a date (Chroma has no null)."""
    meta: dict[str, Any] = {"article_id": chunk.article_id, "chunk_id": chunk.id}
    if day:
        meta["day"] = day_number(day)
    return meta


def _article_of(chunk_id: str) -> str:
    """The article id in a chunk id (`<article id>:<ordinal>`, see chunking)."""
    return chunk_id.rsplit(":", 1)[0]


def _row_to_article(row: sqlite3.Row) -> Article:
    return Article(
        id=row["id"],
        title=row["title"],
        text=row["text"],
        url=row["url"],
        source=row["source"],
        author=row["author"],
        published=row["published"],
        origin=row["origin"],
    )


def _chroma_client(settings: Settings, folder: Path) -> Any:
    """A client for the configured Chroma server, or the embedded store in the data directory."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if not settings.chroma_url:
        return chromadb.PersistentClient(path=str(folder / "chroma"), settings=chroma_settings)
    url = urlsplit(settings.chroma_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise StoreError(
            f"ASSISTANT_CHROMA_URL={settings.chroma_url!r} is not an http(s)://host:port URL"
        )
    try:
        return chromadb.HttpClient(
            host=url.hostname,
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    except Exception as e:  # chromadb raises bare ValueError/ConnectError when unreachable
        raise StoreError(f"cannot reach the Chroma server at {settings.chroma_url} ({e})") from e


class Store:
    """Articles, their chunks, and the two indexes over them, kept in one data directory."""

    def __init__(self, settings: Settings, embedder: Embedder, client: Any = None) -> None:
        self.settings = settings
        self.embedder = embedder
        folder = Path(settings.data_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                folder / "articles.sqlite3",
                check_same_thread=False,
                timeout=settings.lock_timeout,
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            # The kind of vectors this index holds, fixed when it is created (stores written
            # before int8 existed hold float32).
            self._db.execute(
                "INSERT OR IGNORE INTO meta SELECT 'vector_space', CASE WHEN EXISTS"
                "(SELECT 1 FROM articles) THEN 'float32' ELSE ? END",
                (vector_space(settings.embedding_engine),),
            )
            self._db.commit()
            self._duplicates = NearDuplicates(self._db, settings.duplicate_threshold)
        except sqlite3.OperationalError as e:
            if "locked" not in str(e):
                raise StoreError(f"{folder}: the article database cannot be opened ({e})") from e
            raise StoreError(
                f"{folder}: the article database is locked by another program (waited "
                f"{settings.lock_timeout:g} s); let the other `assistant add` finish, or stop it, "
                "and try again"
            ) from e
        except sqlite3.DatabaseError as e:
            raise StoreError(
                f"{folder}: the article database cannot be opened ({e}); "
                "is another program using it, or is the file damaged?"
            ) from e
        except OSError as e:
            raise StoreError(f"{folder}: cannot use the data directory ({e.strerror or e})") from e
        self._lock = threading.RLock()
        self._client = client
        self._folder = folder
        self._vectors: Any = None
        self._own_client: Any = None  # the embedded client we opened (closed on reopening)
        self._vectors_generation = -1  # the corpus generation when Chroma was opened
        self._keywords = KeywordIndex(folder / "keywords")
        self._rebuilding: threading.Thread | None = None  # a keyword index built meanwhile
        self._days: tuple[int, dict[str, date | None]] = (-1, {})
        self._write_lock = WriteLock(folder / "write.lock", settings.lock_timeout)
        self._crash = CrashPoints()
        self._settled_once = False
        self._replica: Replica | None = None

    # --- server mode: the records on the Chroma server, this folder a cache of them -------

    @property
    def replica(self) -> Replica | None:
        """Server mode's link to the article records on the server (None when embedded)."""
        if self.settings.chroma_url and self._replica is None:
            from assistant.replica import Replica

            self._replica = Replica(self, self.vectors._client)
        return self._replica

    def catch_up(self) -> None:
        """Server mode: apply other processes' changes, at most every `sync_interval` seconds."""
        if self.replica is not None:
            self.replica.catch_up()

    # --- Chroma, opened lazily so listing and showing articles stay fast -----------------

    @property
    def vectors(self) -> Any:
        if self._vectors is None:
            from langchain_chroma import Chroma

            generation = self.generation
            client = self._client
            if client is None:
                client = self._own_client = _chroma_client(self.settings, self._folder)
            self._vectors_generation = generation
            self._vectors = Chroma(
                collection_name=self.settings.collection,
                embedding_function=self.embedder,  # type: ignore[arg-type]
                client=client,
                collection_metadata={"hnsw:space": "cosine"},
            )
            self._search_widely(self._vectors._collection)
        return self._vectors

    def _follow_other_writers(self) -> None:
        """Reopen the embedded Chroma if another process has written since it was opened: the
        vector index a process holds in memory does not show another process's vectors."""
        if self._own_client is None or self.settings.chroma_url:
            return
        generation = self.generation
        with self._lock:
            if self._vectors is None or generation == self._vectors_generation:
                return
            self._vectors = None
            self._own_client.close()
            self._own_client = None

    @contextmanager
    def _writing(self, wait: bool = True) -> Iterator[None]:
        """Hold the data folder's write lock (see the module's rules); `StoreBusy` if another
        process holds it past `lock_timeout` (or at all, with `wait=False`)."""
        try:
            with self._write_lock.held(wait):
                yield
        except Busy as e:
            raise StoreBusy(
                f"{self._folder}: another program is writing to this data folder (an "
                "`assistant add` or `remove`, or the chat window adding or removing articles)"
                + (f" and did not finish within {self.settings.lock_timeout:g} s" if wait else "")
                + "; let it finish and try again, or set a longer ASSISTANT_LOCK_TIMEOUT"
            ) from e

    # --- settling what a crashed writer left -----------------------------------------------

    def _catch_up(self) -> None:
        """What every write does first, holding the write lock: see what other processes wrote,
        and settle what a crashed one left."""
        self._follow_other_writers()
        self._settle()
        self._sweep_orphans()

    def _sweep_orphans(self) -> None:
        """Once for a store written before writes were settled: delete the vectors of no stored
        chunk, comparing ids a page at a time (call holding the write lock)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='vectors_swept'").fetchone()
        if row and row[0] == "1":
            return
        collection = self.vectors._collection
        orphans: list[str] = []
        offset = 0
        while page := collection.get(include=[], limit=5000, offset=offset)["ids"]:
            offset += len(page)
            sql = "SELECT id FROM chunks WHERE id IN ({marks})"
            known = {r[0] for r in self._select_in(sql, page)}
            orphans.extend(cid for cid in page if cid not in known)
        for i in range(0, len(orphans), 5000):
            collection.delete(ids=orphans[i : i + 5000])
        if orphans:
            log.warning("%s: deleted %d vectors of no stored article", self._folder, len(orphans))
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('vectors_swept', '1')")

    def _settle_at_start(self) -> None:
        """On a process's first search: settle what a crashed writer left, unless a writer is
        at work (it settles first). Not when opening: the embedding engine may still change."""
        if self._settled_once:
            return
        self._settled_once = True
        if self._unsettled():
            try:
                with self._writing(wait=False):
                    self._settle()
            except StoreBusy:
                pass

    def _unsettled(self) -> list[str]:
        """The articles whose vectors an unfinished write may have left out of step."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='unsettled'").fetchone()
        return list(json.loads(row[0])) if row else []

    def _mark_unsettled(self, article_ids: Iterable[str]) -> None:
        """Record the articles whose vectors are about to change (inside the caller's
        transaction, holding the write lock)."""
        value = json.dumps(sorted(set(article_ids) | set(self._unsettled())))
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('unsettled', ?)", (value,))

    def _mark_settled(self) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM meta WHERE key='unsettled'")

    def _settle(self) -> None:
        """Bring the vectors of the unsettled articles in line with their committed chunks
        (call holding the write lock): the others deleted, the missing or overwritten ones
        embedded again from the stored text."""
        article_ids = self._unsettled()
        if not article_ids:
            return
        log.warning(
            "%s: a write was interrupted; settling the vectors of %d article(s)",
            self._folder,
            len(article_ids),
        )
        collection = self.vectors._collection
        redo: list[Pending] = []
        for i in range(0, len(article_ids), 100):
            part = article_ids[i : i + 100]
            found = collection.get(
                where={"article_id": {"$in": part}}, include=["documents", "metadatas"]
            )
            stored = {aid: self.stored(aid) for aid in part}
            wanted: dict[str, tuple[str, dict[str, Any]]] = {}
            for pending in stored.values():
                if pending is None:
                    continue
                day = published_day(pending.article.published)
                for chunk in pending.chunks:
                    wanted[chunk.id] = (
                        index_text(pending.article.title, chunk.text),
                        _chunk_metadata(chunk, day),
                    )
            have = {
                cid: (doc, meta)
                for cid, doc, meta in zip(
                    found["ids"], found["documents"], found["metadatas"], strict=True
                )
            }
            orphans = sorted(set(have) - set(wanted))
            if orphans:
                collection.delete(ids=orphans)
            stale = {cid for cid, want in wanted.items() if have.get(cid) != want}
            redo.extend(
                Pending(p.article, [c for c in p.chunks if c.id in stale])
                for p in stored.values()
                if p is not None and any(c.id in stale for c in p.chunks)
            )
        if redo:
            self._upsert(redo, self.embed(redo))
        self._mark_settled()

    def _upsert(self, batch: Sequence[Pending], embedded: Embedded) -> list[str]:
        """Write the batch's chunk vectors to Chroma; returns their ids."""
        metadatas, ids, documents = [], [], []
        for item in batch:
            day = published_day(item.article.published)
            for chunk in item.chunks:
                documents.append(index_text(item.article.title, chunk.text))
                metadatas.append(_chunk_metadata(chunk, day))
                ids.append(chunk.id)
        vectors = [v for item in batch for v in embedded[item.article.id][0]]
        if ids:
            # Chroma directly: LangChain's add_texts would run the model again for the vectors.
            self.vectors._collection.upsert(
                ids=ids, embeddings=vectors, metadatas=metadatas, documents=documents
            )
        return ids

    def _search_widely(self, collection: Any) -> None:
        """Give the collection the configured search breadth (`Settings.search_ef`); it is
        kept with the collection and applies from the first search of a process."""
        wanted = self.settings.search_ef
        try:
            if (collection.configuration or {}).get("hnsw", {}).get("ef_search") != wanted:
                collection.modify(configuration={"hnsw": {"ef_search": wanted}})
        except Exception as e:  # a read-only store or an older server: it still searches
            log.warning("cannot set the vector search breadth to %s (%s)", wanted, e)

    # --- reading ---------------------------------------------------------------------------

    @property
    def vector_space(self) -> str:
        """The kind of vectors stored: "float32" or "int8" (see `embeddings.vector_space`)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='vector_space'").fetchone()
        return str(row[0])

    @property
    def generation(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0])

    def _select_in(self, sql: str, ids: Iterable[str]) -> list[sqlite3.Row]:
        """The rows of `sql` (whose `{marks}` is the list of ids), asked 500 ids at a time:
        SQLite limits how many parameters one statement takes."""
        wanted = list(dict.fromkeys(ids))
        rows: list[sqlite3.Row] = []
        with self._lock:
            for i in range(0, len(wanted), 500):
                part = wanted[i : i + 500]
                rows.extend(self._db.execute(sql.format(marks=",".join("?" * len(part))), part))
        return rows

    def get(self, article_id: str) -> Article | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM articles WHERE id=?", (article_id,)).fetchone()
        return _row_to_article(row) if row else None

    def articles(self, ids: Iterable[str]) -> dict[str, Article]:
        rows = self._select_in("SELECT * FROM articles WHERE id IN ({marks})", ids)
        return {row["id"]: _row_to_article(row) for row in rows}

    def list_articles(self) -> list[ArticleInfo]:
        query = """SELECT a.id, a.title, a.url, a.source, a.author, a.published, a.added_at,
                   (SELECT COUNT(*) FROM chunks c WHERE c.article_id = a.id) AS n
                   FROM articles a ORDER BY a.added_at, a.id"""
        with self._lock:
            rows = self._db.execute(query).fetchall()
        return [
            ArticleInfo(
                r["id"],
                r["title"],
                r["url"],
                r["source"],
                r["author"],
                r["published"],
                r["n"],
                r["added_at"],
            )
            for r in rows
        ]

    def days(self) -> dict[str, date | None]:
        """Each article's publication day (None when it has none), kept until the corpus changes."""
        generation = self.generation
        with self._lock:
            if self._days[0] != generation:
                rows = self._db.execute("SELECT id, published FROM articles")
                self._days = (generation, {r[0]: published_day(r[1]) for r in rows})
            return self._days[1]

    def newest_day(self, until: date | None = None) -> date | None:
        """The newest publication day in the store (on or before `until`, if given): what "last
        week" is relative to by default."""
        return max(
            (d for d in self.days().values() if d and not (until and d > until)), default=None
        )

    def articles_in(self, period: DateRange) -> set[str]:
        """The ids of the articles published in the period (undated ones never are)."""
        return {aid for aid, day in self.days().items() if period.contains(day)}

    def content_hashes(self, article_ids: Iterable[str]) -> dict[str, str]:
        """The content hash of each of these articles that is stored."""
        sql = "SELECT id, content_hash FROM articles WHERE id IN ({marks})"
        return {r[0]: r[1] for r in self._select_in(sql, article_ids)}

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM articles").fetchone()[0])

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, ChunkPlace]:
        """Where the stored chunks with these ids lie (unknown or stale ids are left out)."""
        sql = 'SELECT id, article_id, start, "end" FROM chunks WHERE id IN ({marks})'
        return {r[0]: ChunkPlace(r[0], r[1], r[2], r[3]) for r in self._select_in(sql, chunk_ids)}

    def duplicate_groups(self, article_ids: Iterable[str]) -> dict[str, list[str]]:
        """For articles that have near-duplicates: their group's members, the first stored first."""
        with self._lock:
            return self._duplicates.groups(article_ids)

    def status(self, article: Article) -> tuple[str, tuple[str, ...]]:
        """'unchanged', 'new' or 'replaced', with the ids of the articles it replaces."""
        with self._lock:
            row = self._db.execute(
                "SELECT content_hash FROM articles WHERE id=?", (article.id,)
            ).fetchone()
            if row and row[0] == article.content_hash:
                return "unchanged", ()
            replaced = {article.id} if row else set()
            if article.origin:
                for (old_id,) in self._db.execute(
                    "SELECT id FROM articles WHERE origin=? AND id<>?", (article.origin, article.id)
                ):
                    replaced.add(old_id)
        return ("replaced", tuple(sorted(replaced))) if replaced else ("new", ())

    # --- writing ---------------------------------------------------------------------------

    def _chunk_ids_of(self, article_ids: Iterable[str]) -> set[str]:
        ids: set[str] = set()
        for article_id in article_ids:
            rows = self._db.execute("SELECT id FROM chunks WHERE article_id=?", (article_id,))
            ids.update(r[0] for r in rows)
        return ids

    def _embed(self, batch: Sequence[Pending]) -> tuple[list[list[float]], dict[SentenceKey, Any]]:
        """The chunks' vectors, and each sentence's vector pooled from the chunk that holds it
        nearest its middle (a sentence carried over into the next chunk is in two)."""
        texts, spans, owners = [], [], []
        for item in batch:
            shift = len(index_text(item.article.title, ""))  # the chunk follows its headline
            for chunk in item.chunks:
                texts.append(index_text(item.article.title, chunk.text))
                spans.append(
                    [(a - chunk.start + shift, b - chunk.start + shift) for a, b in chunk.sentences]
                )
                owners.append(chunk)
        with_spans = getattr(self.embedder, "embed_with_spans", None)
        if with_spans is None:  # an embedder without token states: sentences are embedded later
            return self.embedder.embed_documents(texts), {}
        vectors, pooled = with_spans(texts, spans)
        best: dict[SentenceKey, tuple[float, Any]] = {}
        for chunk, sentence_vectors in zip(owners, pooled, strict=True):
            middle = (chunk.start + chunk.end) / 2
            for (a, b), vector in zip(chunk.sentences, sentence_vectors, strict=True):
                key = (chunk.article_id, a, b)
                off_centre = abs((a + b) / 2 - middle)
                if vector is not None and (key not in best or off_centre < best[key][0]):
                    best[key] = (off_centre, vector)
        return vectors, {key: v for key, (_, v) in best.items()}

    def embed(self, batch: Sequence[Pending]) -> Embedded:
        """Each article's chunk vectors and sentence vectors, from one model pass over the batch."""
        vectors, sentence_vectors = self._embed(batch)
        out: Embedded = {}
        at = 0
        for item in batch:
            out[item.article.id] = (vectors[at : at + len(item.chunks)], {})
            at += len(item.chunks)
        for key, vector in sentence_vectors.items():
            out[key[0]][1][key] = vector
        return out

    def write(self, batch: Sequence[Pending], embedded: Embedded | None = None) -> dict[str, str]:
        """Store a batch of articles (embedded now, unless `embedded` holds their vectors),
        replacing what each replaces.

        Returns the near-duplicates found: article id -> the article it repeats.
        """
        if not batch:
            return {}
        if embedded is None:  # the model runs before the lock: other writers need not wait
            embedded = self.embed(batch)
        if self.replica is not None:  # server mode: the server's records come first
            return self.replica.write(batch, embedded)
        with self._writing():
            self._catch_up()
            old_ids = {old for item in batch for old in item.replaces}
            new_ids = {item.article.id for item in batch}
            with self._lock, self._db:
                self._mark_unsettled(old_ids | new_ids)
            ids = self._upsert(batch, embedded)
            self._crash.reach("write-after-vectors")
            now = datetime.now(UTC).isoformat(timespec="seconds")
            repeats, stale = self._commit_rows(
                batch,
                {item.article.id: embedded[item.article.id][1] for item in batch},
                {item.article.id: now for item in batch},
            )
            self._crash.reach("write-after-commit")
            stale -= set(ids)
            if stale:
                self.vectors.delete(ids=sorted(stale))
            self._mark_settled()
        return repeats

    def _commit_rows(
        self,
        batch: Sequence[Pending],
        sentences: dict[str, dict[SentenceKey, Any]],
        added_at: dict[str, str],
    ) -> tuple[dict[str, str], set[str]]:
        """Write the batch's rows in one transaction; returns the near-duplicates found and
        the chunk ids the batch's and the replaced articles had (the embedded store deletes
        the vectors of those not written again)."""
        repeats: dict[str, str] = {}
        with self._lock, self._db:
            self._duplicates.sync(self.generation)
            old_ids = {old for item in batch for old in item.replaces}
            new_ids = {item.article.id for item in batch}
            # Also the batch's own ids: another process may have stored one since `status`.
            stale = self._chunk_ids_of(old_ids | new_ids)
            self._duplicates.forget(old_ids - new_ids)
            for old in old_ids:
                self._delete_rows(old)
            for item in batch:
                a = item.article
                self._db.execute(
                    "INSERT OR REPLACE INTO articles VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        a.id,
                        a.title,
                        a.text,
                        a.url,
                        a.source,
                        a.author,
                        a.published,
                        a.origin,
                        a.content_hash,
                        added_at[a.id],
                    ),
                )
                self._db.execute("DELETE FROM chunks WHERE article_id=?", (a.id,))
                self._db.executemany(
                    'INSERT INTO chunks (id, article_id, ordinal, start, "end") VALUES (?,?,?,?,?)',
                    [(c.id, c.article_id, c.ordinal, c.start, c.end) for c in item.chunks],
                )
                self._keep_sentence_vectors(a.id, sentences.get(a.id, {}))
                self._keep_sentence_spans(a.id, item.chunks)
                canonical = self._duplicates.assign(a.id, a.text)
                if canonical:
                    repeats[a.id] = canonical
            self._bump_generation()
            self._duplicates.synced(self.generation)
            # Set before the commit is seen, so no search of ours takes it for another's.
            self._vectors_generation = self.generation
        return repeats, stale

    def delete(self, article_ids: Iterable[str]) -> list[str]:
        """Delete articles with their chunks and vectors; returns the ids that existed."""
        if self.replica is not None:  # server mode: the server's records come first
            return self.replica.delete(article_ids)
        with self._writing():
            self._catch_up()
            existing, chunk_ids = self._delete_rows_of(article_ids, unsettle=True)
            if not existing:
                return []
            self._crash.reach("remove-after-commit")
            if chunk_ids:
                self.vectors.delete(ids=sorted(chunk_ids))
            self._mark_settled()
        return existing

    def _delete_rows_of(
        self, article_ids: Iterable[str], unsettle: bool = False
    ) -> tuple[list[str], set[str]]:
        """Delete the stored ones of these articles in one transaction (marking them unsettled
        first, if asked); returns their ids and their chunk ids (whose vectors the caller
        deletes)."""
        with self._lock, self._db:
            existing = [i for i in dict.fromkeys(article_ids) if self.get(i) is not None]
            if not existing:
                return [], set()
            chunk_ids = self._chunk_ids_of(existing)
            if unsettle:
                self._mark_unsettled(existing)
            for article_id in existing:
                self._delete_rows(article_id)
            self._duplicates.forget(existing)
            self._bump_generation()
            self._vectors_generation = self.generation
        return existing, chunk_ids

    def _keep_sentence_vectors(self, article_id: str, vectors: dict[SentenceKey, Any]) -> None:
        """Replace an article's sentence vectors with these, all its own (inside the caller's
        transaction)."""
        self._db.execute("DELETE FROM sentence_vectors WHERE article_id=?", (article_id,))
        self._db.executemany(
            "INSERT INTO sentence_vectors VALUES (?,?,?,?)",
            [(*key, np.asarray(v, dtype=np.float16).tobytes()) for key, v in vectors.items()],
        )

    def _keep_sentence_spans(self, article_id: str, chunks: Sequence[Chunk]) -> None:
        """Keep an article's sentences, those of its chunks (inside the caller's transaction)."""
        spans = sorted({span for chunk in chunks for span in chunk.sentences})
        self._db.execute("DELETE FROM sentence_spans WHERE article_id=?", (article_id,))
        if spans:
            blob = np.asarray(spans, dtype=np.int32).tobytes()
            self._db.execute("INSERT INTO sentence_spans VALUES (?,?)", (article_id, blob))

    def sentence_spans(self, article_ids: Iterable[str]) -> dict[str, list[tuple[int, int]]]:
        """The sentences of these articles as split when indexed, for those stored with them."""
        sql = "SELECT article_id, spans FROM sentence_spans WHERE article_id IN ({marks})"
        found: dict[str, list[tuple[int, int]]] = {}
        for article_id, blob in self._select_in(sql, article_ids):
            pairs = np.frombuffer(blob, dtype=np.int32).reshape(-1, 2).tolist()
            found[article_id] = [(a, b) for a, b in pairs]
        return found

    def without_sentence_vectors(self) -> list[str]:
        """Articles stored before sentence vectors were kept (answered more slowly)."""
        sql = "SELECT id FROM articles WHERE id NOT IN (SELECT article_id FROM sentence_vectors)"
        with self._lock:
            return [r[0] for r in self._db.execute(sql)]

    def stored(self, article_id: str) -> Pending | None:
        """A stored article with its stored chunks, each with its sentences, as when written."""
        article = self.get(article_id)
        if article is None:
            return None
        sql = 'SELECT id, ordinal, start, "end" FROM chunks WHERE article_id=? ORDER BY ordinal'
        with self._lock:
            rows = self._db.execute(sql, (article_id,)).fetchall()
        spans = sentence_spans(article.text, self.settings.chunk_chars)
        chunks = [
            Chunk(
                r["id"],
                article_id,
                r["ordinal"],
                r["start"],
                r["end"],
                article.text[r["start"] : r["end"]],
                tuple((a, b) for a, b in spans if r["start"] <= a and b <= r["end"]),
            )
            for r in rows
        ]
        return Pending(article, chunks)

    def add_sentence_vectors(self, batch: Sequence[Pending]) -> None:
        """Compute and keep the sentence vectors of stored articles (one model pass each)."""
        embedded = self.embed(batch)
        with self._writing(), self._lock, self._db:
            for item in batch:
                if self.get(item.article.id) == item.article:  # not replaced meanwhile
                    self._keep_sentence_vectors(item.article.id, embedded[item.article.id][1])
                    self._keep_sentence_spans(item.article.id, item.chunks)

    def _delete_rows(self, article_id: str) -> None:
        """Delete an article's rows (its vectors in Chroma are deleted after the commit)."""
        self._db.execute("DELETE FROM chunks WHERE article_id=?", (article_id,))
        self._db.execute("DELETE FROM sentence_vectors WHERE article_id=?", (article_id,))
        self._db.execute("DELETE FROM sentence_spans WHERE article_id=?", (article_id,))
        self._db.execute("DELETE FROM articles WHERE id=?", (article_id,))

    def sentence_vectors(self, keys: Sequence[SentenceKey]) -> dict[SentenceKey, Any]:
        """The stored vectors of these sentences (float32), for those that have one."""
        found: dict[SentenceKey, Any] = {}
        sql = 'SELECT vector FROM sentence_vectors WHERE article_id=? AND start=? AND "end"=?'
        with self._lock:
            for key in keys:
                row = self._db.execute(sql, key).fetchone()
                if row is not None:
                    found[key] = np.frombuffer(row[0], dtype=np.float16).astype(np.float32)
        return found

    def _bump_generation(self) -> None:
        self._db.execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'"
        )

    # --- searching -------------------------------------------------------------------------

    def dense_search(
        self, vector: list[float], n: int, period: DateRange | None = None
    ) -> list[tuple[str, float]]:
        """Chunk ids nearest to the vector, with cosine similarity, best first.

        With an active period, only chunks of articles published in it (a Chroma filter on the
        vectors' `day`, so the nearest `n` are found among those, not cut from the overall best).
        """
        if n <= 0:
            return []
        where = None
        if period is not None and period.active:
            self._ensure_vector_days()
            low, high = period.day_numbers()
            where = {"$and": [{"day": {"$gte": low}}, {"day": {"$lte": high}}]}
        if self.replica is not None:  # server mode: nothing to settle, nothing to reopen
            docs = self.vectors.similarity_search_by_vector_with_relevance_scores(
                vector, k=n, filter=where
            )
            docs = self.replica.current(docs)  # only the versions this cache holds
        else:
            self._settle_at_start()
            self._follow_other_writers()
            with self._lock:  # not while another thread reopens Chroma
                docs = self.vectors.similarity_search_by_vector_with_relevance_scores(
                    vector, k=n, filter=where
                )
        return [(doc.metadata["chunk_id"], 1.0 - float(distance)) for doc, distance in docs]

    def keyword_search(
        self, query: str, n: int, period: DateRange | None = None
    ) -> list[tuple[str, float]]:
        """Chunk ids that best match the query's words (BM25), best first; with an active
        period, only chunks of articles published in it."""
        self.refresh_keywords(wait=False)
        keep = None
        if period is not None and period.active:
            allowed = self.articles_in(period)
            keep = lambda chunk_id: _article_of(chunk_id) in allowed  # noqa: E731
        with self._lock:
            return self._keywords.search(query, n, keep)

    def _ensure_vector_days(self) -> None:
        """Give every vector of a store written before dates were indexed its article's day.

        Runs once per store, on the first date-filtered search: metadata only, no re-embedding,
        so much quicker than an import. Interrupted, it starts over next time.
        """
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='vector_days'").fetchone()
        if row and row[0] == "1":
            return
        with self._writing(), self._lock:
            days = self.days()
            rows = self._db.execute("SELECT id, article_id, ordinal FROM chunks").fetchall()
            collection = self.vectors._collection
            for i in range(0, len(rows), 1000):
                part = [Chunk(r[0], r[1], r[2], 0, 0, "") for r in rows[i : i + 1000]]
                collection.update(
                    ids=[c.id for c in part],
                    metadatas=[_chunk_metadata(c, days.get(c.article_id)) for c in part],
                )
            with self._db:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('vector_days', '1')")

    def term_weights(self, texts: list[str]) -> list[dict[str, float]]:
        """For each text, its index terms weighted by rarity (IDF) in the corpus and, as a
        few chunks more, in ordinary news (see Settings.rarity_background_chunks)."""
        self.refresh_keywords(wait=False)
        with self._lock:
            # The table is read once per process; after that this only wraps it.
            idf, usual = self._keywords.idf, background(self.settings.rarity_background_chunks)
            return [{t: idf(t, usual) for t in terms} for terms in self._keywords.terms(texts)]

    def refresh_keywords(self, wait: bool = True) -> None:
        """Bring the keyword index up to the current corpus: load the saved one, or rebuild it.

        Rebuilding writes, so it takes the write lock, but never waits for it: while another
        writer holds it, the index loaded so far serves (its chunks that are gone are dropped by
        the caller, new ones are found by meaning) and that writer rebuilds when it is done.
        With `wait=False` (searching) a rebuild runs in the background and the index loaded so
        far serves meanwhile, so no question waits for it; only a process whose index holds
        nothing yet builds it first.
        """
        rebuilding = self._rebuilding
        if wait and rebuilding is not None and rebuilding is not threading.current_thread():
            rebuilding.join()  # the write lock is this process's own: wait for that build
        generation = self.generation
        with self._lock:
            if self._keywords.generation == generation:
                return
            if self._keywords.saved_generation() not in (None, self._keywords.generation):
                self._keywords.load()  # another process saved a newer one
            if self._keywords.generation == generation:
                return
            if not wait and not self._keywords.empty:
                if self._rebuilding is None or not self._rebuilding.is_alive():
                    self._rebuilding = threading.Thread(
                        target=self._rebuild_keywords, name="keyword-index", daemon=True
                    )
                    self._rebuilding.start()
                return
        self._rebuild_keywords()

    def _rebuild_keywords(self) -> None:
        """Index every stored chunk's words anew and swap the index in (under the write lock;
        the store stays usable meanwhile: only reading the rows holds it)."""
        try:
            with self._writing(wait=False):
                with self._lock:
                    generation = self.generation  # another writer may have moved it on
                    if self._keywords.generation == generation:
                        return
                    if self._keywords.saved_generation() == generation and self._keywords.load():
                        return
                    texts = {
                        r[0]: (r[1], r[2])
                        for r in self._db.execute("SELECT id, title, text FROM articles")
                    }
                    rows = self._db.execute(
                        'SELECT id, article_id, start, "end" FROM chunks ORDER BY id'
                    ).fetchall()
                fresh = KeywordIndex(self._keywords.folder)
                fresh.build(
                    generation,
                    [r[0] for r in rows],
                    [index_text(texts[r[1]][0], texts[r[1]][1][r[2] : r[3]]) for r in rows],
                    before_swap=lambda: self._crash.reach("keywords-before-swap"),
                )
                with self._lock:
                    self._keywords = fresh
        except StoreBusy:
            return

    def close(self) -> None:
        if self._rebuilding is not None:
            self._rebuilding.join()
        with self._lock:
            self._db.close()
            if self._own_client is not None:
                self._vectors = None
                self._own_client.close()
                self._own_client = None
