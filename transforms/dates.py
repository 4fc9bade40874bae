"""Date strings and structs -> timezone-aware UTC datetimes.

feedparser's date parser handles RFC 822, W3CDTF/ISO 8601 and the odd formats feeds use;
python-dateutil handles prose dates ("November 26, 2018") in plain text and page metadata.
A date without a zone is taken as UTC, as feedparser does.
"""

from __future__ import annotations

import calendar
import time
import warnings
from datetime import datetime, timezone

from dateutil import parser as dateutil_parser
from feedparser.datetimes import _parse_date as feedparser_parse_date

# Dates outside this range are data errors (year 0, 2999...), not news.
MIN_YEAR = 1900
MAX_YEAR = 2100

_H = 3600
# Zone abbreviations dateutil does not know (it warns, then drops the zone: a time 5 hours
# off). RFC 822 section 5.1 names the US zones; the others are unambiguous in news use.
# Ambiguous ones (IST: India, Ireland or Israel; BST: British or Bangladesh) are left out,
# and such a date is then read as UTC, as a date without a zone is.
ZONE_OFFSETS: dict[str, int] = {
    "UT": 0, "UTC": 0, "GMT": 0, "Z": 0,
    "EST": -5 * _H, "EDT": -4 * _H, "CST": -6 * _H, "CDT": -5 * _H,
    "MST": -7 * _H, "MDT": -6 * _H, "PST": -8 * _H, "PDT": -7 * _H,
    "AKST": -9 * _H, "AKDT": -8 * _H, "HST": -10 * _H,
    "WET": 0, "WEST": _H, "CET": _H, "CEST": 2 * _H, "EET": 2 * _H, "EEST": 3 * _H,
    "MSK": 3 * _H, "JST": 9 * _H, "KST": 9 * _H, "AEST": 10 * _H, "AEDT": 11 * _H,
    "NZST": 12 * _H, "NZDT": 13 * _H,
}


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
        with warnings.catch_warnings():
            # an unknown abbreviation: read as UTC like a date without a zone (see above)
            warnings.simplefilter("ignore", dateutil_parser.UnknownTimezoneWarning)
            return to_utc(dateutil_parser.parse(text, fuzzy=False, tzinfos=ZONE_OFFSETS))
    except (ValueError, OverflowError, TypeError):
        return None
