"""Dates: an article's publication day, periods to search in, and the periods a question names.

A question's "last week" or "in March" is resolved against an *as-of* date: the day it was
asked when known, by default the newest article's date, since in a news archive "last week"
means the archive's last week, not the reader's. Only clear expressions count ("in March",
"last month", "since 2023"); a bare year or month name ("the 2024 election", "March Madness")
names a topic, not a period.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
# Capitalised only: "may" is a verb, "march" a walk. Longest names first so "Sept" beats "Sep".
_MONTH = "((?-i:" + "|".join(sorted((m.title() for m in _MONTHS), key=len, reverse=True)) + r"))\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_WEEKDAY = "((?-i:" + "|".join(calendar.day_name) + "))"
_YEAR = r"((?:19|20)\d\d)"


@dataclass(frozen=True)
class DateRange:
    """Days from `since` to `until`, both included; None is an open end.

    `soft`: articles from the period are ranked first, the others still found (how a period
    named in a question is used by default); otherwise only articles from the period are searched.
    """

    since: date | None = None
    until: date | None = None
    soft: bool = False

    def __post_init__(self) -> None:
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"the period starts ({self.since}) after it ends ({self.until})")

    @property
    def active(self) -> bool:
        return self.since is not None or self.until is not None

    def contains(self, day: date | None) -> bool:
        """Whether a publication day is in the period (an undated article never is)."""
        if day is None:
            return False
        return (self.since is None or day >= self.since) and (
            self.until is None or day <= self.until
        )

    def day_numbers(self) -> tuple[int, int]:
        """The period as inclusive YYYYMMDD integers, open ends made wide."""
        low = day_number(self.since) if self.since else 0
        high = day_number(self.until) if self.until else 99991231
        return low, high

    def iso(self) -> str:
        """ISO 8601 interval, `..` for an open end: `2024-03-01/2024-03-31`, `2023-01-01/..`."""
        return f"{self.since or '..'}/{self.until or '..'}"

    def label(self) -> str:
        """For people: `1–31 March 2024`, `5 March 2024`, `1 January 2023 onwards`."""
        s, u = self.since, self.until
        if s and u:
            if s == u:
                return long_day(u)
            if (s.year, s.month) == (u.year, u.month):
                return f"{s.day}–{long_day(u)}"
            if s.year == u.year:
                return f"{s.day} {calendar.month_name[s.month]} – {long_day(u)}"
            return f"{long_day(s)} – {long_day(u)}"
        if s:
            return f"{long_day(s)} onwards"
        if u:
            return f"up to {long_day(u)}"
        return "any date"

    def articles(self) -> str:
        """`articles from 1–31 March 2024`, `articles up to 5 May 2024`."""
        if self.until and not self.since:
            return f"articles {self.label()}"
        return f"articles from {self.label()}"

    def __str__(self) -> str:
        return self.label()


def long_day(d: date) -> str:
    """`5 March 2024`."""
    return f"{d.day} {calendar.month_name[d.month]} {d.year}"


def day_number(d: date) -> int:
    """A date as the integer YYYYMMDD (how days are compared in the indexes)."""
    return d.year * 10000 + d.month * 100 + d.day


def published_day(published: str | None) -> date | None:
    """The publication day of an article's `published` value, or None if it has none we can read.

    ISO dates and timestamps (`2024-03-05`, `2024-03-05T09:30:00Z`) are read directly; other
    forms ("March 5, 2024") by dateutil, which must find a day, month and year.
    """
    if not published or not published.strip():
        return None
    text = published.strip()
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        pass
    from dateutil import parser

    # Two different defaults: a field dateutil filled in itself differs between them.
    try:
        a = parser.parse(text, default=_PROBE_A, fuzzy=False)
        b = parser.parse(text, default=_PROBE_B, fuzzy=False)
    except (ValueError, OverflowError):
        return None
    return a.date() if a.date() == b.date() else None


_PROBE_A = datetime(1904, 1, 1)
_PROBE_B = datetime(1905, 2, 2)


# --- command-line values ----------------------------------------------------------------------


def parse_day(value: str, end: bool = False) -> date:
    """A day from `2024-03-05`, `2024-03` or `2024`: a month or year means its first day, or its
    last day with `end=True` (so `--until 2024-03` includes all of March)."""
    text = value.strip()
    m = re.fullmatch(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?", text)
    if not m:
        raise ValueError(f"{value!r} is not a date: use YYYY-MM-DD, YYYY-MM or YYYY")
    year = int(m.group(1))
    month = int(m.group(2)) if m.group(2) else (12 if end else 1)
    try:
        if m.group(3):
            return date(year, month, int(m.group(3)))
        return _month_end(year, month) if end else date(year, month, 1)
    except ValueError as e:
        raise ValueError(f"{value!r} is not a date ({e})") from e


def period(since: str | None = None, until: str | None = None) -> DateRange:
    """The period between two command-line values (either may be empty)."""
    return DateRange(
        parse_day(since) if since and since.strip() else None,
        parse_day(until, end=True) if until and until.strip() else None,
    )


# --- the periods questions name ---------------------------------------------------------------


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _month(year: int, month: int) -> DateRange:
    return DateRange(date(year, month, 1), _month_end(year, month))


def _year(year: int) -> DateRange:
    return DateRange(date(year, 1, 1), date(year, 12, 31))


def _week_of(d: date) -> DateRange:
    monday = d - timedelta(days=d.weekday())
    return DateRange(monday, monday + timedelta(days=6))


def _recent_month(month: int, as_of: date) -> int:
    """The year of the most recent such month on or before the as-of date."""
    return as_of.year if month <= as_of.month else as_of.year - 1


def _recent_day(month: int, day: int, as_of: date) -> date:
    """The most recent such day on or before the as-of date (29 February: a leap year's)."""
    for year in range(as_of.year, as_of.year - 8, -1):
        try:
            d = date(year, month, day)
        except ValueError:
            continue
        if d <= as_of:
            return d
    raise ValueError(f"no day {day} in month {month}")


def _weekday(name: str, as_of: date, before: bool) -> DateRange:
    """The most recent such weekday on or before the as-of date (strictly before: `before`)."""
    back = (as_of.weekday() - _WEEKDAYS[name.lower()]) % 7
    day = as_of - timedelta(days=back or (7 if before else 0))
    return DateRange(day, day)


def _last_month(d: date) -> DateRange:
    first = date(d.year, d.month, 1) - timedelta(days=1)
    return _month(first.year, first.month)


def _named_month(m: re.Match[str], as_of: date) -> DateRange:
    month = _MONTHS[m.group(1).lower().rstrip(".")]
    year = int(m.group(2)) if m.group(2) else _recent_month(month, as_of)
    return _month(year, month)


def _named_day(month_name: str, day: str, year: str | None, as_of: date) -> DateRange:
    month = _MONTHS[month_name.lower().rstrip(".")]
    d = date(int(year), month, int(day)) if year else _recent_day(month, int(day), as_of)
    return DateRange(d, d)


def _since(r: DateRange) -> DateRange:
    return DateRange(r.since, None)


_Resolver = Callable[[re.Match[str], date], DateRange]

# Checked in order; the first expression found in the question wins.
_EXPRESSIONS: list[tuple[str, _Resolver]] = [
    (
        rf"\bon\s+{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?\b",
        lambda m, d: _named_day(m.group(1), m.group(2), m.group(3), d),
    ),
    (
        rf"\bon\s+(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?\b",
        lambda m, d: _named_day(m.group(2), m.group(1), m.group(3), d),
    ),
    (rf"\bsince\s+{_MONTH}(?:\s+{_YEAR})?\b", lambda m, d: _since(_named_month(m, d))),
    (
        rf"\b(?:in|during)\s+(?:the\s+month\s+of\s+)?{_MONTH}(?:,?\s+{_YEAR})?\b",
        _named_month,
    ),
    (rf"\bsince\s+{_YEAR}\b", lambda m, d: DateRange(date(int(m.group(1)), 1, 1), None)),
    (rf"\b(?:in|during)\s+{_YEAR}\b(?!\s*[-–]\w)", lambda m, d: _year(int(m.group(1)))),
    # "died on Wednesday": news counts weekdays back from the day of writing.
    (
        rf"\bon\s+{_WEEKDAY}\b(?!,?\s+(?:the\s+)?\d|,?\s+{_MONTH})",
        lambda m, d: _weekday(m.group(1), d, before=False),
    ),
    (rf"\b(?:last|this\s+past)\s+{_WEEKDAY}\b", lambda m, d: _weekday(m.group(1), d, before=True)),
    (r"\btoday\b", lambda m, d: DateRange(d, d)),
    (r"\byesterday\b", lambda m, d: DateRange(d - timedelta(days=1), d - timedelta(days=1))),
    (r"\bthis\s+week\b", lambda m, d: _week_of(d)),
    (r"\b(?:last|previous)\s+week\b", lambda m, d: _week_of(d - timedelta(days=7))),
    (r"\bthis\s+month\b", lambda m, d: _month(d.year, d.month)),
    (r"\b(?:last|previous)\s+month\b", lambda m, d: _last_month(d)),
    (r"\bthis\s+year\b", lambda m, d: _year(d.year)),
    (r"\b(?:last|previous)\s+year\b", lambda m, d: _year(d.year - 1)),
]
_COMPILED = [(re.compile(p, re.IGNORECASE), resolve) for p, resolve in _EXPRESSIONS]


def names_period(question: str) -> bool:
    """Whether the question has an expression of time (cheap: no as-of date needed)."""
    return any(pattern.search(question) for pattern, _ in _COMPILED)


def question_period(question: str, as_of: date) -> DateRange | None:
    """The period a question names, resolved against the as-of date; None if it names none."""
    found: list[tuple[int, DateRange]] = []
    for pattern, resolve in _COMPILED:
        m = pattern.search(question)
        if m:
            try:
                found.append((m.start(), resolve(m, as_of)))
            except ValueError:  # "on February 30": not a day, so not a period
                continue
    return min(found, key=lambda f: f[0])[1] if found else None


RECENT_DAYS = 30  # "recently" in a news question: about the month before it was asked
# "recently", "in recent weeks", "a recent change": not "in recent years", which an archive
# ending a month before the question still covers.
_RECENT = re.compile(r"\brecent(?:ly\b|\b(?!\s+(?:years|decades)\b))", re.IGNORECASE)


def recent_period(question: str, as_of: date) -> DateRange | None:
    """The month before the as-of date if the question asks about "recently", else None.

    Too vague to rank by (it moved answers down, see docs/benchmarks.md), but precise enough to
    know that an archive ending long before the question cannot say what happened "recently".
    """
    return (
        DateRange(as_of - timedelta(days=RECENT_DAYS), as_of) if _RECENT.search(question) else None
    )
