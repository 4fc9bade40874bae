"""ExtractArticles: Unit -> Article.

Feed entries take their body from the entry content (or summary); HTML pages go through
trafilatura (with its baseline extractor as fallback for pages too small for the main one);
plain-text articles are read line by line (title, byline, dates, body); JSONL records carry
``url`` plus ``html`` or ``text``, and optionally ``title`` and ``published``.

The article id is derived from the canonical URL when there is one, else from the normalized
content: never from file paths, order or run time.

Rejects (stage ``extract``): ``invalid_json`` and ``invalid_record`` (JSONL lines),
``extraction_failed`` (a page trafilatura cannot read), ``empty_content`` (no title and no
body).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urljoin

import apache_beam as beam
import trafilatura
from apache_beam.transforms.error_handling import ErrorHandler
from lxml import etree
from trafilatura import metadata as tmeta
from trafilatura import utils as tutils
from trafilatura.settings import Document as TrafilaturaDocument

from schemas.records import Article, Unit
from transforms.boilerplate import boilerplate_rule, update_stamp
from transforms.common import apply_stage
from transforms.dates import MONTHS_EN, parse_date, text_date
from transforms.errors import (
    EmptyContent,
    ExtractionFailed,
    HtmlTooDeep,
    InvalidJson,
    InvalidRecord,
    PageTooLarge,
)
from transforms.html_meta import date_from_url, page_metadata
from transforms.text import (
    content_id,
    content_key,
    count_words,
    html_to_text,
    loads_json,
    normalize_body,
    normalize_line,
    sha256_hex,
    strip_tags,
    words,
)
from transforms.urls import canonical_url, domain_of

MAX_TITLE_CHARS = 300
MIN_DISTINCT_CHARS = 8
# how far after its ingestion an article's date may lie (the zones of the world span 26 hours)
MAX_AHEAD = timedelta(days=1, hours=2)

_BYLINE = re.compile(r"^(?:by|von|par|por|автор:?)\s+(?P<rest>.{2,200})$", re.I)
_DATE_TAIL = re.compile(
    r"\s*[,|·–-]?\s*(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day,?\s+)?"  # not a name
    rf"(?P<date>{MONTHS_EN}\s+\d{{1,2}},?\s+\d{{4}}.*"
    rf"|\d{{1,2}}\s+{MONTHS_EN}\s+\d{{4}}.*|\d{{4}}-\d{{2}}-\d{{2}}.*)$",
    re.I,
)
_NAME_SPLIT = re.compile(r"\s*(?:,|;|\band\b|\bund\b|\bet\b|\by\b|\bи\b|&)\s*", re.I)
_EMAIL_NAME = re.compile(r"^\S+@\S+\s*\((?P<name>[^)]+)\)$")


_UPPER = "A-ZÀ-ÖØ-ÞĀ-Ž"
# a byline's place after a name ('Tom McCarthy in New York', 'Ashifa Kassam in Stanstead,
# Quebec', 'Sam Jones in Madrid and Stephen Burgen in Barcelona'): not part of the name
_IN_PLACE = re.compile(
    rf"\s+in\s+(?:[{_UPPER}][\w.'’-]*\s*)+(?:,\s*(?:[{_UPPER}][\w.'’-]*\s*)+)?"
    r"(?=\s*(?:\band\b|&|;|$))")
_EMAIL_AFTER = re.compile(r"\s*[(<]\S+@\S+[)>]")  # 'Name (name@host)'


def split_names(text: str) -> list[str]:
    """'A and B', 'A, B & C', 'email@host (Name)', 'Name (email@host)', 'A in Place',
    'A e B' (both of two words or more) -> clean names."""
    text = normalize_line(text)
    m = _EMAIL_NAME.match(text)
    if m:
        return [m.group("name").strip()]
    text = _IN_PLACE.sub(" ", _EMAIL_AFTER.sub("", text)).strip()
    names: list[str] = []
    for part in _NAME_SPLIT.split(text):
        part = part.strip(" .")
        if not part:
            continue
        sides = part.split(" e ")  # Portuguese and Italian 'and', also a name particle
        if len(sides) > 1 and all(len(side.split()) >= 2 for side in sides):
            names.extend(side.strip() for side in sides)
        else:
            names.append(part)
    return names


# what may stand in a name besides capitalized words ('Ludwig van Beethoven', 'J. R. Smith')
NAME_PARTICLES = frozenset({"de", "da", "di", "del", "della", "van", "von", "der", "den",
                            "bin", "al", "el", "la", "le", "y", "e", "du", "dos", "das", "ter",
                            "ten", "ibn", "abu"})


def name_words(name: str) -> bool:
    """One to six words, each capitalized (or a particle such as 'van', or not a letter)."""
    tokens = name.split()
    return 1 <= len(tokens) <= 6 and all(
        t[:1].isupper() or t.lower() in NAME_PARTICLES or not t[:1].isalpha() for t in tokens)


def name_like(name: str) -> bool:
    """Whether ``name`` can be a person's or an agency's name in a byline: ``name_words``, not
    opening with a particle, with no sentence punctuation. 'By the end of the week, ...',
    'Von den Sturmvögeln zu ...' and 'Par ailleurs, ...' open sentences, not bylines."""
    first = name.split()[0] if name.split() else ""
    return name_words(name) and not any(c in name for c in ":!?…\"“”«»") and (
        first[:1].isupper() or not first[:1].isalpha())


def parse_byline(line: str) -> tuple[list[str], datetime | None] | None:
    """'By A and B November 26, 2018' -> (['A', 'B'], 2018-11-26). None if not a byline: a
    line starting with 'By' (or 'Von', 'Par', 'Por') whose rest is not a list of names is the
    body's first sentence."""
    m = _BYLINE.match(line.strip())
    if not m:
        return None
    rest = m.group("rest")
    when = None
    d = _DATE_TAIL.search(rest)
    if d:
        when = parse_date(d.group("date"))
        rest = rest[: d.start()]
    names = split_names(rest)
    return (names, when) if names and all(name_like(n) for n in names) else None


