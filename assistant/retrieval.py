"""Retrieval: dense search in Chroma fused with BM25 keyword search by reciprocal rank."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from assistant.articles import Article
from assistant.chunking import SentenceCache
from assistant.dates import DateRange
from assistant.settings import Settings
from assistant.store import ChunkPlace, Store


@dataclass(frozen=True)
class Outlet:
    """Another article carrying the same story (a near-duplicate), listed with a passage."""

    article_id: str
    title: str
    source: str | None
    url: str | None
    published: str | None


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
    also_in: tuple[Outlet, ...] = ()  # near-duplicates of the article, answered through this one


@dataclass(frozen=True)
class Retrieved:
    """The passages for a query, best first, and their articles: read once, for every step."""

    passages: list[Passage]
    articles: dict[str, Article]


def reciprocal_rank_fusion(
    rankings: list[list[str]], weights: list[float], k: int
) -> list[tuple[str, float]]:
    """Fuse ranked id lists: score = sum of weight / (k + rank), best first."""
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def _window(spans: Sequence[tuple[int, int]], start: int, end: int, n: int) -> tuple[int, int]:
    """The span of a chunk widened by `n` sentences on each side (the context of a hit)."""
    inside = [i for i, (s, e) in enumerate(spans) if s >= start and e <= end]
    if not inside or n <= 0:
        return start, end
    first, last = max(0, inside[0] - n), min(len(spans) - 1, inside[-1] + n)
    return min(start, spans[first][0]), max(end, spans[last][1])


@dataclass
class _Hit:
    """A passage being assembled from one or more overlapping chunk hits of an article."""

    article_id: str
    chunk_id: str  # the best-ranked chunk in it
    start: int
    end: int
    score: float
    dense: float | None = None
    keyword: float | None = None

    def see(self, dense: float | None, keyword: float | None) -> None:
        if dense is not None:
            self.dense = dense if self.dense is None else max(self.dense, dense)
        if keyword is not None:
            self.keyword = keyword if self.keyword is None else max(self.keyword, keyword)

    def join(self, other: _Hit, max_chars: int) -> bool:
        """Take in a touching hit of the same article, unless the passage would grow too long."""
        if other.article_id != self.article_id or other.start > self.end or self.start > other.end:
            return False
        start, end = min(self.start, other.start), max(self.end, other.end)
        if end - start > max_chars:
            return False
        self.start, self.end = start, end
        self.see(other.dense, other.keyword)
        return True


class HybridRetriever:
    """Finds the passages for a query from both indexes of a store."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        sentences: SentenceCache | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        # Shared with the answer step, and splitting as indexing did.
        self.sentences = sentences or SentenceCache(settings.chunk_chars)

    def retrieve(
        self,
        query: str,
        k: int | None = None,
        vector: list[float] | None = None,
        period: DateRange | None = None,
    ) -> Retrieved:
        """The best `k` passages for the query, best first, with the articles they quote.

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
        fused, groups = self._one_per_story(fused, chunks)
        dense_scores, keyword_scores = dict(dense), dict(keyword)
        order = list(dict.fromkeys(chunks[cid].article_id for cid, _ in fused))
        articles: dict[str, Article] = {}
        asked: set[str] = set()  # the article ids read, or asked for and gone (removed meanwhile)
        hits: list[_Hit] = []
        for cid, score in fused:
            chunk = chunks[cid]
            if chunk.article_id not in asked:
                # Read as the ranking reaches them, k articles at a time: most candidates
                # are never shown, so their texts are not read.
                at = order.index(chunk.article_id)
                ahead = [a for a in order[at:] if a not in asked][:k]
                asked.update(ahead)
                read = self.store.articles(ahead)
                # Their sentences as split when indexed (the answer step finds them in the
                # cache too); articles stored without them are split when first quoted.
                for article_id, kept in self.store.sentence_spans(read).items():
                    self.sentences.keep(read[article_id].text, kept)
                articles.update(read)
            if chunk.article_id not in articles:
                continue
            spans = self.sentences(articles[chunk.article_id].text)
            start, end = _window(spans, chunk.start, chunk.end, self.settings.passage_window)
            hit = _Hit(chunk.article_id, cid, start, end, score)
            hit.see(dense_scores.get(cid), keyword_scores.get(cid))
            # A hit next to or over one already found joins it: one longer passage, one slot.
            joined = next((h for h in hits if h.join(hit, self.max_passage_chars)), None)
            if joined is None:
                if len(hits) == k:
                    break
                hits.append(hit)
        shown = {h.article_id for h in hits}
        articles = {aid: a for aid, a in articles.items() if aid in shown}
        outlets = self.store.articles(
            m for a in shown for m in groups.get(a, ()) if m not in articles
        )
        passages = [self._passage(h, {**outlets, **articles}, groups) for h in hits]
        return Retrieved(passages, articles)

    @property
    def max_passage_chars(self) -> int:
        return 3 * self.settings.chunk_chars

    @staticmethod
    def _passage(h: _Hit, articles: dict[str, Article], groups: dict[str, list[str]]) -> Passage:
        article = articles[h.article_id]
        return Passage(
            article_id=h.article_id,
            chunk_id=h.chunk_id,
            text=article.text[h.start : h.end],
            start=h.start,
            end=h.end,
            score=h.score,
            dense=h.dense,
            keyword=h.keyword,
            title=article.title,
            source=article.source,
            url=article.url,
            published=article.published,
            also_in=tuple(
                Outlet(o.id, o.title, o.source, o.url, o.published)
                for o in (articles.get(m) for m in groups.get(h.article_id, ()))
                if o is not None and o.id != h.article_id
            ),
        )

    def _one_per_story(
        self, fused: list[tuple[str, float]], chunks: dict[str, ChunkPlace]
    ) -> tuple[list[tuple[str, float]], dict[str, list[str]]]:
        """The chunks in rank order, a story run by several outlets taken from its best copy."""
        groups = self.store.duplicate_groups(chunks[cid].article_id for cid, _ in fused)
        chosen: dict[str, str] = {}  # group -> the article that answers for it
        kept = []
        for cid, score in fused:
            article_id = chunks[cid].article_id
            group = groups[article_id][0] if article_id in groups else article_id
            if chosen.setdefault(group, article_id) == article_id:
                kept.append((cid, score))
        return kept, {a: groups[a] for a in chosen.values() if a in groups}
