"""Answers: pick the sentences that answer a question, quote them exactly, cite them, or abstain."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from rapidfuzz import fuzz

from assistant.articles import Article, one_line, safe_url, source_and_date
from assistant.chunking import sentence_spans
from assistant.cues import (
    asks_for_a_name,
    facts,
    new_candidates,
    question_parts,
    unmatched_names,
)
from assistant.dates import DateRange, long_day, published_day
from assistant.ranker import Reader, SentenceFacts
from assistant.retrieval import Outlet, Passage
from assistant.settings import Settings
from assistant.store import SentenceKey, index_text


@dataclass(frozen=True)
class Query:
    """A question ready to answer: what was asked, what was searched for, what retrieval found."""

    question: str
    searched_for: str
    passages: Sequence[Passage]  # best first
    vector: list[float]  # of `searched_for`
    articles: dict[str, Article] | None = None  # the passages' articles as retrieval read them
    as_of: date | None = None  # the day the question was asked, if known


@dataclass(frozen=True)
class Citation:
    """A quote with its place in the article: `quote == article.text[start:end]`."""

    n: int
    article_id: str
    title: str
    source: str | None
    url: str | None
    published: str | None
    quote: str
    start: int
    end: int
    also_in: tuple[Outlet, ...] = ()  # the same story in other outlets (near-duplicates)
    # The words the reader points at as the answer (article offsets inside start..end), if any.
    answer: tuple[int, int] | None = None


@dataclass(frozen=True)
class Statement:
    """One sentence of a written answer: supported when it has a valid citation."""

    text: str  # the model's sentence, its sentence ids removed, quotes made exact
    citations: tuple[int, ...]  # indexes into Answer.citations
    supported: bool
    reason: str | None = None  # why it is not supported


@dataclass(frozen=True)
class Answer:
    """What the assistant says to a question, and the evidence behind it."""

    question: str
    searched_for: str
    text: str
    citations: tuple[Citation, ...]
    passages: tuple[Passage, ...]
    abstained: bool
    confidence: float
    notice: str | None = None
    sources: tuple[Citation, ...] = field(default=())  # one per cited article, by number
    date_range: DateRange | None = None  # the period searched (or preferred), if any
    mode: str = "extractive"  # or "llm": a written answer whose citations were checked
    statements: tuple[Statement, ...] = ()  # the written answer's sentences (llm mode)


def _text(articles: dict[str, Article], s: _Sentence) -> str:
    return articles[s.article_id].text[s.start : s.end]


def _same_statement(a: str, b: str) -> bool:
    """Near-identical wording with the same numbers and names, so quoting one is enough;
    "member 7 proposed 7,000 dollars" and "member 77 proposed 77,000 dollars" are two facts."""
    return fuzz.ratio(a, b) > 85 and facts(a) == facts(b)


class CitationError(AssertionError):
    """A citation whose quote is not the article's text at its offsets (a bug, never shown)."""


@dataclass(frozen=True)
class _Sentence:
    article_id: str
    start: int
    end: int
    index: int  # position among the article's sentences
    rank: int  # rank of the passage it came from
    score: float = 0.0  # what quotes are chosen by: relevance plus the answer-type cue
    relevance: float = 0.0  # how well it matches the question: what confidence is made of
    answer: tuple[int, int] | None = None  # the answer's words in it (article offsets), if found


# The pointer reorders the reader's best few only among sentences with at least this share of
# the best's shared rare words (see Composer._point; chosen on dev, docs/reader.md).
POINTED_OVERLAP = 0.5

# A sentence offering this many new names (or numbers) gets the whole answer-type cue; a list of
# ten names is not ten times as likely to hold the answer.
ANSWER_CUE_CAP = 3

# A question's unstated names lower the confidence for at most this many of them: a quiz
# question retelling a whole story names many things a covering article may word otherwise.
UNSTATED_COUNTED = 2


@dataclass(frozen=True)
class Candidate:
    """A candidate sentence with what the answer step knows of it."""

    sentence: _Sentence
    text: str
    title: str
    overlap: float  # share of the question's rare-word weight in the sentence or its headline
    cosine: float  # of its stored (or freshly embedded) vector to the question's
    offered: int  # answers of the asked-for kind it offers (see cues.new_candidates)
    vector: Any = None  # the base model's vector of the sentence, read in its chunk
    unstated: int = 0  # the question's names and numbers its article (headline, text) never states