def parse_text_article(raw: str) -> dict[str, Any]:
    """A plain-text article (title, byline, dates and body in lines) -> fields."""
    paragraphs = normalize_body(raw).split("\n\n")
    fields: dict[str, Any] = {"authors": [], "title": "", "published": None, "updated": None,
                              "date_source": "none"}
    body: list[str] = []
    head = True
    for para in paragraphs:
        if head:
            stamp = update_stamp(para)
            if stamp is not None:
                fields["updated"] = stamp
                continue
            if boilerplate_rule(para):
                continue
            byline = parse_byline(para)
            if byline is not None:
                fields["authors"] = byline[0]
                if byline[1] is not None or fields["published"] is None:
                    fields["published"] = byline[1]
                    fields["date_source"] = "text" if byline[1] else "none"
                continue
            on_its_own = text_date(para)  # a date line before the body ('26 ноября 2018')
            if on_its_own is not None:
                if fields["published"] is None:
                    fields["published"], fields["date_source"] = on_its_own, "text"
                continue
            if not fields["title"] and len(para) <= MAX_TITLE_CHARS and not para.endswith("."):
                fields["title"] = para
                continue
            head = False
        body.append(para)
    fields["text"] = "\n\n".join(body)
    return fields


MAX_HTML_DEPTH = 250
# trafilatura's own size cap does not apply to in-memory input: a 57 MB page took 1.6 GB.
MAX_HTML_CHARS = 10_000_000


