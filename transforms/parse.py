"""ParseDocuments: RawDocument -> Unit (one per feed entry, page, text document, JSONL line).

The kind of a document is detected from its content, not its name:
RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 go through feedparser (given bytes only, never a path or
URL); JSON Feed 1.0/1.1 is parsed here since feedparser 6 cannot read it; HTML pages, plain
text and JSONL become units that ExtractArticles turns into articles.

Rejects (stage ``parse``): ``binary_content``, ``decode_error``, ``xml_entities`` (any
document declaring XML entities, as defusedxml refuses them), ``not_a_feed`` (XML that is no
feed), ``empty_feed`` (a feed with zero entries), ``invalid_json``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import feedparser
from apache_beam.transforms.error_handling import ErrorHandler

from schemas.records import RawDocument, Unit
from transforms.common import apply_stage
from transforms.dates import from_struct, parse_date
from transforms.decode import decode_bytes, decode_piece, looks_binary
from transforms.errors import (
    BinaryInput,
    EmptyContent,
    EmptyFeed,
    HostileXml,
    InvalidJson,
    NotAFeed,
    NotNews,
    ParserError,
)
from transforms.text import has_surrogates, loads_json, without_surrogates

_ENTITY_DECL = re.compile(r"<!ENTITY", re.I)
_XML_PROLOG = re.compile(r"^\s*<\?xml[^>]*\?>", re.S)
_LEADING_JUNK = re.compile(
    r"^(\s+|<\?[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(\[.*?\])?\s*>)", re.S | re.I
)
_FIRST_TAG = re.compile(r"^<([A-Za-z_][\w:.\-]*)")
_HTML_HINT = re.compile(r"<(html|body|head|article|div|p)\b", re.I)
_FEED_ROOTS = {"rss", "feed", "rdf:rdf", "rdf", "channel", "redirect"}
_HTML_ROOTS = {"html", "head", "body", "article", "main", "section", "div", "p", "span",
               "table", "h1", "h2", "header", "meta", "title"}
JSONFEED_PREFIX = "https://jsonfeed.org/version/"


def _root_tag(text: str) -> str | None:
    head = text[:65536]
    for _ in range(200):
        m = _LEADING_JUNK.match(head)
        if not m or not m.group(0):
            break
        head = head[m.end():]
    m = _FIRST_TAG.match(head)
    return m.group(1).lower() if m else None


def feed_root(text: str) -> bool:
    """Whether ``text`` begins (after a prolog, comments, a doctype) with a feed's root
    element: RSS, Atom or RDF, with or without a namespace prefix (``<atom:feed>``)."""
    root = _root_tag(text.lstrip())
    return root is not None and root.rsplit(":", 1)[-1] in ("rss", "feed", "rdf", "channel")


def sniff_kind(text: str) -> str:
    """'feed', 'jsonfeed', 'json', 'html' or 'text' from the decoded content."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            doc = json.loads(stripped)
        except ValueError:
            return "json"  # maybe JSONL; decided per line
        if isinstance(doc, dict) and str(doc.get("version", "")).startswith(JSONFEED_PREFIX):
            return "jsonfeed"
        return "json"
    if stripped.startswith("<"):
        root = _root_tag(stripped)
        if root in _FEED_ROOTS:
            return "feed"
        if root in _HTML_ROOTS or re.match(r"<!doctype\s+html", stripped, re.I):
            return "html"
        if root is None and _HTML_HINT.search(stripped[:65536]):
            return "html"
        return "feed"  # other XML: feedparser decides, and "no feed" is a reject
    return "text"


def http_charset(content_type: str | None) -> str | None:
    """The charset parameter of an HTTP Content-Type, if any."""
    m = re.search(r"charset\s*=\s*[\"']?([\w.:\-]+)", content_type or "", re.I)
    return m.group(1) if m else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _authors_of(entry: Any) -> list[str]:
    """Raw author strings; ExtractArticles splits and cleans them. feedparser's own split of
    'email (Name)' truncates long top-level domains ('x@site.example' -> 'x@site.exam'), so
    a single author is taken from the raw string."""
    raw = entry.get("author")
    if isinstance(raw, str) and raw.strip() and len(entry.get("authors") or []) <= 1:
        return [raw]
    names: list[str] = []
    for a in entry.get("authors") or []:
        if isinstance(a, dict):
            n = a.get("name") or a.get("email") or ""
            if n:
                names.append(str(n))
    if not names and entry.get("author"):
        names.append(str(entry.get("author")))
    return names


