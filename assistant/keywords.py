"""Keyword search: a persisted bm25s index over the chunks, rebuilt when the corpus changes.

On disk: `current.json` names the folder holding the index in use; a new index is written to a
folder of its own and `current.json` replaced in one rename, so a reader never finds it missing
or half-written. Writers take turns (the store holds the data folder's write lock).
"""

from __future__ import annotations

import gzip
import json
import math
import os
import secrets
import shutil
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

POINTER = "current.json"  # names the folder of the index in use
RARITY_FILE = Path(__file__).resolve().parent / "models" / "rarity.json.gz"


@dataclass(frozen=True)
class Background:
    """How common each term is in ordinary news (the share of paragraphs holding it), counted
    as `chunks` chunks beside the collection's own: in a few articles, rarity says little."""

    paragraphs: int
    chunks: float
    df: Mapping[str, int] = field(repr=False)

    def share(self, term: str) -> float:
        return self.df.get(term, 0) / self.paragraphs


@cache
def _rarity_table(path: Path) -> tuple[int, Mapping[str, int]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        table = json.load(f)
    return int(table["paragraphs"]), table["df"]


def background(chunks: float, path: Path = RARITY_FILE) -> Background | None:
    """The shipped background (built by `make train`, train/rarity.py) weighing as `chunks`
    chunks; None for 0. Read once per process."""
    if chunks <= 0:
        return None
    paragraphs, df = _rarity_table(path)
    return Background(paragraphs, chunks, df)


def _sync_dir(folder: Path) -> None:
    if os.name == "nt":  # Windows cannot open a folder to flush it; renames there are durable
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_tree(folder: Path) -> None:
    """Flush every file under `folder`, and the folders themselves, to disk."""
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                os.fsync(f.fileno())
        _sync_dir(Path(root))


def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


class KeywordIndex:
    """BM25 over chunk texts; saved under `folder` with the corpus generation it reflects."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.generation = -1
        self._retriever: Any = None
        self._chunk_ids: list[str] = []
        self._df: dict[str, int] = {}
        self._stem = _stemmer()

    @property
    def empty(self) -> bool:
        """Whether it indexes nothing (never built or loaded, or built over no chunks)."""
        return not self._chunk_ids

    def _tokenize(self, texts: list[str]) -> Any:
        import bm25s

        return bm25s.tokenize(texts, stopwords="en", stemmer=self._stem, show_progress=False)

    def build(
        self,
        generation: int,
        chunk_ids: list[str],
        texts: list[str],
        before_swap: Callable[[], None] | None = None,
    ) -> None:
        """Index these chunks and save the index (see `_save`); `before_swap` runs once the new
        index is on disk, before it replaces the old (a test hook)."""
        import bm25s

        self._chunk_ids = list(chunk_ids)
        self._retriever = None
        self._df = {}
        if texts:
            tokens = self._tokenize(texts)
            retriever = bm25s.BM25()
            retriever.index(tokens, show_progress=False)
            self._retriever = retriever
            id_to_term = {i: t for t, i in tokens.vocab.items()}
            counts: Counter[int] = Counter()
            for doc in tokens.ids:
                counts.update(set(doc))
            self._df = {id_to_term[i]: n for i, n in counts.items()}
        self.generation = generation
        self._save(before_swap)

    def _save(self, before_swap: Callable[[], None] | None) -> None:
        """Write the index beside the current one, flush it to disk, then point to it with one
        rename: a reader, in this process or another, sees the old index or the new, whole."""
        self.folder.mkdir(parents=True, exist_ok=True)
        previous = self._pointer()
        name = f"{self.generation}-{secrets.token_hex(4)}"
        staging = self.folder / name
        staging.mkdir()
        if self._retriever is not None:
            self._retriever.save(str(staging / "bm25"), show_progress=False)
        meta = {"generation": self.generation, "chunk_ids": self._chunk_ids, "df": self._df}
        (staging / "meta.json").write_text(json.dumps(meta))
        _sync_tree(staging)
        if before_swap is not None:
            before_swap()
        pointer = self.folder / (POINTER + ".new")
        with pointer.open("w") as f:
            json.dump({"name": name, "generation": self.generation}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(pointer, self.folder / POINTER)
        _sync_dir(self.folder)
        # The index just replaced stays one more round, for a reader still loading it.
        keep = {POINTER, name, previous[0] if previous else ""}
        for entry in self.folder.iterdir():
            if entry.name not in keep:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        # Left by versions that swapped whole folders.
        for leftover in (".new", ".old"):
            shutil.rmtree(self.folder.with_name(self.folder.name + leftover), ignore_errors=True)

    def _pointer(self) -> tuple[str, int] | None:
        """The saved index's folder name and generation, if there is one."""
        try:
            saved = json.loads((self.folder / POINTER).read_text())
            return str(saved["name"]), int(saved["generation"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def saved_generation(self) -> int | None:
        """The generation of the saved index (None if there is none), without loading it."""
        saved = self._pointer()
        return saved[1] if saved else None

    def load(self) -> bool:
        """Load the saved index; False when there is none or it is unreadable."""
        import bm25s

        # A writer in another process may swap in a newer index and drop this one meanwhile.
        for _ in range(3):
            saved = self._pointer()
            if saved is None:
                return False
            folder = self.folder / saved[0]
            try:
                meta = json.loads((folder / "meta.json").read_text())
                bm25_dir = folder / "bm25"
                retriever = (
                    bm25s.BM25.load(str(bm25_dir), show_progress=False)
                    if bm25_dir.exists()
                    else None
                )
            except (OSError, ValueError, KeyError):
                continue
            self._retriever = retriever
            self._chunk_ids = meta["chunk_ids"]
            self._df = meta["df"]
            self.generation = int(meta["generation"])
            return True
        return False

    def search(
        self, query: str, n: int, keep: Callable[[str], bool] | None = None
    ) -> list[tuple[str, float]]:
        """The best `n` chunk ids for the query with their BM25 scores, best first; only chunk
        ids that `keep` accepts, if given (a mask on the scores, so the best `n` of those)."""
        if self._retriever is None or not self._chunk_ids:
            return []
        tokens = self._tokenize([query])
        if not tokens.vocab:
            return []
        k = min(n, len(self._chunk_ids))
        mask = None
        if keep is not None:
            import numpy as np

            mask = np.fromiter((keep(c) for c in self._chunk_ids), dtype=np.float32)
            if not mask.any():
                return []
        docs, scores = self._retriever.retrieve(
            tokens, k=k, show_progress=False, n_threads=1, weight_mask=mask
        )
        hits = []
        for doc, score in zip(docs[0], scores[0], strict=True):
            if score > 0:
                hits.append((self._chunk_ids[int(doc)], float(score)))
        return hits

    def terms(self, texts: list[str]) -> list[list[str]]:
        """The stemmed, stop-word-free terms of each text, as the index sees them."""
        import bm25s

        out = bm25s.tokenize(
            texts, stopwords="en", stemmer=self._stem, show_progress=False, return_ids=False
        )
        return [list(t) for t in out]

    def idf(self, term: str, usual: Background | None = None) -> float:
        """Inverse document frequency of a stemmed term over the chunks (high = rare), over
        `usual`'s chunks of ordinary news as well when given."""
        n: float = len(self._chunk_ids)
        df: float = self._df.get(term, 0)
        if usual is not None:
            n += usual.chunks
            df += usual.chunks * usual.share(term)
        n = max(n, 1)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))