def heuristic(c: Candidate, settings: Settings) -> _Sentence:
    """The hand-set score: cosine blended with shared rare words, plus the answer-type cue."""
    w = settings.cosine_weight
    relevance = w * c.cosine + (1 - w) * c.overlap
    cue = settings.answer_cue_weight * min(c.offered, ANSWER_CUE_CAP) / ANSWER_CUE_CAP
    return replace(c.sentence, score=relevance + cue, relevance=relevance)


ABSTAIN_TEXT = "The articles don't answer this question."
WEAK_TEXT = "The evidence is weak: these passages may not answer the question."
NO_ARTICLES_TEXT = "No articles have been added yet, so there is nothing to quote."


def unstated_notice(unstated: Sequence[str]) -> str | None:
    """A note on the question's names the closest passages never mention (the first three):
    "None of the closest passages mentions “2019” or “Madrid”."."""
    if not unstated:
        return None
    words = [f"“{one_line(w)}”" for w in unstated[:3]]
    listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    return f"None of the closest passages mentions {listed}."


def no_articles_text(period: DateRange, newest: date | None = None) -> str:
    if newest is not None:
        return (
            f"No {period.articles()}: the newest article is from {long_day(newest)}, "
            "so the articles cannot say."
        )
    return f"No {period.articles()}, so there is nothing to quote."


def empty_period(
    question: str, searched_for: str, period: DateRange, newest: date | None = None
) -> Answer:
    """The answer when no stored article was published in the period searched.

    `newest`: the period is after the newest article (a question about "this week" asked after
    the archive ends), which is said, since it is why nothing can be found.
    """
    text = no_articles_text(period, newest)
    return Answer(question, searched_for, text, (), (), True, 0.0, date_range=period)


def no_articles(question: str) -> Answer:
    """The answer when the store holds no article at all: not "the articles don't answer"."""
    return Answer(question, question, NO_ARTICLES_TEXT, (), (), True, 0.0)


def answer_inside(answer: tuple[int, int], start: int, end: int) -> bool:
    """Whether the answer's words (offsets) are a non-empty span inside `start..end`."""
    return start <= answer[0] < answer[1] <= end


def verify(citation: Citation, article: Article) -> None:
    """Raise CitationError unless the quote is exactly the article's text at its offsets."""
    if not (0 <= citation.start < citation.end <= len(article.text)):
        raise CitationError(f"citation [{citation.n}] has offsets outside {article.id}")
    if article.text[citation.start : citation.end] != citation.quote:
        raise CitationError(f"citation [{citation.n}] does not match the text of {article.id}")
    if citation.answer is not None and not answer_inside(
        citation.answer, citation.start, citation.end
    ):
        raise CitationError(f"citation [{citation.n}] marks an answer outside its quote")


def cite(
    n: int,
    article: Article,
    start: int,
    end: int,
    also_in: tuple[Outlet, ...] = (),
    answer: tuple[int, int] | None = None,
) -> Citation:
    """The citation of `article.text[start:end]` as quote `[n]`, verified (a quote is exact by
    construction; `verify` makes a bug loud instead of a wrong quote shown)."""
    a = article
    quote = a.text[start:end]
    citation = Citation(
        n, a.id, a.title, a.source, a.url, a.published, quote, start, end, also_in, answer
    )
    verify(citation, a)
    return citation


def sources_of(citations: Sequence[Citation]) -> tuple[Citation, ...]:
    """One citation per cited article, in the order of their numbers (for the sources list)."""
    first: dict[int, Citation] = {}
    for c in citations:
        first.setdefault(c.n, c)
    return tuple(first[n] for n in sorted(first))


def source_line(c: Citation) -> str:
    """`[n] Title — Source, date <url>` for the sources list: one line, only a web URL shown.

    Plain text (the terminal's and the JSON's); where it is shown as Markdown it is escaped.
    """
    details = one_line(source_and_date(c.source, c.published))
    line = f"[{c.n}] {one_line(c.title)}" + (f" — {details}" if details else "")
    url = safe_url(c.url)
    line += f" <{url}>" if url else ""
    if c.also_in:
        others = [one_line(source_and_date(o.source, o.published) or o.title) for o in c.also_in]
        line += f" (also in: {'; '.join(others)})"
    return line