def tree_depth(tree: Any) -> int:
    """Deepest element nesting of a parsed page (iterative: no recursion limit)."""
    depth = deepest = 0
    for event, _node in etree.iterwalk(tree, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest


# The article body split into several containers of one class, with ads or inline modules
# between them (Condé Nast's "article__body" chunks): trafilatura keeps the first container
# only. Chunks of the first body container's class inside the same <article> are merged into
# it before extraction; a list of teasers (each in its own <article>, or outside any) is not.
_BODY_CLASS = re.compile(
    r"(^|[\s_-])(article|post|entry|story)(-|__|_)?(body|content|text)($|[\s_-])", re.I
)


def merge_body_chunks(tree: Any) -> bool:
    """Move the later chunks of a split article body into the first one (in place)."""
    found = [e for e in tree.iter("div", "section", "article")
             if e.get("itemprop") == "articleBody" or _BODY_CLASS.search(e.get("class") or "")]
    if len(found) < 2:
        return False
    first = found[0]
    chunks = [e for e in found if e.tag == first.tag and e.get("class") == first.get("class")]
    chunks = [e for e in chunks if not any(a in chunks for a in e.iterancestors())]
    if len(chunks) < 2:
        return False
    article = next(first.iterancestors("article"), None)
    if article is None or any(next(c.iterancestors("article"), None) is not article
                              for c in chunks[1:]):
        return False
    for chunk in chunks[1:]:
        first.extend(list(chunk))
        chunk.getparent().remove(chunk)
    return True


# favor_precision sometimes keeps nothing but a notice and a URL (a page whose body sits in a
# block its stricter rules prune); below this many words outside boilerplate lines, the page is
# extracted again in trafilatura's balanced mode and the longer text kept.
MIN_PRECISION_WORDS = 25


def _content_words(text: str, enough: int | None = None) -> int:
    """Words outside boilerplate lines; counting stops once ``enough`` are found."""
    found = 0
    for line in text.splitlines():
        if line.strip() and not boilerplate_rule(line):
            found += len(words(line))
            if enough is not None and found >= enough:
                break
    return found


# trafilatura.metadata.extract_catstags searches the page with several XPath expressions and
# keeps only the links whose href holds "/categor..." (categories) or "/tag..." (tags): on a
# page with no such link (most AEB pages: 71% for categories, 73% for tags) the searches find
# nothing, and one test for such a link costs a sixth of them. The category fallback (meta
# tags) is its own.
_CATSTAGS_CUE = {
    "category": etree.XPath("boolean(//a[contains(@href, '/categor')])"),
    "tag": etree.XPath("boolean(//a[contains(@href, '/tag')])"),
}
_CATEGORY_META = etree.XPath(
    './/head//meta[@property="article:section" or contains(@name, "subject")][@content]')


def catstags(metatype: str, tree: Any) -> list[str]:
    """``trafilatura.metadata.extract_catstags(metatype, tree)``, the same values, searched
    only when the page has a link that can match."""
    if _CATSTAGS_CUE[metatype](tree):
        return tmeta.extract_catstags(metatype, tree)
    if metatype != "category":
        return []
    found = (e.attrib["content"] for e in _CATEGORY_META(tree))
    return [r for r in dict.fromkeys(tutils.line_processing(x) for x in found if x) if r]


# ids and classes of a page's masthead: a heading inside one names the site, not the story
_MASTHEAD = frozenset(("header", "site-header", "masthead", "branding", "site-branding",
                       "logo", "site-logo", "site-title", "site-name", "sitename"))


def site_heading(h1: Any) -> bool:
    """Whether a page's h1 sits in its masthead (an element with a masthead id or class, or a
    <header> outside any <article> or <main>), or links to the site's front page."""
    for node in h1.iterancestors():
        tokens = {*(node.get("class") or "").lower().split(), (node.get("id") or "").lower()}
        if tokens & _MASTHEAD:
            return True
        if node.tag in ("article", "main"):
            return False
        if node.tag == "header" and not any(a.tag in ("article", "main")
                                            for a in node.iterancestors()):
            return True
    links = [h1, *h1.iterancestors("a")] if h1.tag == "a" else [*h1.iter("a"),
                                                                 *h1.iterancestors("a")]
    return any((a.get("href") or "").strip() in ("/", "./", "index.html") for a in links)


class TrafilaturaMetadata:
    """trafilatura's metadata for one page, each field computed on first use.

    ``bare_extraction(with_metadata=True)`` runs every metadata extractor on every page, and
    the costly ones (the author search deep-copies the tree, htmldate's search, the licence
    search) are wasted when the page's JSON-LD or meta tags already gave newsbeam that field.
    This follows ``trafilatura.metadata.extract_metadata`` step by step, in its order and with
    its final trimming, but only for the fields newsbeam reads (a test checks the values
    equal ``extract_metadata``'s on real pages). Metadata was about 25% of trafilatura's time
    on the AEB pages, most of it the author search (docs/benchmarks.md)."""

    def __init__(self, tree: Any, default_url: str | None) -> None:
        self._tree = tree
        self._done: dict[str, Any] = {}
        try:
            md = tmeta.examine_meta(tree)
        except (TypeError, ValueError):  # as bare_extraction: no metadata, not a failure
            md = TrafilaturaDocument()
        if md.author and " " not in md.author:
            md.author = None
        try:
            md = tmeta.extract_meta_json(tree, md)
        except Exception:  # trafilatura's own guard: bugs in its JSON-LD reader
            pass
        if not md.url:
            try:
                md.url = tmeta.extract_url(tree, default_url)
            except (TypeError, ValueError):
                md.url = default_url
        self._md = md

    @property
    def raw_url(self) -> str | None:
        """The URL as trafilatura hands it to its text extraction (before trimming)."""
        return self._md.url

    def url(self) -> str | None:
        return self._get("url", lambda: self._md.url)

    def _get(self, name: str, compute: Any, empty: Any = None) -> Any:
        if name not in self._done:
            try:
                value = compute()
            except (TypeError, ValueError):  # bare_extraction's guard: the field stays empty
                value = empty
            if isinstance(value, str):  # Document.clean_and_trim
                if len(value) > 10000:
                    value = value[:9999] + "\u2026"
                value = tutils.line_processing(html.unescape(value))
            self._done[name] = value
        return self._done[name]

    def title(self) -> str | None:
        def find() -> str | None:
            if self._md.title:
                return self._md.title
            h1s = self._tree.findall(".//h1")
            if len(h1s) == 1 and site_heading(h1s[0]):
                # trafilatura takes a page's only h1 as its title, but this one is the
                # site's name in its header (a Korean magazine's "엔터 미디어" over every
                # story): the <title> names the story
                full, first, _second = tmeta.examine_title_element(self._tree)
                heading = tutils.trim(h1s[0].text_content())
                story = first or full  # the <title> without the site's name, when it has one
                if story and heading not in story:
                    return story
            return tmeta.extract_title(self._tree)
        return self._get("title", find)

    def author(self) -> str | None:
        return self._get("author", lambda: self._md.author or tmeta.extract_author(self._tree))

    def date(self) -> str | None:
        def find() -> str | None:
            params = tmeta.set_date_params(True)
            params["url"] = self._md.url
            return tmeta.find_date(self._tree, **params)
        return self._get("date", find)

    def sitename(self) -> str | None:
        def find() -> str | None:
            name = self._md.sitename or tmeta.extract_sitename(self._tree)
            if name:
                name = name.lstrip("@")
                if name and "." not in name and not name[0].isupper():
                    name = name.title()
            elif self._md.url:
                found = tmeta.META_URL.match(self._md.url)
                name = found[1] if found else None
            return name
        return self._get("sitename", find)

    def categories(self) -> list[str]:
        return self._get("categories", lambda: list(
            (self._md.categories or catstags("category", self._tree))
            + (self._md.tags or catstags("tag", self._tree))), empty=[])

    def description(self) -> str | None:
        return self._get("description", lambda: self._md.description)

    def language(self) -> str | None:
        return self._get("language", lambda: self._md.language)


# trafilatura compares its own extraction with readability's and jusText's on every page
# (``fast=False``): about a third of its text extraction time on the AEB pages, where it changed
# the text of 6 pages of 181, each with trafilatura's own text under 900 characters. It prefers
# another extractor when its own text is short or empty, when readability finds more than twice
# as much, or when the body has no paragraph text (or more tables than paragraphs). So the text
# is extracted without the comparison first, and again with it where one of these may hold: the
# text is under COMPARE_BELOW_CHARS, the page's paragraph text is more than COMPARE_PAGE_SHARE
# times as long (readability builds on paragraphs), or the body is deficient. One more
# difference of the fast mode is guarded: when its main pass finds next to nothing, trafilatura
# recovers loose paragraphs and, in fast mode only, keeps blocks of a "teaser" class; a fast
# text that holds text of such a block gets the full extraction.
# This is a heuristic, not an equivalence: readability also takes text outside <p> elements
# (plain divs, list items), so a page whose real story sits in such blocks beside a short,
# wrongly chosen block of paragraphs can keep the fast text where the full run would have
# switched. On all 181 AEB pages the text is the same as with the comparison everywhere
# (tests/quality), and 29 pages are extracted twice (docs/benchmarks.md).
COMPARE_BELOW_CHARS = 1000
COMPARE_PAGE_SHARE = 2


def _paragraph_chars(tree: Any) -> int:
    """Characters of paragraph text in the page (whitespace included: an overestimate)."""
    return sum(len(t) for t in tree.xpath("//p//text()"))


def names_teasers(html: str) -> bool:
    """Whether the page may hold a block trafilatura's teaser rule matches (a class or id
    containing "teaser" after T -> t): a substring test on the source, a superset of it."""
    return "teaser" in html or "Teaser" in html


# trafilatura's teaser rule (xpaths.TEASER_DISCARD_XPATH), on any element of the raw tree
_TEASER_BLOCKS = etree.XPath(
    "//*[contains(translate(@class, 'T', 't'), 'teaser')"
    " or contains(translate(@id, 'T', 't'), 'teaser')]")


def holds_teaser_text(text: str, tree: Any) -> bool:
    """Whether ``text`` holds a line (20 characters or more) of a teaser-class block."""
    flat = " ".join(text.split())
    for block in _TEASER_BLOCKS(tree):
        for piece in block.itertext():
            piece = " ".join(piece.split())
            if len(piece) >= 20 and piece in flat:
                return True
    return False


def needs_comparison(text: str, body: Any, tree: Any, html: str = "") -> bool:
    """Whether trafilatura's comparison with readability and jusText (or its full mode's
    teaser pruning) may change ``text``, the extraction without them (see
    COMPARE_BELOW_CHARS). ``html``: the page's source (for ``names_teasers``)."""
    if len(text) < COMPARE_BELOW_CHARS or body is None:
        return True
    if not body.xpath(".//p//text()") or len(body.findall(".//table")) > len(
            body.findall(".//p")):
        return True
    if _paragraph_chars(tree) > COMPARE_PAGE_SHARE * len(text):
        return True
    return names_teasers(html) and holds_teaser_text(text, tree)


def _main_text(tree: Any, url: str | None, html: str = "") -> str:
    """trafilatura's main text: precision mode, balanced mode when that keeps next to
    nothing. Metadata is read separately (TrafilaturaMetadata), on demand. The comparison
    with readability and jusText runs only where it may matter (COMPARE_BELOW_CHARS);
    ``html``: the page's source (``needs_comparison``)."""

    def run(precision: bool, fast: bool = False) -> tuple[str, Any]:
        doc = trafilatura.bare_extraction(
            tree, url=url, with_metadata=False, include_comments=False, include_tables=True,
            favor_precision=precision, fast=fast,
        )
        if doc is None:
            return "", None
        return getattr(doc, "text", None) or "", getattr(doc, "body", None)

    text, body = run(True, fast=True)
    if needs_comparison(text, body, tree, html):
        text, _body = run(True)
    found = _content_words(text, MIN_PRECISION_WORDS)
    if found < MIN_PRECISION_WORDS:
        retry, _body = run(False)
        if _content_words(retry) > found:
            text = retry
    return text


def html_fields(html: str, url: str | None) -> dict[str, Any]:
    """Parse the page once; read its metadata from the tree, then hand the same tree to
    trafilatura for the main text."""
    if len(html) > MAX_HTML_CHARS:
        raise PageTooLarge(f"the page has {len(html)} characters; pages over {MAX_HTML_CHARS} are "
                       "not extracted (memory)")
    tree = trafilatura.load_html(html)
    if tree is None:
        raise ExtractionFailed("the page cannot be parsed as HTML")
    page = page_metadata(tree)
    merge_body_chunks(tree)  # after the metadata: it moves elements around
    # favor_precision: +0.5 points of F1 on the AEB benchmark (docs/benchmarks.md).
    meta = TrafilaturaMetadata(tree, url)
    text = _main_text(tree, url or meta.raw_url, html)
    if not text:
        depth = tree_depth(tree)
        if depth >= MAX_HTML_DEPTH:
            raise HtmlTooDeep(f"the page is nested {depth} levels deep; no text can be "
                              "extracted from it")
        try:
            _tree, text, _length = trafilatura.baseline(tree)
        except Exception as exc:
            raise ExtractionFailed(f"trafilatura cannot read the page: {exc}") from exc
        if not (text or "").strip():
            raise EmptyContent("no article text found in the page")
    title = page.get("jsonld_title") or meta.title() or page.get("og_title") or ""
    if not title:
        found = tree.xpath("//title/text()")
        title = found[0] if found else ""
    if page.get("jsonld_authors"):
        authors = list(page["jsonld_authors"])
    elif page.get("meta_authors"):
        authors = [page["meta_authors"]]
    else:
        authors = [meta.author()] if meta.author() else []
    canonical = page.get("canonical") or meta.url() or url or ""
    if canonical and url:
        try:
            canonical = urljoin(url, canonical)
        except ValueError:
            canonical = url
    published, date_source, unparsed = None, "none", None
    candidates = (
        ("jsonld", page.get("jsonld_published")),
        ("meta", page.get("meta_published")),
        ("url", date_from_url(canonical or url)),
        ("text", meta.date),
    )
    for source, raw in candidates:
        if callable(raw):
            raw = raw()
        if not raw:
            continue
        published = parse_date(raw)
        if published is not None:
            date_source = source
            break
        unparsed = unparsed or str(raw)
    updated = parse_date(page.get("jsonld_modified")) or parse_date(page.get("meta_modified"))
    categories = [c for c in meta.categories() if c]
    if page.get("jsonld_section") and page["jsonld_section"] not in categories:
        categories.insert(0, page["jsonld_section"])
    return {
        "title": title,
        "text": text or "",
        "link": canonical,
        "authors": authors,
        "published": published,
        "updated": updated,
        "date_source": date_source,
        "date_unparsed": unparsed if published is None else None,
        "summary": page.get("description") or meta.description() or "",
        "categories": categories,
        "source": page.get("site_name") or page.get("jsonld_publisher") or meta.sitename()
        or "",
        "language": page.get("lang") or meta.language() or "",
        "rights": page.get("rights"),
    }


_JSON_TYPES = {"int": "number", "float": "number", "bool": "boolean", "list": "array",
               "dict": "object", "str": "string", "NoneType": "null"}


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value).__name__, type(value).__name__)