# A character reference to a UTF-16 surrogate (U+D800-U+DFFF, decimal 55296-57343) is no
# character: feedparser decodes it to a lone surrogate and then fails on the whole feed
# encoding it. HTML5 maps it to U+FFFD; so does newsbeam, before feedparser sees it.
_SURROGATE_REF = re.compile(
    r"&#(?:[xX]0*[dD][89a-fA-F][0-9a-fA-F]{2}|0*(?:5529[6-9]|55[3-9]\d\d|5[67]\d\d\d))"
    r"(?=;|\b)", re.ASCII)


def _replacement_ref(match: re.Match[str]) -> str:
    digits = match.group(0)[2:]
    value = int(digits[1:], 16) if digits[:1] in "xX" else int(digits)
    return "&#xFFFD" if 0xD800 <= value <= 0xDFFF else match.group(0)


def _entry_date(entry: Any, name: str, own_key: bool = False) -> Any:
    """An entry's ``name`` date (published, created, updated) read from its text by
    ``parse_date``, which uses feedparser's own parser but leaves an impossible ISO date
    unparsed (feedparser rolls '2024-00-00' over into 30 November 2023) and keeps a time of day
    feedparser drops; feedparser's parse when there is no text. To the second, as feedparser
    gives it (an index written before compares revisions by it). ``own_key``: read the entry
    with ``dict.get``, without FeedParserDict's fallbacks."""
    raw = dict.get(entry, name) if own_key else entry.get(name)
    if not raw:
        parsed = dict.get(entry, f"{name}_parsed") if own_key else entry.get(f"{name}_parsed")
        return from_struct(parsed)
    found = parse_date(str(raw))
    return found.replace(microsecond=0) if found is not None else None


def _feed_units(path: str, text: str, base: str | None = None) -> Iterator[Unit]:
    if "&#" in text:
        text = _SURROGATE_REF.sub(_replacement_ref, text)
    body = _XML_PROLOG.sub("", text, count=1).encode("utf-8")
    body = b'<?xml version="1.0" encoding="utf-8"?>\n' + body
    headers = {"content-type": "application/xml; charset=utf-8"}
    if base:
        # a fetched feed: relative links resolve against the URL it was served from (an
        # xml:base in the feed still wins, as feedparser applies it on top)
        headers["content-location"] = base
    try:
        parsed = feedparser.parse(
            io.BytesIO(body),
            response_headers=headers,
            sanitize_html=True,
            resolve_relative_uris=True,
        )
    except Exception as exc:  # feedparser raises on some broken documents: a typed reject
        raise ParserError(f"feedparser failed: {type(exc).__name__}: {exc}"[:500]) from exc
    version = parsed.get("version") or ""
    entries = parsed.get("entries") or []
    if not version and not entries:
        why = parsed.get("bozo_exception")
        root = _root_tag(text) or "no element"
        if root == "channel" and (parsed.get("feed") or {}).get("title"):
            # a CDF channel with no items (feedparser gives a CDF feed no version): empty,
            # as an RSS channel with no items is, not "no feed"
            title = _text(parsed["feed"]["title"])
            raise EmptyFeed(f"the CDF feed {title!r} has no entries")
        raise NotAFeed(
            f"no RSS, Atom or RDF feed found (root <{root}>){f': {why}' if why else ''}"
        )
    if not entries:
        title = _text((parsed.get("feed") or {}).get("title"))
        raise EmptyFeed(f"the {version or 'feed'} feed {title!r} has no entries")
    kind = "atom" if version.startswith("atom") else "rdf" if version in ("rss090", "rss10") \
        else "rss"
    feed = parsed.get("feed") or {}
    feed_title = _text(feed.get("title"))
    feed_link = _text(feed.get("link"))
    feed_lang = _text(feed.get("language"))
    for i, entry in enumerate(entries):
        contents = [c for c in entry.get("content") or [] if isinstance(c, dict)]
        html = next((c.get("value", "") for c in contents if "html" in c.get("type", "")), "")
        plain = next((c.get("value", "") for c in contents if c.get("type") == "text/plain"), "")
        title_detail = entry.get("title_detail") or {}
        published = _entry_date(entry, "published") or _entry_date(entry, "created") \
            or _entry_date(entry, "updated")
        raw_date = entry.get("published") or entry.get("created") or entry.get("updated")
        fields = {
            "title": _text(entry.get("title")),
            "title_is_html": "html" in str(title_detail.get("type", "")),
            "link": _entry_link(entry),
            "guid": _text(entry.get("id")),
            "authors": _authors_of(entry),
            # RSS 1.0's dc:date reaches feedparser as 'updated': for an entry with no other
            # date it is the publication date.
            "published": published,
            "date_unparsed": str(raw_date)[:100] if raw_date and published is None else None,
            # not entry.get(): feedparser's get("updated_parsed") falls back to the
            # publication date, which made every RSS entry look updated when published
            "updated": _entry_date(entry, "updated", own_key=True),
            "summary": _text(entry.get("summary")),
            "html": html,
            "text": plain,
            "categories": [str(t.get("term")) for t in entry.get("tags") or []
                           if isinstance(t, dict) and t.get("term")],
            "source": feed_title,
            "feed_link": feed_link,
            "language": _text(title_detail.get("language")) or feed_lang,
        }
        yield Unit(input_path=path, input_kind=kind, index=i, fields=fields)