_OPENING_MARKS = "\"“‘'«„‚‹"
_CLOSING_MARKS = "\"”’'»“‘›"


def is_quotation(text: str) -> bool:
    """Whether the text is itself a quotation (opens and closes with quote marks): shown as it
    is, not inside a second pair."""
    text = text.strip()
    return len(text) > 1 and text[0] in _OPENING_MARKS and text[-1] in _CLOSING_MARKS


def render(
    citations: Sequence[Citation], sources: Sequence[Citation], notice: str | None = None
) -> str:
    """The answer text: each quote followed by its citation, then the sources."""
    quotes = [f"{c.quote if is_quotation(c.quote) else f'“{c.quote}”'} [{c.n}]" for c in citations]
    text = "\n\n".join(quotes) + "\n\nSources:\n" + "\n".join(source_line(s) for s in sources)
    return f"{notice}\n\n{text}" if notice else text


class Composer:
    """Builds an extractive Answer from retrieved passages."""

    def __init__(
        self,
        settings: Settings,
        embed: Callable[[list[str]], list[list[float]]],
        term_weights: Callable[[list[str]], list[dict[str, float]]],
        articles: Callable[[list[str]], dict[str, Article]],
        sentences: Callable[[str], Sequence[tuple[int, int]]] = sentence_spans,
        stored: Callable[[list[SentenceKey]], dict[SentenceKey, Any]] = lambda keys: {},
        reader: Reader | None = None,
    ) -> None:
        self.settings = settings
        self.reader = reader  # the trained reader; None: the hand-set score only
        self._embed = embed
        self._term_weights = term_weights
        self._articles = articles
        self._sentences = sentences  # the retriever's cache: each article is split once
        self._stored = stored  # sentence vectors computed when the article was indexed

    def candidates(self, passages: Sequence[Passage], texts: dict[str, str]) -> list[_Sentence]:
        """The sentences of the best passages, each once, with their place in the article."""
        seen: set[tuple[str, int]] = set()
        out: list[_Sentence] = []
        spans: dict[str, Sequence[tuple[int, int]]] = {}
        for rank, p in enumerate(passages[: self.settings.quote_passages]):
            if p.article_id not in spans:
                spans[p.article_id] = self._sentences(texts[p.article_id])
            for index, (start, end) in enumerate(spans[p.article_id]):
                if start >= p.start and end <= p.end and (p.article_id, start) not in seen:
                    seen.add((p.article_id, start))
                    out.append(_Sentence(p.article_id, start, end, index, rank))
        long_enough = [
            s
            for s in out
            if len(texts[s.article_id][s.start : s.end].split()) >= self.settings.min_quote_words
        ]
        return long_enough or out

    def vectors(self, sentences: Sequence[_Sentence], bodies: Sequence[str]) -> list[Any]:
        """Each sentence's vector: the one kept when its article was indexed, else its body
        (headline and sentence) embedded now, as for a store written before they were kept."""
        keys = [(s.article_id, s.start, s.end) for s in sentences]
        stored = self._stored(keys)
        missing = [i for i, key in enumerate(keys) if key not in stored]
        embedded = (
            dict(zip(missing, self._embed([bodies[i] for i in missing]), strict=True))
            if missing
            else {}
        )
        return [stored[key] if key in stored else embedded[i] for i, key in enumerate(keys)]

    def features(
        self,
        question: str,
        q_vector: list[float],
        sentences: list[_Sentence],
        articles: dict[str, Article],
        keep: int | None = None,
    ) -> list[Candidate]:
        """The `keep` sentences sharing most of the question's rare words, with what the answer
        step knows of each: that share, the cosine of its vector to the question's, and how
        many answers of the asked-for kind it offers.

        Sentences are first ranked by shared rare words (cheap), and only the best few are
        compared by meaning. Their vectors were pooled from their chunk's token states when it
        was indexed, so a sentence is read in its context, headline included: "the final" in a
        story headlined "Rovers win the Northern Cup final" is about the Northern Cup. A
        sentence without one (a store written before these were kept) is embedded now, with
        its headline.
        """
        texts = [_text(articles, s) for s in sentences]
        titles = [articles[s.article_id].title for s in sentences]
        # A body's terms are its headline's and its sentence's, so each headline is read once.
        headlines = list(dict.fromkeys(titles))
        weights = self._term_weights([question, *headlines, *texts])
        q_terms = weights[0]
        total = sum(q_terms.values()) or 1.0
        of_headline = dict(zip(headlines, weights[1 : len(headlines) + 1], strict=True))
        overlaps = [
            sum(w for t, w in q_terms.items() if t in terms or t in of_headline[title]) / total
            for terms, title in zip(weights[len(headlines) + 1 :], titles, strict=True)
        ]
        order = sorted(range(len(sentences)), key=lambda i: (-overlaps[i], sentences[i].rank))
        chosen = order[:keep] if keep is not None else order
        # Bodies (headline and sentence) are only needed to embed a sentence without a kept vector.
        bodies = [index_text(titles[i], texts[i]) for i in chosen]
        vectors = self.vectors([sentences[i] for i in chosen], bodies)
        # Only the reader ranks by them; reading whole stories is wasted on the hand-set step.
        unstated = {
            aid: len(unmatched_names(question, [articles[aid].title, articles[aid].text]))
            for aid in {sentences[i].article_id for i in chosen}
            if self.trained
        }
        return [
            Candidate(
                sentences[i],
                texts[i],
                titles[i],
                overlaps[i],
                float(sum(a * b for a, b in zip(q_vector, vec, strict=True))),
                len(new_candidates(question, texts[i])),
                vec,
                unstated.get(sentences[i].article_id, 0),
            )
            for i, vec in zip(chosen, vectors, strict=True)
        ]

    def score(
        self,
        question: str,
        q_vector: list[float],
        sentences: list[_Sentence],
        articles: dict[str, Article],
    ) -> list[_Sentence]:
        """Each sentence scored by meaning (cosine) and by the question's rare words it has
        (see `features`), best first.

        Among relevant sentences, those offering answers of the kind asked for (names, or
        numbers for "how many") rank higher than those that only restate the question.
        """
        found = self.features(
            question, q_vector, sentences, articles, self.settings.sentence_candidates
        )
        return sorted((heuristic(c, self.settings) for c in found), key=lambda s: -s.score)

    @property
    def trained(self) -> bool:
        """Whether answers are read by the trained reader (else the hand-set score)."""
        return self.reader is not None and self.settings.answer_ranker == "trained"

    def read(self, question: str, found: list[Candidate]) -> tuple[list[_Sentence], float]:
        """The candidates ranked by the trained reader, best first, each scored by its
        probability of holding the answer; and the confidence that one of them does.

        The confidence blends the reader's probability that a candidate answers with the
        hand-set relevance of the best few: together they separate unanswerable questions
        better than either alone (see docs/reader.md).
        """
        assert self.reader is not None
        facts = [SentenceFacts(c.overlap, c.cosine, c.offered) for c in found]
        probs, answerable = self.reader.read(question, [c.vector for c in found], facts)
        order = sorted(range(len(found)), key=lambda i: -probs[i])
        scores = list(probs)
        answers = self._point(question, found, order, scores)
        # A story that never names what the question names is likely another story on the
        # subject (last year's final, another company's layoffs).
        factor = self.settings.reader_unstated_factor
        scores = [p * math.exp(-factor * c.unstated) for p, c in zip(scores, found, strict=True)]
        order.sort(key=lambda i: -scores[i])
        second = self._second_quote(question, found, order) if len(order) > 1 else None
        if second is not None:
            order.remove(second)
            order.insert(1, second)
            scores[second] = max(scores[second], self.settings.reader_support * scores[order[0]])
        ranked = [
            replace(found[i].sentence, score=scores[i], relevance=scores[i], answer=answers.get(i))
            for i in order
        ]
        relevance = max(
            (
                heuristic(c, self.settings).relevance
                for c in found[: self.settings.sentence_candidates]
            ),
            default=0.0,
        )
        w = self.settings.reader_confidence_weight
        return ranked, w * answerable + (1 - w) * relevance

    def _point(
        self, question: str, found: list[Candidate], order: list[int], scores: list[float]
    ) -> dict[int, tuple[int, int]]:
        """Rescore the reader's best few (in `scores`) with where the answer-span model finds
        the answer in each; returns the answer's words (article offsets) where it is sure."""
        assert self.reader is not None
        # The pointer learnt from quiz questions answered by names and numbers; it has no
        # answer to point at for a yes-or-no question, a why or a what-did-they-do.
        top = order[: self.settings.reader_pointed] if asks_for_a_name(question) else []
        # It knows where an answer sits in a sentence, not whether the sentence is about what
        # was asked: it only reorders those sharing at least half as much of the question's
        # rare words as the reader's best ("council member number 77" is not member 113).
        top = [i for i in top if found[i].overlap >= POINTED_OVERLAP * found[order[0]].overlap]
        if not top:
            return {}
        pointed = self.reader.point(question, [(found[i].title, found[i].text) for i in top])
        read = list(scores)
        for i, p in zip(top, pointed, strict=True):
            scores[i] = self.reader.rerank(read[i], p)
        best = max(top, key=lambda i: scores[i])
        # The pointer reorders, but a sentence the reader rates far below the best is not
        # quoted beside it for a name or number the pointer finds in it.
        ceiling = [r / max(read[best], 1e-9) * scores[best] for r in read]
        for i in top:
            if i != best:
                scores[i] = min(scores[i], ceiling[i])
        floor = min(scores[i] for i in top)
        for i in order:
            if i not in top:  # below every reread sentence, in the reader's order
                scores[i] = min(read[i], floor, ceiling[i])
        return {
            i: (found[i].sentence.start + p.start, found[i].sentence.start + p.end)
            for i, p in zip(top, pointed, strict=True)
            if p.score >= self.settings.answer_highlight_min and p.end > p.start
        }

    def _second_quote(self, question: str, found: list[Candidate], order: list[int]) -> int | None:
        """For a two-part question, the candidate answering the part the reader's best does not,
        to quote after it: on the same subject (nearly as many of the question's rare words as
        the best) and the closest to that part, unless the best is closer to it still."""
        assert self.reader is not None
        parts = question_parts(question)
        if not parts:
            return None
        best = order[0]
        floor = self.settings.reader_support * found[best].overlap
        topical = [best] + [i for i in order[1:] if found[i].overlap >= floor]
        vectors = [found[i].vector for i in topical]
        to_first, to_second = (self.reader.closeness(part, vectors) for part in parts)
        # The part the best answers less well is the one still to answer.
        other = to_second if to_first[0] >= to_second[0] else to_first
        j = max(range(len(topical)), key=lambda j: other[j])
        return topical[j] if j != 0 else None

    def _limits(self) -> tuple[int, float]:
        """At most this many quotes, each scoring at least this share of the best one."""
        if self.trained:
            return self.settings.reader_max_quotes, self.settings.reader_support
        return self.settings.max_quotes, self.settings.quote_score_ratio

    def pick(self, scored: list[_Sentence], texts: dict[str, str]) -> list[_Sentence]:
        """The best sentences, without near-duplicates, adjacent ones of an article joined."""
        chosen: list[_Sentence] = []
        most, ratio = self._limits()
        for s in scored:
            if len(chosen) >= most or s.score < ratio * scored[0].score:
                break
            body = texts[s.article_id][s.start : s.end]
            if any(_same_statement(body, texts[c.article_id][c.start : c.end]) for c in chosen):
                continue
            chosen.append(s)
        # Join sentences that follow each other in one paragraph into one quote.
        by_place = sorted(chosen, key=lambda c: (c.article_id, c.index))
        merged: list[_Sentence] = []
        for s in by_place:
            last = merged[-1] if merged else None
            if (
                last
                and last.article_id == s.article_id
                and s.index == last.index + 1
                and "\n" not in texts[s.article_id][last.end : s.start]  # not across paragraphs
            ):
                merged[-1] = _Sentence(
                    s.article_id,
                    last.start,
                    s.end,
                    s.index,
                    last.rank,
                    max(last.score, s.score),
                    max(last.relevance, s.relevance),
                    # The answer the better of the two points at, else the other's.
                    (last.answer or s.answer)
                    if last.score >= s.score
                    else (s.answer or last.answer),
                )
            else:
                merged.append(s)
        return sorted(merged, key=lambda m: -m.score)

    def articles_for(self, query: Query) -> dict[str, Article]:
        """The articles of the passages that may be quoted: as retrieval read them, else now."""
        wanted = {p.article_id for p in query.passages[: self.settings.quote_passages]}
        if query.articles is not None and query.articles.keys() >= wanted:
            return query.articles
        return self._articles(list(wanted))

    def stale(self, passages: Sequence[Passage], as_of: date | None) -> bool:
        """Whether even the newest dated passage is from long before the day the question was
        asked: news from then is unlikely to report what the question asks about."""
        if as_of is None:
            return False
        days = [d for d in (published_day(p.published) for p in passages) if d is not None]
        return bool(days) and (as_of - max(days)).days > self.settings.stale_days

    def unstated_penalty(self, unstated: list[str]) -> float:
        """What the confidence loses for the question's names and numbers that none of the
        quote passages (nor their headlines) states (`cues.unmatched_names`).

        A question about "the 2026 NBA Finals" or "Fort Sumter" that retrieval meets only with
        stories never naming them is most likely about something the articles do not cover;
        shared words and closeness cannot tell, as such stories are on a related subject.
        """
        return self.settings.unstated_name_penalty * min(len(unstated), UNSTATED_COUNTED)

    def compose(self, query: Query) -> Answer:
        """The quotes that answer the question, or an abstention."""
        question, searched_for, passages = query.question, query.searched_for, query.passages
        articles = self.articles_for(query)
        texts = {aid: a.text for aid, a in articles.items()}
        sentences = self.candidates(passages, texts)
        if self.trained:
            found = self.features(
                searched_for, query.vector, sentences, articles, self.settings.reader_candidates
            )
            scored, confidence = self.read(searched_for, found) if found else ([], 0.0)
            low, weak = self.settings.reader_min_confidence, self.settings.reader_weak_confidence
        else:
            scored = (
                self.score(searched_for, query.vector, sentences, articles) if sentences else []
            )
            # Confidence is relevance alone: the answer-type cue orders quotes, it does not
            # make a question that the articles do not cover look answered.
            confidence = max((s.relevance for s in scored), default=0.0)
            low, weak = self.settings.min_confidence, self.settings.weak_confidence
        quoted = passages[: self.settings.quote_passages]
        unstated = unmatched_names(searched_for, [t for p in quoted for t in (p.title, p.text)])
        confidence -= self.unstated_penalty(unstated)
        if self.stale(passages, query.as_of):
            # Old articles answer a question about a later day only with stronger evidence.
            low = max(low, self.settings.stale_min_confidence)
        if confidence < low or not scored:
            return self.abstain(question, searched_for, passages, confidence, unstated)
        # Answered, but the question names what no close passage does: the quotes may be about
        # another event ("the final" of another year), which the reader should know.
        notes = [WEAK_TEXT if confidence < weak else None, unstated_notice(unstated)]
        notice = " ".join(n for n in notes if n) or None
        numbers: dict[str, int] = {}
        also_in = {p.article_id: p.also_in for p in passages}
        citations = []
        for s in self.pick(scored, texts):
            n = numbers.setdefault(s.article_id, len(numbers) + 1)
            a = articles[s.article_id]
            citations.append(cite(n, a, s.start, s.end, also_in.get(a.id, ()), s.answer))
        sources = sources_of(citations)
        return Answer(
            question=question,
            searched_for=searched_for,
            text=render(citations, sources, notice),
            citations=tuple(citations),
            passages=tuple(passages),
            abstained=False,
            confidence=confidence,
            sources=sources,
            notice=notice,
        )

    def abstain(
        self,
        question: str,
        searched_for: str,
        passages: Sequence[Passage],
        confidence: float,
        unstated: Sequence[str] = (),
    ) -> Answer:
        """The abstention, with the closest articles and the question's names none of the
        closest passages mentions (why the articles seem to be about something else)."""
        closest = list(dict.fromkeys(p.title for p in passages))[:3]
        notice = unstated_notice(unstated) if passages else None
        text = ABSTAIN_TEXT + (f" {notice}" if notice else "")
        if closest:
            text += " The closest articles are:\n" + "\n".join(f"- {one_line(t)}" for t in closest)
        return Answer(
            question, searched_for, text, (), tuple(passages), True, confidence, notice=notice
        )