def _jsonl_fields(raw: str, first_line: int = 1) -> dict[str, Any]:
    """``first_line``: the line of the file ``raw`` starts on (for the error message)."""
    try:
        rec = loads_json(raw)
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"line {first_line + exc.lineno - 1} is not valid JSON: {exc.msg} "
                          f"(column {exc.colno})") from exc
    except ValueError as exc:
        raise InvalidJson(f"line {first_line} is not valid JSON: {exc}") from exc
    # a record on one line is named by its line; a pretty-printed file is one document
    where = f"line {first_line}" if "\n" not in raw.strip() else "the JSON document"
    if not isinstance(rec, dict):
        raise InvalidRecord(f"{where} is a JSON {_json_type(rec)}, not an object")
    html, text = rec.get("html"), rec.get("text")
    has_html = isinstance(html, str) and bool(html.strip())
    if not has_html and not (isinstance(text, str) and text.strip()):
        wrong = [f"'{k}' is a JSON {_json_type(v)}" for k, v in (("html", html), ("text", text))
                 if v is not None and not isinstance(v, str)]
        if not wrong and (isinstance(html, str) or isinstance(text, str)):
            # the field is there, only empty: no text to store, not a malformed record
            given = " and ".join(f"'{k}'" for k, v in (("html", html), ("text", text))
                                 if isinstance(v, str))
            raise EmptyContent(f"{where}: its {given} {'are' if ' and ' in given else 'is'} "
                               "empty")
        keys = ", ".join(str(k) for k in list(rec)[:12]) or "none"
        raise InvalidRecord(f"{where}: " + (
            ", ".join(wrong) + ", not a string" if wrong else
            f"the record has neither 'html' nor 'text' (its keys: {keys})"))
    url = rec.get("url") if isinstance(rec.get("url"), str) else None
    if isinstance(html, str) and html.strip():
        fields = html_fields(html, url)
    else:
        fields = {"text": normalize_body(str(text)), "link": url or ""}
    if isinstance(rec.get("title"), str) and rec["title"].strip():
        fields["title"] = rec["title"]
    if rec.get("published"):
        published = parse_date(rec.get("published"))
        if published is not None:
            fields["published"], fields["date_source"] = published, "feed"
        elif not fields.get("published"):
            fields["date_unparsed"] = str(rec["published"])[:100]
    if url:
        fields["link"] = url
    for key in ("source", "language", "summary"):
        if isinstance(rec.get(key), str) and rec[key]:
            fields[key] = rec[key]
    authors = rec.get("authors") or rec.get("author")
    if isinstance(authors, str):
        fields["authors"] = split_names(authors)
    elif isinstance(authors, list):
        fields["authors"] = [str(a) for a in authors if a]
    return fields