def _entry_link(entry: Any) -> str:
    """The entry's link; FeedBurner's ``feedburner:origLink`` when it gives one (the entry's
    own link is then a feedproxy redirect, which would stand for the story in url, its
    domain and URL dedupe)."""
    original = _text(entry.get("feedburner_origlink"))
    if original.startswith(("http://", "https://")):
        return original
    return _text(entry.get("link"))


def _jsonfeed_units(path: str, doc: dict[str, Any]) -> Iterator[Unit]:
    items = doc.get("items")
    if not isinstance(items, list) or not items:
        raise EmptyFeed("the JSON Feed has no items")
    feed_authors = doc.get("authors") or ([doc["author"]] if doc.get("author") else [])
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            yield Unit(path, "jsonfeed", i, {"invalid": f"item is a {type(item).__name__}"},
                       raw=json.dumps(item)[:2000])
            continue
        authors = item.get("authors") or ([item["author"]] if item.get("author") else []) \
            or feed_authors
        fields = {
            "title": _text(item.get("title")),
            "link": _text(item.get("url")) or _text(item.get("external_url")),
            "guid": str(item.get("id") or ""),
            "authors": [str(a.get("name")) for a in authors
                        if isinstance(a, dict) and a.get("name")],
            "published": parse_date(item.get("date_published")),
            "date_unparsed": str(item.get("date_published"))[:100]
            if item.get("date_published") and parse_date(item.get("date_published")) is None
            else None,
            "updated": parse_date(item.get("date_modified")),
            "summary": _text(item.get("summary")),
            "html": _text(item.get("content_html")),
            "text": _text(item.get("content_text")),
            "categories": [str(t) for t in item.get("tags") or [] if isinstance(t, str)],
            "source": _text(doc.get("title")),
            "feed_link": _text(doc.get("home_page_url")),
            "language": _text(item.get("language")) or _text(doc.get("language")),
        }
        yield Unit(input_path=path, input_kind="jsonfeed", index=i, fields=fields)


def _json_units(path: str, text: str) -> Iterator[Unit]:
    stripped = text.strip()
    try:
        doc = loads_json(stripped)
    except ValueError:
        doc = None
    if isinstance(doc, list):
        for i, rec in enumerate(doc):
            yield Unit(path, "jsonl", i, raw=json.dumps(rec, ensure_ascii=False))
        return
    if isinstance(doc, dict):
        yield Unit(path, "jsonl", 0, raw=stripped)
        return
    # "\n" only: str.splitlines also splits on U+2028, U+0085 and others, which JSON allows
    # raw inside strings (json.dumps with ensure_ascii=False writes them)
    lines = text.split("\n")
    units = [Unit(path, "jsonl", n, raw=line) for n, line in enumerate(lines) if line.strip()]
    if not any(_is_json_object(u.raw) for u in units):
        raise InvalidJson("the document starts like JSON but no line is a JSON object")
    yield from units


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def parse_document(doc: RawDocument) -> Iterator[Unit]:
    """Split one document into its input units. Raises a RejectError for the whole file, so
    a document never disappears without a row."""
    units = list(_units_of(doc))
    if not units and doc.first_line is None:  # a piece of a JSONL file may hold blank lines only
        raise EmptyContent("the document holds no records")
    # raw text never holds a lone surrogate: bytes decoded with errors="replace" cannot give
    # one, and JSON records are read through loads_json; feedparser's fields can
    for unit in units:
        if has_surrogates(unit.fields):
            unit = dataclasses.replace(unit, fields=without_surrogates(unit.fields))
        yield unit


