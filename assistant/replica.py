"""Server mode: every durable byte on the Chroma server; the data folder is a cache of it.

With ASSISTANT_CHROMA_URL the store is three collections on the server:

- `<collection>`: the chunk vectors, id `<chunk id>@<content hash>`, metadata `version` = the
  article's content hash. A new version's vectors never overwrite the live version's.
- `<collection>_sentences`: one entry per article version, id `<article id>@<content hash>`:
  its sentences' vectors (float16, base64), kept apart so that listing records stays light.
- `<collection>_articles`: one record per article, the commit point. Its document is the text;
  its metadata the article's fields, its chunks' offsets and a `stamp` (the server's clock when
  written). A removed article leaves a tombstone (`op` "remove"), so removals are changes that
  can be read like any other.

A write goes: vectors of the new version, then the records (the commit), then the local cache,
then the previous version's vectors. A process killed at any point leaves every record whole;
readers use only vectors whose version is the one their cache holds. Each process's SQLite and
keyword index mirror the records: filled on first use, then caught up before answering from the
records stamped since the last look (see docs/scale-out.md for the choices and their bounds).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from assistant.articles import Article
from assistant.chunking import Chunk, sentence_spans
from assistant.dates import published_day
from assistant.store import (
    Embedded,
    Pending,
    SentenceKey,
    StoreBusy,
    StoreError,
    _chunk_metadata,
    index_text,
)

if TYPE_CHECKING:
    from assistant.store import Store

log = logging.getLogger(__name__)

RECORDS = "{}_articles"
SENTENCES = "{}_sentences"
_FIELDS = ("url", "source", "author", "published", "origin")  # optional: Chroma has no null
# A live record's other keys. Chroma's upsert merges metadata: a tombstone sets these to None
# (which deletes a key) and the text to "", so nothing of a removed article stays on the server.
_RECORD_KEYS = ("position", "title", "content_hash", "added_at", "chunks", *_FIELDS)
_PAGE = 100  # records fetched with their texts per request
_LIST_PAGE = 1000  # records listed (metadata only) per request


def vector_id(chunk_id: str, version: str) -> str:
    """A chunk vector's id: a version's vectors never overwrite another version's."""
    return f"{chunk_id}@{version}"


def _slot(record_id: str) -> list[float]:
    """The records' one-number embedding (Chroma needs one; nothing searches it)."""
    return [zlib.crc32(record_id.encode()) / 2**32]


def _encode_sentences(vectors: dict[SentenceKey, Any]) -> dict[str, str]:
    if not vectors:
        return {}
    keys = sorted(vectors)
    matrix = np.stack([np.asarray(vectors[k], dtype=np.float16) for k in keys])
    return {
        "sentence_spans": json.dumps([[a, b] for _, a, b in keys]),
        "sentence_vectors": base64.b64encode(matrix.tobytes()).decode("ascii"),
    }


def _decode_sentences(article_id: str, meta: dict[str, Any]) -> dict[SentenceKey, Any]:
    if "sentence_spans" not in meta:
        return {}
    spans = json.loads(meta["sentence_spans"])
    raw = np.frombuffer(base64.b64decode(meta["sentence_vectors"]), dtype=np.float16)
    matrix = raw.reshape(len(spans), -1)
    return {(article_id, a, b): row for (a, b), row in zip(spans, matrix, strict=True)}


def record_metadata(
    item: Pending,
    added_at: str,
    stamp: int,
    writer: str,
    position: int = 0,
) -> dict[str, Any]:
    """A live article's record metadata: everything but its text and its vectors."""
    a = item.article
    meta: dict[str, Any] = {
        "op": "add",
        "stamp": stamp,
        "position": position,  # in its batch: replicas apply a batch in the writer's order
        "writer": writer,
        "title": a.title,
        "content_hash": a.content_hash,
        "added_at": added_at,
        "chunks": json.dumps([[c.start, c.end] for c in item.chunks]),
    }
    # Every field, None too: upsert merges metadata, and None deletes what a previous version had.
    meta.update({f: getattr(a, f) for f in _FIELDS})
    return meta


def from_record(article_id: str, text: str, meta: dict[str, Any], max_chars: int) -> Pending:
    """The article and its chunks, as a live record holds them, each chunk with its sentences
    split as the writer's chunker split them (the same text and `max_chars`, the same split)."""
    article = Article(
        id=article_id, title=meta["title"], text=text, **{f: meta.get(f) for f in _FIELDS}
    )
    spans = sentence_spans(text, max_chars)
    chunks = [
        Chunk(
            f"{article_id}:{n}",
            article_id,
            n,
            start,
            end,
            text[start:end],
            tuple((a, b) for a, b in spans if start <= a and b <= end),
        )
        for n, (start, end) in enumerate(json.loads(meta["chunks"]))
    ]
    return Pending(article, chunks)


