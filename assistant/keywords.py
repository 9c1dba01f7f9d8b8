"""Keyword search: a persisted bm25s index over the chunks, rebuilt when the corpus changes."""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any


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

    def _tokenize(self, texts: list[str]) -> Any:
        import bm25s

        return bm25s.tokenize(texts, stopwords="en", stemmer=self._stem, show_progress=False)

    def build(self, generation: int, chunk_ids: list[str], texts: list[str]) -> None:
        """Index these chunks and save the index atomically (write aside, then swap)."""
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
        staging = self.folder.with_name(self.folder.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        if self._retriever is not None:
            self._retriever.save(str(staging / "bm25"))
        meta = {"generation": generation, "chunk_ids": self._chunk_ids, "df": self._df}
        (staging / "meta.json").write_text(json.dumps(meta))
        old = self.folder.with_name(self.folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.folder.exists():
            self.folder.rename(old)
        staging.rename(self.folder)
        shutil.rmtree(old, ignore_errors=True)

    def load(self) -> bool:
        """Load the saved index; False when there is none or it is unreadable."""
        import bm25s

        try:
            meta = json.loads((self.folder / "meta.json").read_text())
            bm25_dir = self.folder / "bm25"
            retriever = bm25s.BM25.load(str(bm25_dir)) if bm25_dir.exists() else None
        except (OSError, ValueError, KeyError):
            return False
        self._retriever = retriever
        self._chunk_ids = meta["chunk_ids"]
        self._df = meta["df"]
        self.generation = int(meta["generation"])
        return True

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

    def idf(self, term: str) -> float:
        """Inverse document frequency of a stemmed term over the chunks (high = rare)."""
        n = max(len(self._chunk_ids), 1)
        df = self._df.get(term, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))
