"""Date strings and structs -> timezone-aware UTC datetimes.

feedparser's date parser handles RFC 822, W3CDTF/ISO 8601 and the odd formats feeds use;
python-dateutil handles prose dates ("November 26, 2018") in plain text and page metadata.
A date without a zone is taken as UTC, as feedparser does.
"""

from __future__ import annotations

import calendar
import time
from datetime import datetime, timezone

from dateutil import parser as dateutil_parser
from feedparser.datetimes import _parse_date as feedparser_parse_date

# Dates outside this range are data errors (year 0, 2999...), not news.
MIN_YEAR = 1900
MAX_YEAR = 2100


def from_struct(value: time.struct_time | None) -> datetime | None:
    """A UTC struct_time (as feedparser returns) -> aware datetime."""
    if value is None:
        return None
    try:
        dt = datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)
    except (OverflowError, ValueError, OSError):
        return None
    return dt if MIN_YEAR <= dt.year <= MAX_YEAR else None


def to_utc(dt: datetime) -> datetime | None:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        dt = dt.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None
    return dt if MIN_YEAR <= dt.year <= MAX_YEAR else None


def parse_date(value: object) -> datetime | None:
    """Parse a date given as text (any common format), a datetime or a UTC struct_time."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return to_utc(value)
    if isinstance(value, time.struct_time):
        return from_struct(value)
    text = str(value).strip()
    if not text or len(text) > 100:
        return None
    try:
        return to_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        pass
    parsed = feedparser_parse_date(text)
    if parsed is not None:
        return from_struct(parsed)
    try:
        return to_utc(dateutil_parser.parse(text, fuzzy=False))
    except (ValueError, OverflowError, TypeError):
        return None
