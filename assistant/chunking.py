"""Chunking: sentences and runs of whole sentences, with exact offsets into the article text."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

# Words whose trailing period does not end a sentence (compared lower-case, without the dot).
ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sen rep gov gen lt col maj capt sgt cmdr adm pres supt det insp
    st jr sr rev fr hon amb atty messrs mme mt ft no nos vs etc inc corp co ltd llc bros
    dept univ assn est approx fig vol pp op cf al jan feb mar apr jun jul aug sep sept oct
    nov dec mon tue tues wed thu thur thurs fri sat sun ave blvd rd hwy calif fla ariz
    mass conn penn tenn wash wis minn mich ill ind okla ore colo nev neb kan ky la md mo
    miss va vt wyo ala ark del ga""".split()
)

# A candidate sentence end: terminal punctuation, closing quotes/brackets, then whitespace.
# Only from the start of a run of punctuation, and without backtracking: tried again at every
# character of a long run ("!?!?…"), the search would take time quadratic in the run.
_END = re.compile(r"(?<![.!?…])[.!?…]++[\"'”’)\]»]*+(?=\s)")
# What may start the next sentence: optional opening quote/bracket, then a capital or digit.
_NEXT_START = re.compile(r"\s+[\"'“‘(\[«]*[A-Z0-9À-ÖØ-Þ]")
_WORD_BEFORE = re.compile(r"(\S+)$")
_DOTTED = re.compile(r"^(?:[A-Za-z]\.){2,}$")  # U.S. C.E.O. D.C. a.m.
_PARAGRAPH = re.compile(r"[^\n]+")

# The longest chunk by default (`Settings.chunk_chars`), and so the longest sentence: a longer
# one is cut to fit a chunk. Indexing and answering split with the same limit, so the sentences
# a question finds are those whose vectors were kept when the article was indexed.
CHUNK_CHARS = 800


@dataclass(frozen=True)
class Chunk:
    """A run of whole sentences; `text == article.text[start:end]`."""

    id: str
    article_id: str
    ordinal: int
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...] = ()  # its sentences' offsets, when just split


def _ends_sentence(text: str, dot_start: int, dot_end: int) -> bool:
    if not _NEXT_START.match(text, dot_end):
        return False
    if text[dot_start] != ".":
        return True
    # Look back a short window only: searching from the text's start is quadratic.
    word = _WORD_BEFORE.search(text, max(0, dot_start - 40), dot_start + 1)
    if word is None:
        return True
    token = word.group(1).lstrip("\"'“‘([«")
    bare = token[:-1]
    if _DOTTED.match(token) or (len(bare) == 1 and bare.isalpha()):
        return False  # U.S., C.E.O., an initial such as "J."
    return bare.lower() not in ABBREVIATIONS


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _hard_split(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Cut an over-long run of text at whitespace so no piece exceeds `limit` characters."""
    pieces = []
    while end - start > limit:
        cut = text.rfind(" ", start + limit // 2, start + limit)
        if cut <= start:
            cut = start + limit
        span = _trimmed(text, start, cut)
        if span:
            pieces.append(span)
        start = cut
    span = _trimmed(text, start, end)
    if span:
        pieces.append(span)
    return pieces


def sentence_spans(text: str, max_chars: int = CHUNK_CHARS) -> list[tuple[int, int]]:
    """(start, end) of each sentence, none longer than `max_chars`; paragraphs (lines) always
    end a sentence."""
    spans: list[tuple[int, int]] = []
    for para in _PARAGRAPH.finditer(text):
        start = para.start()
        for end_match in _END.finditer(text, para.start(), para.end()):
            if end_match.end() >= para.end():
                break
            if _ends_sentence(text, end_match.start(), end_match.end()):
                _add(spans, text, start, end_match.end(), max_chars)
                start = end_match.end()
        _add(spans, text, start, para.end(), max_chars)
    return spans


def _add(spans: list[tuple[int, int]], text: str, start: int, end: int, max_chars: int) -> None:
    span = _trimmed(text, start, end)
    if span is None:
        return
    if span[1] - span[0] <= max_chars:
        spans.append(span)  # most sentences: no need to look for a place to cut
    else:
        spans.extend(_hard_split(text, *span, max_chars))


class SentenceCache:
    """`sentence_spans` of recently seen article texts, so a question splits each article once.

    Keyed by the text itself, not the article id: a replaced article has a new text and so new
    spans, and a stale span can never point into a text it was not found in.
    """

    def __init__(self, sentence_chars: int = CHUNK_CHARS, max_chars: int = 20_000_000) -> None:
        self.sentence_chars = sentence_chars  # the longest sentence, as when indexing
        self.max_chars = max_chars  # the texts held, in total (they are kept as keys)
        self._spans: OrderedDict[str, tuple[tuple[int, int], ...]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()  # the web UI may answer two questions at once

    def __call__(self, text: str) -> Sequence[tuple[int, int]]:
        with self._lock:
            spans = self._spans.get(text)
            if spans is not None:
                self._spans.move_to_end(text)
                return spans
        return self.keep(text, sentence_spans(text, self.sentence_chars))

    def keep(self, text: str, spans: Sequence[tuple[int, int]]) -> Sequence[tuple[int, int]]:
        """Remember a text's spans found elsewhere (as when it was indexed); returns them."""
        spans = tuple(spans)
        if len(text) > self.max_chars:
            return spans
        with self._lock:
            if text not in self._spans:
                self._spans[text] = spans
                self._chars += len(text)
            while self._chars > self.max_chars:
                old, _ = self._spans.popitem(last=False)
                self._chars -= len(old)
        return spans

    def __len__(self) -> int:
        return len(self._spans)


def chunk_article(
    article_id: str, text: str, max_chars: int = CHUNK_CHARS, overlap_sentences: int = 1
) -> list[Chunk]:
    """Group whole sentences into chunks of at most `max_chars` (one long sentence may be cut)."""
    sentences = sentence_spans(text, max_chars)
    groups: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    for span in sentences:
        if current and span[1] - current[0][0] > max_chars:
            groups.append(current)
            # Carry the last sentences over so a fact split across the border stays findable,
            # unless that would leave no room for new text.
            carry = current[-overlap_sentences:] if overlap_sentences else []
            if carry and span[1] - carry[0][0] > max_chars:
                carry = []
            current = list(carry)
        current.append(span)
    if current:
        groups.append(current)
    chunks = []
    for ordinal, group in enumerate(groups):
        start, end = group[0][0], group[-1][1]
        chunks.append(
            Chunk(
                f"{article_id}:{ordinal}",
                article_id,
                ordinal,
                start,
                end,
                text[start:end],
                tuple(group),
            )
        )
    return chunks