def _language(code: str | None) -> str | None:
    """ISO 639-1 from a declared language tag ('en-US' -> 'en')."""
    if not code:
        return None
    m = re.match(r"^([A-Za-z]{2})(?:[-_].*)?$", code.strip())
    return m.group(1).lower() if m else None


def _truncated(title: str) -> bool:
    return title.rstrip().endswith(("...", "\u2026"))


def _has_time(value: datetime | None) -> bool:
    return value is not None and (value.hour, value.minute, value.second) != (0, 0, 0)


def _date_rank(value: datetime | None, source: str | None, side: str) -> int:
    """Smaller is richer: the publisher's structured date with a time of day (JSON-LD, meta
    tags), then the feed's with a time, then any other page date, then a feed's bare day."""
    if value is None:
        return 9
    timed = _has_time(value)
    if side == "page" and source in ("jsonld", "meta") and timed:
        return 0
    if side == "feed" and timed:
        return 1
    return 2 if side == "page" else 3


def merge_linked(feed: dict[str, Any], page: dict[str, Any]) -> dict[str, Any]:
    """A feed entry's fields and its linked page's fields -> one set, the richer side winning
    field by field; ``field_sources`` records which side gave what.

    - text, summary, categories: the longer (more words, more entries); the feed wins ties.
    - title: the feed's (an editor's headline, without the site name pages append), unless
      it is missing or cut short ("...").
    - authors: the side naming more people; the page wins ties (JSON-LD names are full).
    - published: the page's JSON-LD or meta date when it has a time of day, else the feed's
      when it has one, else any date the page gives, else the feed's (``_date_rank``).
    - updated: the later one. source: the page's site name, else the feed title.
    - link: the page's canonical URL; language and rights: the page's, else the feed's.
    """
    merged = dict(feed)
    sources: dict[str, str] = {}

    def take(name: str, side: str) -> None:
        merged[name] = (page if side == "page" else feed).get(name)
        sources[name] = side

    page_words = len(words(page.get("text") or ""))
    take("text", "page" if page_words > len(words(feed.get("text") or "")) else "feed")
    ptitle, ftitle = str(page.get("title") or ""), str(feed.get("title") or "")
    use_page_title = bool(ptitle) and (not ftitle or (_truncated(ftitle) and len(ptitle)
                                                      > len(ftitle.rstrip(".\u2026 "))))
    take("title", "page" if use_page_title else "feed")
    page_authors, feed_authors = page.get("authors") or [], feed.get("authors") or []
    take("authors", "page" if page_authors and len(page_authors) >= len(feed_authors)
         else "feed")
    ppub, fpub = page.get("published"), feed.get("published")
    if _date_rank(ppub, page.get("date_source"), "page") < _date_rank(fpub, "feed", "feed"):
        merged["published"], merged["date_source"] = ppub, page.get("date_source")
        sources["published_at"] = "page"
    else:
        merged["date_source"] = "feed" if fpub is not None else "none"
        sources["published_at"] = "feed"
        if fpub is None:
            merged["date_unparsed"] = feed.get("date_unparsed") or page.get("date_unparsed")
    pupd, fupd = page.get("updated"), feed.get("updated")
    later_page = pupd is not None and (fupd is None or pupd > fupd)
    merged["updated"] = pupd if later_page else fupd
    sources["updated_at"] = "page" if later_page else "feed"
    psum, fsum = str(page.get("summary") or ""), str(feed.get("summary") or "")
    take("summary", "page" if len(words(psum)) > len(words(fsum)) else "feed")
    pcat, fcat = page.get("categories") or [], feed.get("categories") or []
    take("categories", "page" if len(pcat) > len(fcat) else "feed")
    take("source", "page" if page.get("source") else "feed")
    merged["link"] = page.get("link") or feed.get("page_url") or feed.get("link")
    merged["language"] = page.get("language") or feed.get("language")
    merged["rights"] = page.get("rights")
    merged["field_sources"] = sources
    return merged


