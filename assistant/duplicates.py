"""Near-duplicate articles (a wire story run by several outlets): found by MinHash at ingestion.

Each article's MinHash signature is kept in SQLite; an article whose estimated overlap with
one already stored reaches the threshold joins that article's group. Groups are answered once:
retrieval keeps the best-ranked member and lists the others as "also in".
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # datasketch pulls in scipy (0.7 s): imported when articles are written
    from datasketch import LeanMinHash, MinHashLSH

PERMUTATIONS = 128
SHINGLE_WORDS = 5
_WORD = re.compile(r"\w+")

SCHEMA = """
CREATE TABLE IF NOT EXISTS signatures (article_id TEXT PRIMARY KEY, minhash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS duplicates (article_id TEXT PRIMARY KEY, canonical_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS duplicates_canonical ON duplicates(canonical_id);
"""


def signature(text: str) -> LeanMinHash:
    """The MinHash of the text's overlapping 5-word shingles (case and punctuation ignored)."""
    from datasketch import LeanMinHash, MinHash

    words = _WORD.findall(text.lower())
    shingles = {" ".join(words[i : i + SHINGLE_WORDS]) for i in range(max(1, len(words) - 4))}
    m = MinHash(num_perm=PERMUTATIONS)
    m.update_batch([s.encode("utf-8") for s in shingles])
    return LeanMinHash(m)


def _to_blob(m: LeanMinHash) -> bytes:
    buffer = bytearray(m.bytesize())
    m.serialize(buffer)  # datasketch's own format keeps the hashing scheme with the values
    return bytes(buffer)


def _from_blob(blob: bytes) -> LeanMinHash:
    from datasketch import LeanMinHash

    return LeanMinHash.deserialize(blob)


class NearDuplicates:
    """The groups of near-duplicate articles, kept in the store's database."""

    def __init__(self, db: sqlite3.Connection, threshold: float) -> None:
        self.db = db
        self.threshold = threshold
        db.executescript(SCHEMA)
        self._lsh: MinHashLSH | None = None
        self._generation: int | None = None

    def sync(self, generation: int) -> None:
        """Before assigning: rebuild the LSH index if the corpus changed since we last saw it."""
        if self._lsh is not None and generation == self._generation:
            return
        from datasketch import MinHashLSH

        self._lsh = MinHashLSH(threshold=self.threshold, num_perm=PERMUTATIONS)
        with self._lsh.insertion_session() as session:
            for article_id, blob in self.db.execute("SELECT article_id, minhash FROM signatures"):
                session.insert(article_id, _from_blob(blob))
        self._generation = generation

    def synced(self, generation: int) -> None:
        """After our own write: the index already holds it, no rebuild needed."""
        if self._lsh is not None:
            self._generation = generation

    def assign(self, article_id: str, text: str) -> str | None:
        """Record the article's signature; return the canonical article it duplicates, if any.

        Call inside the store's write transaction, after `sync`.
        """
        self._drop(article_id)
        m = signature(text)
        if self._lsh is None:
            raise RuntimeError("NearDuplicates.sync must be called before assign")
        best: tuple[float, str] | None = None
        for other in self._lsh.query(m):
            row = self.db.execute(
                "SELECT minhash FROM signatures WHERE article_id=?", (other,)
            ).fetchone()
            similarity = m.jaccard(_from_blob(row[0])) if row else 0.0
            if similarity >= self.threshold and (best is None or similarity > best[0]):
                best = (similarity, other)
        self.db.execute("INSERT INTO signatures VALUES (?, ?)", (article_id, _to_blob(m)))
        self._lsh.insert(article_id, m)
        if best is None:
            return None
        canonical = self.canonical(best[1])
        if canonical == article_id:  # a re-added canonical matching its own group
            return None
        self.db.execute("INSERT INTO duplicates VALUES (?, ?)", (article_id, canonical))
        # A re-added article that led a group of its own brings its members along.
        self.db.execute(
            "UPDATE duplicates SET canonical_id=? WHERE canonical_id=?", (canonical, article_id)
        )
        return canonical

    def _drop(self, article_id: str) -> None:
        self.db.execute("DELETE FROM signatures WHERE article_id=?", (article_id,))
        self.db.execute("DELETE FROM duplicates WHERE article_id=?", (article_id,))
        if self._lsh is not None and article_id in self._lsh:
            self._lsh.remove(article_id)

    def canonical(self, article_id: str) -> str:
        row = self.db.execute(
            "SELECT canonical_id FROM duplicates WHERE article_id=?", (article_id,)
        ).fetchone()
        return str(row[0]) if row else article_id

    def forget(self, article_ids: Iterable[str]) -> None:
        """Drop removed articles from their groups; a removed canonical hands over to the next."""
        for article_id in article_ids:
            self._drop(article_id)
            heir = self.db.execute(
                "SELECT article_id FROM duplicates WHERE canonical_id=? ORDER BY rowid LIMIT 1",
                (article_id,),
            ).fetchone()
            if heir:
                self.db.execute("DELETE FROM duplicates WHERE article_id=?", (heir[0],))
                self.db.execute(
                    "UPDATE duplicates SET canonical_id=? WHERE canonical_id=?",
                    (heir[0], article_id),
                )

    def groups(self, article_ids: Iterable[str]) -> dict[str, list[str]]:
        """For each of these articles in a group: all members of its group, canonical first."""
        out: dict[str, list[str]] = {}
        for article_id in dict.fromkeys(article_ids):
            canonical = self.canonical(article_id)
            members = [
                r[0]
                for r in self.db.execute(
                    "SELECT article_id FROM duplicates WHERE canonical_id=? ORDER BY rowid",
                    (canonical,),
                )
            ]
            if members:
                out[article_id] = [canonical, *members]
        return out
