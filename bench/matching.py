"""The benchmark's answer matching (a copy of score.py's normaliser), for offline experiments.

A sentence "contains the answer" exactly as the scorer decides it: NFKC, quotes and dashes
unified, case-folded, whitespace collapsed, and the whole answer phrase not glued to a word
character (nor a number to a longer number) on either side.
"""

from __future__ import annotations

import re
import unicodedata

_SINGLE_QUOTES = "\u2018\u2019\u201a\u201b\u2032\u0060\u00b4"
_DOUBLE_QUOTES = '\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"'
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_TABLE = {ord(c): "'" for c in _SINGLE_QUOTES}
_TABLE.update({ord(c): "" for c in _DOUBLE_QUOTES})
_TABLE.update({ord(c): "-" for c in _DASHES})
_TABLE.update({ord(c): "" for c in "\u200b\u200c\u200d\u2060\ufeff\u00ad"})
_WS = re.compile(r"\s+")
_PATTERNS: dict[str, re.Pattern[str]] = {}


def normalize(s: str | None) -> str:
    """NFKC, quotes and dashes unified (double quotes dropped), case-folded, spaces collapsed."""
    if not s:
        return ""
    s = unicodedata.normalize("NFKC", s).translate(_TABLE).casefold()
    return _WS.sub(" ", s).strip()


def _pattern(answer_norm: str) -> re.Pattern[str]:
    p = _PATTERNS.get(answer_norm)
    if p is None:
        a = answer_norm
        left = r"(?<!\w)" if a[:1].isalnum() else ""
        right = r"(?!\w)" if a[-1:].isalnum() else ""
        if a[:1].isdigit():
            left += r"(?<!\d[.,])"
        if a[-1:].isdigit():
            right += r"(?![.,]\d)"
        p = _PATTERNS[answer_norm] = re.compile(left + re.escape(a) + right)
    return p


def contains_answer(text: str, answer: str | None) -> bool:
    """True when the text contains the answer as the benchmark's scorer matches it."""
    a = normalize(answer)
    return bool(a) and _pattern(a).search(normalize(text)) is not None