def _entry_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A feed entry's fields, with its body as text."""
    fields = dict(fields)
    fields["date_source"] = "feed" if fields.get("published") else "none"
    body = html_to_text(fields.get("html") or "") or normalize_body(fields.get("text") or "")
    summary = html_to_text(fields.get("summary") or "")
    if not body:
        body = summary
    fields["text"] = body
    fields["summary"] = summary
    return fields


def unit_fields(unit: Unit) -> dict[str, Any]:
    """The raw fields of a unit, whatever its kind."""
    if "invalid" in unit.fields:
        raise InvalidRecord(str(unit.fields["invalid"]))
    if unit.input_kind == "jsonl":
        # a JSONL unit is one line of its file (index: the line, from 0), or a whole file
        return _jsonl_fields(unit.raw, unit.index + 1)
    if unit.input_kind == "html":
        return html_fields(unit.raw, None)
    if unit.input_kind == "text":
        fields = parse_text_article(unit.raw)
        if not fields["text"]:  # a headline alone is a feed item, not a text file's article
            raise EmptyContent("a text file with no body (only a title line, or nothing)")
        return fields
    if unit.input_kind == "linked":
        page_url = unit.fields.get("page_url")
        return merge_linked(_entry_fields(unit.fields), html_fields(unit.raw, page_url))
    return _entry_fields(unit.fields)


