"""Date strings and structs -> timezone-aware UTC datetimes.

feedparser's date parser handles RFC 822, W3CDTF/ISO 8601 and the odd formats feeds use;
python-dateutil handles prose dates ("November 26, 2018") in plain text and page metadata.
A date without a zone is taken as UTC, as feedparser does.
"""

from __future__ import annotations

import calendar
import re
import time
import warnings
from datetime import date, datetime, timezone

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


# An ISO 8601 / W3C-DTF date, its parts captured: sign, year, month, day, hour, minute, second,
# zone, zone hours, zone minutes.
_ISO = re.compile(
    r"\s*(-?)(\d{4})(?:-?(\d{2})(?:-?(\d{2}))?)?"
    r"(?:[T ](\d{2})(?::?(\d{2})(?::?(\d{2}))?)?(?:[.,]\d+)?)?"
    r"\s*(Z|[+-](\d{2}):?(\d{2})?)?\s*", re.IGNORECASE)
MAX_OFFSET_HOURS = 14  # UTC+14 (Kiribati) is the largest offset in use
_TIME_OF_DAY = re.compile(r"\b([01]?\d|2[0-3]):[0-5]\d")


def impossible_iso_date(text: str) -> bool:
    """True for an ISO 8601 date with a part out of range: month 0 or 13, 30 February, hour
    25, minute 61, a zone of +99:00, a negative year. feedparser's W3C-DTF parser rolls such
    parts over ('2024-00-00' became 30 November 2023, '2024-02-30' 1 March), which would
    invent a date; newsbeam leaves it unparsed instead. Text in any other format: False."""
    m = _ISO.fullmatch(text)
    if m is None:
        return False
    sign, year, month, day, hour, minute, second, _zone, zone_h, zone_m = m.groups()
    if sign or (month is not None and not 1 <= int(month) <= 12):
        return True
    if day is not None:
        try:
            date(int(year), int(month), int(day))
        except ValueError:
            return True
    if hour is not None and int(hour) > 23 \
            and not (int(hour) == 24 and int(minute or 0) == 0 and int(second or 0) == 0):
        return True
    if (minute is not None and int(minute) > 59) or (second is not None and int(second) > 60):
        return True
    return zone_h is not None and (int(zone_h) > MAX_OFFSET_HOURS or int(zone_m or 0) > 59)


# Month names of the languages the boilerplate table covers, to English (Russian in the
# genitive, as dates write them: "26 ноября 2018").
FOREIGN_MONTHS: dict[str, str] = {
    **dict.fromkeys(("januar", "janvier", "enero", "января"), "January"),
    **dict.fromkeys(("februar", "février", "fevrier", "febrero", "февраля"), "February"),
    **dict.fromkeys(("märz", "maerz", "mars", "marzo", "марта"), "March"),
    **dict.fromkeys(("avril", "abril", "апреля"), "April"),
    **dict.fromkeys(("mai", "mayo", "мая"), "May"),
    **dict.fromkeys(("juni", "juin", "junio", "июня"), "June"),
    **dict.fromkeys(("juli", "juillet", "julio", "июля"), "July"),
    **dict.fromkeys(("août", "aout", "agosto", "августа"), "August"),
    **dict.fromkeys(("septembre", "septiembre", "setiembre", "сентября"), "September"),
    **dict.fromkeys(("oktober", "octobre", "octubre", "октября"), "October"),
    **dict.fromkeys(("novembre", "noviembre", "ноября"), "November"),
    **dict.fromkeys(("dezember", "décembre", "decembre", "diciembre", "декабря"), "December"),
}
# English month names and abbreviations (also the byline dates in transforms/extract.py)
MONTHS_EN = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
             r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DATE_LINE = re.compile(
    rf"(?:[a-z]+,?\s+)?(?:\d{{1,2}}\s+{MONTHS_EN}\s+\d{{4}}|{MONTHS_EN}\s+\d{{1,2}},?\s+\d{{4}})"
    r"(?:,?\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]\.?m\.?)?(?:\s+[a-z]{2,5}|\s*[+-]\d{2}:?\d{2})?)?",
    re.IGNORECASE)
_ISO_LINE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?)?")
MAX_DATE_LINE_CHARS = 60