def _chunk_units(doc: RawDocument, first_line: int) -> Iterator[Unit]:
    """The units of a piece of a JSONL file (``RawDocument.first_line``): one per line that is
    not blank, numbered as in the whole file. The file's first line is a JSON object (that is
    how its reader chose to read it in pieces), so no piece is judged as a whole JSON value."""
    if first_line == 0 and looks_binary(doc.data):  # the head of the file, as for a whole one
        raise BinaryInput("binary content (NUL or control bytes), not a text document")
    text = decode_piece(doc.data, at_start=first_line == 0)  # only piece 0 holds line 0
    for n, line in enumerate(text.split("\n")):
        if line.strip():
            yield Unit(doc.input_path, "jsonl", first_line + n, raw=line)


_JSON_START = re.compile(rb"(?:\xef\xbb\xbf)?\s*[{\[]")


def _starts_like_json(data: bytes) -> bool:
    """Does the document start (after white space and a UTF-8 byte order mark) with { or [?"""
    return _JSON_START.match(data, 0, 65536) is not None


def _units_of(doc: RawDocument) -> Iterator[Unit]:
    if doc.first_line is not None:
        yield from _chunk_units(doc, doc.first_line)
        return
    if looks_binary(doc.data):
        raise BinaryInput("binary content (NUL or control bytes), not a text document")
    headers = doc.headers or {}
    text, _codec = decode_bytes(doc.data, http_charset(headers.get("content-type")),
                                own_declaration=not _starts_like_json(doc.data))
    kind = sniff_kind(text)
    # the whole text: a declaration after a megabyte of comment or blanks is one still
    if kind in ("feed", "html") and _ENTITY_DECL.search(text):
        raise HostileXml("the document declares XML entities; refused as hostile")
    if kind == "feed":
        yield from _feed_units(doc.input_path, text, headers.get("content-location"))
    elif kind == "jsonfeed":
        yield from _jsonfeed_units(doc.input_path, loads_json(text))
    elif kind == "json":
        yield from _json_units(doc.input_path, text)
    elif kind == "html":
        yield Unit(doc.input_path, "html", 0, raw=text)
    else:
        not_news(doc.input_path)
        yield Unit(doc.input_path, "text", 0, raw=text)


# plain-text formats that hold code, tables or settings, never articles (by file extension;
# names that people also give text, such as .log, .r or .m, are not in it: the one exception to
# "the name does not matter" is kept to names that cannot be an article)
NOT_NEWS_SUFFIXES = frozenset(
    ".py .pyi .js .mjs .ts .css .scss .c .h .cc .cpp .hpp .java .kt .go .rs .rb .php .pl .sh "
    ".bash .ps1 .bat .sql .swift .scala .lua .csv .tsv .yaml .yml .toml .ini .cfg .conf "
    ".properties .lock .diff .patch .ipynb".split())
# the files a project or a data set ships beside its content (by name, any extension)
NOT_NEWS_NAMES = frozenset(
    "license licence copying authors contributors changelog readme makefile dockerfile "
    "requirements".split())


def not_news(path: str) -> None:
    """Raise NotNews for a plain-text file whose name says it is no article."""
    name = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    for suffix in (".gz", ".bz2"):
        name = name.removesuffix(suffix)
    if name.partition(".")[0] in NOT_NEWS_NAMES:
        raise NotNews(f"{name}: a project or data set file, not an article")
    _, dot, last = name.rpartition(".")
    ext = dot + last
    if dot and ext in NOT_NEWS_SUFFIXES:
        raise NotNews(f"a {ext} file holds code, a table or settings, not an article")


class ParseDocuments(beam.PTransform):
    """RawDocument -> Unit. A document that yields no unit is one reject (stage ``parse``)."""

    def __init__(self, error_handler: ErrorHandler) -> None:
        super().__init__()
        self._errors = error_handler

    def expand(self, docs: beam.PCollection[RawDocument]) -> beam.PCollection[Unit]:
        return apply_stage(docs, "Parse", "parse", parse_document, self._errors)