def build_article(unit: Unit, fields: dict[str, Any], ingested_at: datetime) -> Article:
    """Fields of a unit -> Article with id, hash, dates and the partition decided."""
    title_raw = str(fields.get("title") or "")
    title = strip_tags(title_raw)[:2000] or None
    text = normalize_body(str(fields.get("text") or ""))
    if not text and not title:
        raise EmptyContent("no title and no body text")
    if not title and len(text) > 100 and len(set(text[:100_000])) < MIN_DISTINCT_CHARS:
        # a file of one character over and over ('xxxx...', a padding of zeros): no text in
        # any language, which uses dozens of characters in its first hundred
        raise EmptyContent(f"no title and no text: {len(text):,} characters of only "
                           f"{len(set(text[:100_000]))} different ones")
    url = canonical_url(fields.get("link"), fields.get("feed_link") or None)
    if url is None and fields.get("guid", "").startswith(("http://", "https://")):
        url = canonical_url(fields["guid"])
    if url:
        article_id = sha256_hex("url:" + url)[:32]
    else:
        article_id = content_id(title, text)
    published = fields.get("published")
    updated = fields.get("updated")
    unparsed = fields.get("date_unparsed")
    if published is not None and published > ingested_at + MAX_AHEAD:
        # published after it was ingested: a data error ('2099-01-01', a wrong zone by a day
        # or more), not a date to partition by; counted as unparsed (dates_unparsed)
        unparsed = f"{published.isoformat()} (after the ingestion)"
        published = None
    if updated is not None and updated > ingested_at + MAX_AHEAD:
        updated = None
    date_source = str(fields.get("date_source") or "none") if published else "none"
    # a feed's or a page's summary is text already (its markup went, its entities were
    # decoded once: '&amp;lt;' is '&lt;' text); a JSONL record's may still hold markup
    raw_summary = str(fields.get("summary") or "")
    summary = (strip_tags(raw_summary) if unit.input_kind == "jsonl"
               else normalize_line(raw_summary)) or None
    source = normalize_line(str(fields.get("source") or "")) or domain_of(url) or None
    followed = None
    if unit.input_kind == "linked":
        followed = canonical_url(unit.fields.get("link") or None,
                                 unit.fields.get("feed_link") or None)
    return Article(
        article_id=article_id,
        url=url,
        source=source,
        source_domain=domain_of(url) or domain_of(fields.get("feed_link")),
        title=title,
        authors=tuple(dict.fromkeys(name for raw in fields.get("authors") or []
                                    for name in split_names(str(raw)))),
        published_at=published,
        updated_at=updated,
        language=_language(fields.get("language")),
        text=text,
        summary=summary,
        categories=_categories(fields.get("categories") or []),
        word_count=count_words(text),
        countries=(),
        quotes=(),
        content_hash=sha256_hex(content_key(text or title or "")),
        input_path=unit.input_path,
        input_kind=unit.input_kind,
        ingested_at=ingested_at,
        date=partition_date(published, ingested_at),
        date_source=date_source,
        rights=fields.get("rights"),
        unit_key=unit.unit_key,
        guid=fields.get("guid") or None,
        date_unparsed=unparsed,
        field_sources=fields.get("field_sources"),
        followed_link=followed if followed and followed != url else None,
    )