def text_date(line: str) -> datetime | None:
    """A line that is only a date, in English, German, French, Spanish or Russian ('November
    26, 2018', '26. November 2018', '26 de noviembre de 2018', '26 ноября 2018 г.'), with an
    optional weekday and time of day -> UTC datetime; None for anything else (a headline
    that holds a date is not a date line)."""
    line = line.strip()
    if not line or len(line) > MAX_DATE_LINE_CHARS or not any(c.isdigit() for c in line):
        return None
    words = []
    for token in line.replace(",", " , ").split():
        low = token.lower().rstrip(".")
        if low in ("de", "del", "г", "года", "le", "am", "on"):
            continue
        words.append(FOREIGN_MONTHS.get(low, token))
    text = " ".join(words).replace(" , ", ", ").replace(" ,", ",")
    text = re.sub(r"\b(\d{1,2})\.(?=\s)", r"\1", text)  # '26. November'
    if _ISO_LINE.fullmatch(text):
        return parse_date(text)
    if not _DATE_LINE.fullmatch(text):
        return None
    # a weekday before the day ('Montag, 26 November 2018'): dateutil knows English ones only
    first = re.match(r"([^\W\d_]+),?\s+(?=\d)", text)
    if first and not re.fullmatch(MONTHS_EN, first.group(1), re.IGNORECASE):
        text = text[first.end():]
    return parse_date(text)


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


# Unix time as text: seconds (10 digits: 2001-09-09 to 2286) or milliseconds (13 digits), as
# JSON feeds and dumps give it. feedparser read "1709971200" as 9 April 2017.
_EPOCH = re.compile(r"(\d{10})(\d{3})?")
# a zone abbreviation at the end of the text
_ZONE_AT_END = re.compile(r"\b([A-Za-z]{1,5})\s*$")
# the zones feedparser's RFC 822 parser knows; any other abbreviation it reads as UTC
# ("Mon, 11 Mar 2024 07:30:00 CET" came out an hour late)
FEEDPARSER_ZONES = frozenset((
    "a", "adt", "ast", "at", "cdt", "cst", "ct", "edt", "est", "et", "gmt", "m", "mdt", "mest",
    "met", "mst", "mt", "n", "pdt", "pst", "pt", "ut", "y", "z"))
# '11.03.2024': a dotted numeric date is day first (German, Russian, ...); dateutil reads
# month first unless told
_DOTTED = re.compile(r"\b\d{1,2}\.\d{1,2}\.\d{2,4}\b")
# two defaults that differ in every part of the date: a part the text does not give takes
# the default's, so the two readings differ exactly when the text lacks a year, month or day
_DEFAULTS = (datetime(1901, 2, 3), datetime(1902, 4, 5))


# day, English month and year ('11 Mar 2024', 'March 11, 2024'): a date with all its parts
_FULL_DATE = re.compile(rf"\b\d{{1,2}}\s+{MONTHS_EN}\s+\d{{4}}\b"
                        rf"|\b{MONTHS_EN}\s+\d{{1,2}},?\s+\d{{4}}\b", re.IGNORECASE)


def _dateutil(text: str, default: datetime | None = None) -> datetime:
    with warnings.catch_warnings():
        # an unknown abbreviation: read as UTC like a date without a zone (see above)
        warnings.simplefilter("ignore", dateutil_parser.UnknownTimezoneWarning)
        return dateutil_parser.parse(text, fuzzy=False, tzinfos=ZONE_OFFSETS, default=default,
                                     dayfirst=bool(_DOTTED.search(text)))


def lacks_a_date_part(text: str) -> bool:
    """True when the text gives no year, month or day ('Saturday', 'March 9', 'Mar 2024',
    '17:30', '2024-03'): a parser would take the missing part from today (or from 1 January),
    which would invent a date. False when it gives all three, or when dateutil cannot read
    it (feedparser's own formats: Korean, Greek, Hungarian dates...)."""
    if _FULL_DATE.search(text):  # RFC 822 and prose dates: no need to ask dateutil twice
        return False
    try:
        first, second = (_dateutil(text, default) for default in _DEFAULTS)
    except (ValueError, OverflowError, TypeError):
        return False
    return first.date() != second.date()