class Replica:
    """The article records on the Chroma server, and this process's cache kept in step."""

    def __init__(self, store: Store, client: Any) -> None:
        self.store = store
        self.settings = store.settings
        self.client = client
        space = store.vector_space
        self.records = client.get_or_create_collection(
            RECORDS.format(self.settings.collection),
            metadata={"vector_space": space},
            embedding_function=None,
        )
        self.sentences = client.get_or_create_collection(
            SENTENCES.format(self.settings.collection), embedding_function=None
        )
        held = (self.records.metadata or {}).get("vector_space", space)
        if held != space:
            engine = "onnx-int8" if held == "int8" else "onnx"
            raise StoreError(
                f"the Chroma server's collection {self.settings.collection!r} holds {held} "
                f"vectors and this process makes {space} ones; set "
                f"ASSISTANT_EMBEDDING_ENGINE={engine}"
            )
        self.writer = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.RLock()
        self._looked = -float("inf")  # time.monotonic() of the last look at the server

    @property
    def chunks(self) -> Any:
        return self.store.vectors._collection

    def now(self) -> int:
        """The server's clock in nanoseconds: one clock for every writer, so no skew."""
        return int(self.client.heartbeat())

    # --- writing ---------------------------------------------------------------------------

    def write(self, batch: Sequence[Pending], embedded: Embedded) -> dict[str, str]:
        """Store a batch: new vectors, the records (the commit), the cache, old vectors out.

        Returns the near-duplicates found: article id -> the article it repeats.
        """
        # The folder's write lock: the processes sharing this cache folder take turns.
        with self._lock, self.store._writing():
            self.put_vectors(batch, embedded)
            self.store._crash.reach("write-after-vectors")
            previous, added_at = self.commit(batch, embedded)
            self.store._crash.reach("write-after-commit")
            repeats, _ = self.store._commit_rows(
                batch,
                {item.article.id: embedded[item.article.id][1] for item in batch},
                {item.article.id: added_at for item in batch},
            )
            self._delete_versions(previous)
            return repeats

    def put_vectors(self, batch: Sequence[Pending], embedded: Embedded) -> None:
        """Write step 1: the chunk and sentence vectors of the new versions, beside the live
        ones (their ids hold the content hash)."""
        stamp = self.now()
        ids, vectors, metadatas, documents = [], [], [], []
        for item in batch:
            day = published_day(item.article.published)
            version = item.article.content_hash
            for chunk, vector in zip(item.chunks, embedded[item.article.id][0], strict=True):
                ids.append(vector_id(chunk.id, version))
                vectors.append(vector)
                meta = {**_chunk_metadata(chunk, day), "version": version, "stamp": stamp}
                metadatas.append(meta)
                documents.append(index_text(item.article.title, chunk.text))
        if ids:
            self.chunks.upsert(
                ids=ids, embeddings=vectors, metadatas=metadatas, documents=documents
            )
        entries = {
            f"{item.article.id}@{item.article.content_hash}": {
                "article_id": item.article.id,
                "version": item.article.content_hash,
                "stamp": stamp,
                **_encode_sentences(embedded[item.article.id][1]),
            }
            for item in batch
            if embedded[item.article.id][1]
        }
        if entries:
            self.sentences.upsert(
                ids=list(entries),
                metadatas=list(entries.values()),
                embeddings=[_slot(i) for i in entries],
            )

    def commit(self, batch: Sequence[Pending], embedded: Embedded) -> tuple[dict[str, str], str]:
        """Write step 2, the commit: the new versions' records, and tombstones for the articles
        they replace under other ids. Returns the versions superseded (article id -> content
        hash, their vectors to delete) and the time the articles were added."""
        versions = {item.article.id: item.article.content_hash for item in batch}
        touched = set(versions) | {old for item in batch for old in item.replaces}
        before = self._live(touched)
        added_at = datetime.now(UTC).isoformat(timespec="seconds")
        stamp = self.now()
        gone = sorted(touched - set(versions))  # replaced by an article with another id
        self.records.upsert(
            ids=[*versions, *gone],
            documents=[item.article.text for item in batch] + [""] * len(gone),
            metadatas=[
                record_metadata(item, added_at, stamp, self.writer, n)
                for n, item in enumerate(batch)
            ]
            + [self._tombstone(stamp)] * len(gone),
            embeddings=[_slot(i) for i in [*versions, *gone]],
        )
        return {aid: old for aid, old in before.items() if versions.get(aid) != old}, added_at

    def delete(self, article_ids: Iterable[str]) -> list[str]:
        """Remove articles: tombstones (the commit), the cache, then their vectors."""
        wanted = list(dict.fromkeys(article_ids))
        with self._lock, self.store._writing():
            live = self._live(wanted)
            existing = [i for i in wanted if i in live]
            if existing:
                stamp = self.now()
                self.records.upsert(
                    ids=existing,
                    documents=[""] * len(existing),
                    metadatas=[self._tombstone(stamp)] * len(existing),
                    embeddings=[_slot(i) for i in existing],
                )
            self.store._crash.reach("remove-after-commit")
            self.store._delete_rows_of(wanted)  # and any the cache still had
            if existing:
                self.chunks.delete(where={"article_id": {"$in": existing}})
                self.sentences.delete(where={"article_id": {"$in": existing}})
            return existing

    def _tombstone(self, stamp: int) -> dict[str, Any]:
        return {
            "op": "remove",
            "stamp": stamp,
            "writer": self.writer,
            **dict.fromkeys(_RECORD_KEYS),
        }

    def _live(self, article_ids: Iterable[str]) -> dict[str, str]:
        """The content hash of each of these articles that is live on the server."""
        wanted = sorted(set(article_ids))
        found: dict[str, str] = {}
        for i in range(0, len(wanted), _LIST_PAGE):
            got = self.records.get(ids=wanted[i : i + _LIST_PAGE], include=["metadatas"])
            for rid, meta in zip(got["ids"], got["metadatas"], strict=True):
                if meta.get("op") == "add":
                    found[rid] = meta["content_hash"]
        return found

    def _delete_versions(self, versions: dict[str, str]) -> None:
        """Delete the vectors of these article versions (article id -> content hash)."""
        conditions = [
            {"$and": [{"article_id": aid}, {"version": version}]}
            for aid, version in sorted(versions.items())
        ]
        for i in range(0, len(conditions), 100):
            part = conditions[i : i + 100]
            self.chunks.delete(where=part[0] if len(part) == 1 else {"$or": part})
        if versions:
            self.sentences.delete(ids=[f"{aid}@{version}" for aid, version in versions.items()])

    def sweep(self, older_than: float = 3600.0) -> int:
        """Delete the vectors no live record uses, written more than `older_than` seconds ago
        (younger ones may be another process's write in flight); returns how many.

        Such vectors are left by a writer killed between its steps; readers ignore them, so
        this only frees space (and dense-search slots). It reads every vector's metadata.
        """
        with self._lock:
            cutoff = self.now() - int(older_than * 1e9)
            live = {
                rid: meta["content_hash"]
                for rid, meta in self._listed(self.records, None).items()
                if meta.get("op") == "add"
            }
            unused = [
                vid
                for vid, meta in self._listed(self.chunks, None).items()
                if live.get(meta.get("article_id", "")) != meta.get("version")
                and int(meta.get("stamp", 0)) < cutoff
            ]
            for i in range(0, len(unused), _LIST_PAGE):
                self.chunks.delete(ids=unused[i : i + _LIST_PAGE])
            # Sentence entries are listed by id only (their metadata is large), then checked.
            suspects = [
                sid
                for sid in self._ids(self.sentences)
                if live.get(sid.rsplit("@", 1)[0]) != sid.rsplit("@", 1)[1]
            ]
            old: list[str] = []
            for i in range(0, len(suspects), _LIST_PAGE):
                got = self.sentences.get(ids=suspects[i : i + _LIST_PAGE], include=["metadatas"])
                old.extend(
                    sid
                    for sid, meta in zip(got["ids"], got["metadatas"], strict=True)
                    if int(meta.get("stamp", 0)) < cutoff
                )
            if old:
                self.sentences.delete(ids=old)
            return len(unused) + len(old)

    # --- reading ---------------------------------------------------------------------------

    def current(self, hits: list[tuple[Any, float]]) -> list[tuple[Any, float]]:
        """The dense hits whose vectors are of the version this cache holds: vectors of a
        version being written, or of one replaced since, are left out."""
        held = self.store.content_hashes(doc.metadata["article_id"] for doc, _ in hits)
        return [
            (doc, score)
            for doc, score in hits
            if doc.metadata.get("version") == held.get(doc.metadata["article_id"])
        ]

    # --- keeping the cache in step ---------------------------------------------------------

    def catch_up(self, force: bool = False) -> None:
        """Apply the changes stamped since the last look (all records on first use).

        A look that finds changes applies them holding the folder's write lock; if another
        process sharing the folder holds it past `lock_timeout`, this look is given up (the
        cache serves as it is) and the next call looks again.
        """
        with self._lock:
            if not force and time.monotonic() - self._looked < self.settings.sync_interval:
                return
            looked = time.monotonic()
            now = self.now()
            try:
                if self._meta("replica_of") != str(self.records.id):
                    with self.store._writing():
                        self._full_sync()
                else:
                    since = int(self._meta("replica_position") or 0)
                    since -= int(self.settings.sync_window * 1e9)
                    self._apply(self._listed(self.records, {"stamp": {"$gte": since}}))
            except StoreBusy as e:
                log.warning("changes on the Chroma server not applied yet: %s", e)
                return
            self._set_meta("replica_position", str(now))
            self._looked = looked

    def _full_sync(self) -> None:
        """Make the cache hold exactly the server's live records."""
        listed = self._listed(self.records, None)
        live = {rid for rid, meta in listed.items() if meta.get("op") == "add"}
        with self.store._lock:
            local = [r[0] for r in self.store._db.execute("SELECT id FROM articles")]
        unknown = [i for i in local if i not in live]
        if unknown and self._meta("replica_of") is None:
            raise StoreError(
                f"{self.settings.data_dir}: holds {len(unknown)} articles that the Chroma "
                f"server's collection {self.settings.collection!r} has no records of (written "
                "before server mode kept every article on the server, or for another server); "
                "use an empty ASSISTANT_DATA_DIR and add those articles again"
            )
        self.store._delete_rows_of(unknown)
        self._apply(listed)
        self._set_meta("replica_of", str(self.records.id))

    def _ids(self, collection: Any) -> list[str]:
        out: list[str] = []
        while True:
            got = collection.get(limit=_LIST_PAGE, offset=len(out), include=[])
            out.extend(got["ids"])
            if len(got["ids"]) < _LIST_PAGE:
                return out

    def _listed(self, collection: Any, where: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
        """Id -> metadata of a collection's entries matching `where` (all if None)."""
        out: dict[str, dict[str, Any]] = {}
        offset = 0
        while True:
            got = collection.get(
                where=where, limit=_LIST_PAGE, offset=offset, include=["metadatas"]
            )
            out.update(zip(got["ids"], got["metadatas"], strict=True))
            if len(got["ids"]) < _LIST_PAGE:
                return out
            offset += _LIST_PAGE

    def _apply(self, changed: dict[str, dict[str, Any]]) -> None:
        """Bring the cache's copy of these records up to the server's (no re-embedding)."""
        held = self.store.content_hashes(changed)
        removed = [rid for rid, meta in changed.items() if meta.get("op") != "add" and rid in held]
        # In the order they were written, so near-duplicates group as they did for the writer.
        fetch = sorted(
            (
                rid
                for rid, meta in changed.items()
                if meta.get("op") == "add" and held.get(rid) != meta.get("content_hash")
            ),
            key=lambda rid: (changed[rid]["stamp"], changed[rid].get("position", 0), rid),
        )
        if not removed and not fetch:  # the usual look: nothing to write, no lock taken
            return
        with self.store._writing():  # reentrant: a full sync holds it already
            self._fetch(fetch, removed)

    def _fetch(self, fetch: list[str], removed: list[str]) -> None:
        """Fetch these records (in this order) into the cache and drop the removed ones (call
        holding the folder's write lock)."""
        for i in range(0, len(fetch), _PAGE):
            got = self.records.get(ids=fetch[i : i + _PAGE], include=["metadatas", "documents"])
            order = {rid: n for n, rid in enumerate(fetch[i : i + _PAGE])}
            found = sorted(
                zip(got["ids"], got["documents"], got["metadatas"], strict=True),
                key=lambda record: order[record[0]],
            )
            batch, added_at = [], {}
            for rid, text, meta in found:
                if meta.get("op") != "add":  # removed since it was listed
                    removed.append(rid)
                    continue
                item = from_record(rid, text, meta, self.settings.chunk_chars)
                if item.article.content_hash != meta["content_hash"]:
                    log.warning("record %s does not match its content hash; skipped", rid)
                    continue
                batch.append(item)
                added_at[rid] = meta["added_at"]
            sentences = self._sentences_of(batch)
            if batch:
                self.store._commit_rows(batch, sentences, added_at)
        if removed:
            self.store._delete_rows_of(removed)

    def _sentences_of(self, batch: Sequence[Pending]) -> dict[str, dict[SentenceKey, Any]]:
        """The sentence vectors of these article versions, for those that have them."""
        if not batch:
            return {}
        ids = [f"{item.article.id}@{item.article.content_hash}" for item in batch]
        got = self.sentences.get(ids=ids, include=["metadatas"])
        return {
            meta["article_id"]: _decode_sentences(meta["article_id"], meta)
            for meta in got["metadatas"]
        }

    def _meta(self, key: str) -> str | None:
        with self.store._lock:
            row = self.store._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        with self.store._lock, self.store._db:
            self.store._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