def partition_date(published: datetime | None, ingested_at: datetime) -> str:
    """The UTC date of publication, else of ingestion (date_source 'none' says so)."""
    return (published or ingested_at).astimezone(timezone.utc).strftime("%Y-%m-%d")


_HOST_LIKE = re.compile(r"^[\w-]+(\.[\w-]+)+$")
MAX_CATEGORY_WORDS = 8


def _categories(values: Iterable[Any]) -> tuple[str, ...]:
    """Categories and tags, each once. A page's keywords come as one comma-separated string
    ('Electronic Arts,EA,Microsoft,MSFT'): split. A sentence (a description put into the
    keywords) and a host name ('gizmodo.com') are no category."""
    found: list[str] = []
    for value in values:
        for part in re.split(r"\s*[,;]\s*", normalize_line(str(value))):
            part = part.strip()
            if part and len(part.split()) <= MAX_CATEGORY_WORDS \
                    and not _HOST_LIKE.match(part):
                found.append(part)
    return tuple(dict.fromkeys(found))


def extract_article(unit: Unit, ingested_at: datetime) -> Iterator[Article]:
    yield build_article(unit, unit_fields(unit), ingested_at)


class ExtractArticles(beam.PTransform):
    """Unit -> Article; units that cannot become articles are rejects (stage ``extract``)."""

    def __init__(self, error_handler: ErrorHandler, ingested_at: datetime | None) -> None:
        """``ingested_at=None``: each article's is its event time (arrival, when streaming)."""
        super().__init__()
        self._errors = error_handler
        self._ingested_at = ingested_at

    def expand(self, units: beam.PCollection[Unit]) -> beam.PCollection[Article]:
        if self._ingested_at is None:
            return apply_stage(units, "Extract", "extract", extract_article, self._errors,
                               timestamp_as="ingested_at")
        return apply_stage(
            units, "Extract", "extract", extract_article, self._errors,
            ingested_at=self._ingested_at,
        )