# Month names (and the abbreviations feeds use) of the languages news feeds in Latin script
# come in most often, for the dates neither feedparser nor dateutil reads: Portuguese,
# Spanish, French, German, Italian, Dutch. 'Seg, 24 Set 2018 19:42:40 -0300' (UOL) or
# '24 de setembro de 2018' read as their English forms.
_FOREIGN_MONTHS: dict[str, str] = {}
for _english, _names in {
    "January": "janeiro enero janvier janv januar gennaio gen januari ene",
    "February": "fevereiro fev febrero février févr fevr februar febbraio februari",
    "March": "março marco marzo mars märz maerz mär mrz maart mrt",
    "April": "abril abr avril avr aprile",
    "May": "maio mai mayo maggio mag mei",
    "June": "junho junio juin juni giugno giu",
    "July": "julho julio juillet juil juli luglio lug",
    "August": "agosto ago août aout",
    "September": "setembro set septiembre septembre settembre sept",
    "October": "outubro out octubre octobre oktober okt ottobre ott",
    "November": "novembro noviembre novembre",
    "December": "dezembro dez diciembre dic décembre déc dezember december",
}.items():
    for _name in _names.split():
        _FOREIGN_MONTHS[_name] = _english
_FOREIGN_MONTH = re.compile(
    r"(?<![\w])(" + "|".join(sorted(map(re.escape, _FOREIGN_MONTHS), key=len, reverse=True))
    + r")\.?(?![\w])", re.IGNORECASE)
# a weekday before a comma, in any language ('Seg,', 'Mié,', 'Di.,'), and 'de'/'del' between
# the parts ('24 de setembro de 2018'), '1er' ('1er mars')
_LEADING_DAY = re.compile(r"^[^\W\d_]{2,12}\.?,\s*")
_DATE_FILLERS = re.compile(r"(?<=\w)\s+(?:de|del)\s+(?=\w)|(?<=\d)(?:er|º|ª)\b", re.IGNORECASE)


def _in_english(text: str) -> str:
    """``text`` with a foreign month name in English and the words around it that only
    foreign dates hold (a leading weekday, 'de') taken out; the text itself when it names
    no foreign month."""
    if not _FOREIGN_MONTH.search(text):
        return text
    text = _LEADING_DAY.sub("", text.strip())
    text = _DATE_FILLERS.sub(" ", text)
    return _FOREIGN_MONTH.sub(lambda m: _FOREIGN_MONTHS[m.group(1).lower()], text)


def parse_date(value: object) -> datetime | None:
    """Parse a date given as text (any common format, and the month names of a few other
    languages), a datetime or a UTC struct_time. A text that lacks its year, month or day
    gives None: no part is taken from today."""
    found = _parse_date(value)
    if found is None and isinstance(value, str):
        english = _in_english(value)
        if english != value:
            return _parse_date(english)
    return found


def _parse_date(value: object) -> datetime | None:
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
    if impossible_iso_date(text):
        return None
    epoch = _EPOCH.fullmatch(text)
    if epoch:
        try:
            found = datetime.fromtimestamp(int(epoch.group(1)), tz=timezone.utc)
        except (OverflowError, ValueError, OSError):
            return None
        return found if MIN_YEAR <= found.year <= MAX_YEAR else None
    if lacks_a_date_part(text):
        return None
    zone = _ZONE_AT_END.search(text)
    if zone and zone.group(1).upper() in ZONE_OFFSETS \
            and zone.group(1).lower() not in FEEDPARSER_ZONES:
        parsed = None  # feedparser would read the zone as UTC: dateutil knows it
    elif _DOTTED.search(text):
        parsed = None  # feedparser reads it month first, when it reads it
    else:
        parsed = feedparser_parse_date(text)
    if parsed is not None and not (parsed[3:6] == (0, 0, 0) and _TIME_OF_DAY.search(text)):
        return from_struct(parsed)
    # feedparser found no date, or dropped a time of day the text gives ('2024-06-15 10:00:00
    # GMT' came out as midnight), or was not asked: dateutil reads the whole text
    try:
        return to_utc(_dateutil(text))
    except (ValueError, OverflowError, TypeError):
        return from_struct(parsed) if parsed is not None else None
