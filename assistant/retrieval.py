"""Retrieval: dense search in Chroma fused with BM25 keyword search by reciprocal rank."""

from __future__ import annotations

from dataclasses import dataclass

from assistant.articles import Article
from assistant.dates import DateRange
from assistant.settings import Settings
from assistant.store import Store


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its scores; `text == article.text[start:end]`."""

    article_id: str
    chunk_id: str
    text: str
    start: int
    end: int
    score: float  # fused (reciprocal rank) score
    dense: float | None  # cosine similarity to the query, if found by dense search
    keyword: float | None  # BM25 score, if found by keyword search
    title: str
    source: str | None
    url: str | None
    published: str | None


def reciprocal_rank_fusion(
    rankings: list[list[str]], weights: list[float], k: int
) -> list[tuple[str, float]]:
    """Fuse ranked id lists: score = sum of weight / (k + rank), best first."""
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


class HybridRetriever:
    """Finds the passages for a query from both indexes of a store."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def search(
        self,
        query: str,
        k: int | None = None,
        vector: list[float] | None = None,
        period: DateRange | None = None,
    ) -> list[Passage]:
        """The best `k` passages for the query, best first.

        With a period, only passages from articles published in it; with a soft period, those
        first and then the others.
        """
        k = k or self.settings.top_k
        n = max(self.settings.candidates, k)
        if vector is None:
            vector = self.store.embedder.embed_query(query)
        strict = period if period is not None and period.active and not period.soft else None
        dense = self.store.dense_search(vector, n, strict)
        keyword = self.store.keyword_search(query, n, strict)
        chunks = self.store.chunks([cid for cid, _ in dense] + [cid for cid, _ in keyword])
        # Vectors whose article is gone (an interrupted write) are not in `chunks`: skip them.
        dense = [(cid, s) for cid, s in dense if cid in chunks]
        keyword = [(cid, s) for cid, s in keyword if cid in chunks]
        fused = reciprocal_rank_fusion(
            [[cid for cid, _ in dense], [cid for cid, _ in keyword]],
            [self.settings.dense_weight, self.settings.keyword_weight],
            self.settings.rrf_k,
        )
        if period is not None and period.active and period.soft:
            days = self.store.days()
            fused.sort(key=lambda f: not period.contains(days.get(chunks[f[0]].article_id)))
        fused = fused[:k]
        dense_scores, keyword_scores = dict(dense), dict(keyword)
        articles: dict[str, Article] = self.store.articles(
            chunks[cid].article_id for cid, _ in fused
        )
        passages = []
        for cid, score in fused:
            chunk = chunks[cid]
            article = articles[chunk.article_id]
            passages.append(
                Passage(
                    article_id=chunk.article_id,
                    chunk_id=cid,
                    text=chunk.text,
                    start=chunk.start,
                    end=chunk.end,
                    score=score,
                    dense=dense_scores.get(cid),
                    keyword=keyword_scores.get(cid),
                    title=article.title,
                    source=article.source,
                    url=article.url,
                    published=article.published,
                )
            )
        return passages
