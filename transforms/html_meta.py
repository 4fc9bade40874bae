"""Page metadata read from the parsed HTML tree: JSON-LD, meta tags, canonical link, language
and text-and-data-mining reservations.

It works on the tree that trafilatura then extracts the text from, so each page is parsed once.
Sources, in order of trust for each field: JSON-LD (schema.org NewsArticle and kin), Open Graph
and article:* meta tags, other common meta tags (Dublin Core, ``name=date``, ``pubdate``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lxml import html as lxml_html

from transforms.text import loads_json

_ARTICLE_TYPES = {
    "newsarticle", "article", "reportagenewsarticle", "blogposting", "analysisnewsarticle",
    "opinionnewsarticle", "backgroundnewsarticle", "reviewnewsarticle", "webpage", "report",
    "liveblogposting", "scholarlyarticle", "socialmediaposting", "techarticle", "posting",
}
_PUBLISHED_META = (
    "article:published_time", "og:article:published_time", "datepublished", "pubdate",
    "publishdate", "publish-date", "published_time", "date", "dc.date", "dc.date.issued",
    "dcterms.created", "dcterms.date", "sailthru.date", "parsely-pub-date",
    "cxenseparse:recs:publishtime",
)
_MODIFIED_META = (
    "article:modified_time", "og:updated_time", "datemodified", "dcterms.modified",
    "last-modified", "dc.date.modified",
)
_AUTHOR_META = ("author", "article:author", "dc.creator", "parsely-author", "sailthru.author",
                "byl")
_URL_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
               "dec")
# '/2024/03/18/' and '/2019/nov/18/' (PolitiFact, the Guardian's '/2019/nov/18/')
_URL_DATE = re.compile(
    r"/((?:19|20)\d{2})[/-](0?[1-9]|1[0-2]|" + "|".join(_URL_MONTHS) + r")[/-]"
    r"(0?[1-9]|[12]\d|3[01])(?:/|[-_]|$)", re.IGNORECASE
)


def _jsonld_objects(tree: Any) -> Iterator[dict[str, Any]]:
    for script in tree.xpath('//script[@type="application/ld+json"]'):
        raw = (script.text or "").strip()
        if not raw or len(raw) > 1_000_000:
            continue
        try:
            data = loads_json(raw)
        except ValueError:
            continue
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                if "@graph" in item:
                    stack.append(item["@graph"])
                yield item


def _types(obj: dict[str, Any]) -> set[str]:
    t = obj.get("@type")
    values = t if isinstance(t, list) else [t]
    return {str(v).lower() for v in values if v}


def _names(value: Any) -> list[str]:
    """JSON-LD author/publisher values -> names."""
    out: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str) and item.strip() and not item.startswith("http"):
            out.append(item.strip())
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            out.append(item["name"].strip())
    return [n for n in out if n]


def _first_str(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def page_metadata(tree: Any) -> dict[str, Any]:
    """Everything newsbeam reads from a page's markup, with where each date came from."""
    meta: dict[str, str] = {}
    robots: list[str] = []
    for el in tree.xpath("//meta"):
        content = el.get("content")
        if content is None:
            continue
        # a tag may name its value several ways at once (the New York Times: property=
        # "article:published" itemprop="datePublished dateCreated"); each name counts
        keys = [(el.get("property") or "").strip().lower(), (el.get("name") or "").strip().lower(),
                *(el.get("itemprop") or "").lower().split()]
        for key in dict.fromkeys(k for k in keys if k):
            if key in ("robots", "googlebot"):
                robots.extend(t.strip().lower() for t in content.split(","))
            meta.setdefault(key, content.strip())
    for el in tree.xpath("//*[@itemprop and not(self::meta)]"):
        for key in set(el.get("itemprop").lower().split()) & {"datepublished", "datemodified"}:
            value = el.get("datetime") or el.get("content")
            if value:
                meta.setdefault(key, value.strip())

    result: dict[str, Any] = {}
    article = None
    publishers: list[str] = []
    for obj in _jsonld_objects(tree):
        if _types(obj) & _ARTICLE_TYPES and article is None and (
            obj.get("headline") or obj.get("datePublished") or obj.get("author")
        ):
            article = obj
        if "organization" in _types(obj) or "newsmediaorganization" in _types(obj):
            publishers.extend(_names(obj))
    if article is not None:
        result["jsonld_title"] = _first_str(article.get("headline"))
        result["jsonld_authors"] = _names(article.get("author"))
        result["jsonld_published"] = _first_str(article.get("datePublished"))
        result["jsonld_modified"] = _first_str(article.get("dateModified"))
        publisher = _names(article.get("publisher"))
        result["jsonld_publisher"] = publisher[0] if publisher else None
        result["jsonld_section"] = _first_str(article.get("articleSection"))
        result["jsonld_language"] = _first_str(article.get("inLanguage"))
    if publishers and not result.get("jsonld_publisher"):
        result["jsonld_publisher"] = publishers[0]

    result["meta_published"] = next((meta[k] for k in _PUBLISHED_META if meta.get(k)), None)
    result["meta_modified"] = next((meta[k] for k in _MODIFIED_META if meta.get(k)), None)
    result["meta_authors"] = next((meta[k] for k in _AUTHOR_META
                                   if meta.get(k) and not meta[k].startswith("http")), None)
    result["site_name"] = meta.get("og:site_name") or meta.get("application-name")
    result["og_title"] = meta.get("og:title")
    result["description"] = meta.get("description") or meta.get("og:description")
    canonical = tree.xpath('//link[@rel="canonical"]/@href') or \
        ([meta["og:url"]] if meta.get("og:url") else [])
    result["canonical"] = canonical[0].strip() if canonical else None
    langs = tree.xpath("/html/@lang") or tree.xpath("//html/@lang")
    result["lang"] = (langs[0] if langs else None) or meta.get("content-language") or \
        meta.get("og:locale") or result.get("jsonld_language")
    result["rights"] = _rights(meta, robots)
    return result


def _rights(meta: dict[str, str], robots: list[str]) -> dict[str, Any] | None:
    """TDMRep (W3C Community Group report) meta tags and the noai/noimageai robots values."""
    reservation = meta.get("tdm-reservation")
    policy = meta.get("tdm-policy")
    noai = "noai" in robots
    noimageai = "noimageai" in robots
    if reservation is None and policy is None and not noai and not noimageai:
        return None
    return {
        "tdm_reservation": reservation.strip() == "1" if reservation is not None else None,
        "tdm_policy": policy,
        "noai": noai,
        "noimageai": noimageai,
    }


def date_from_url(url: str | None) -> str | None:
    """'/2024/03/18/' or '/2024/mar/18/' in a URL path -> '2024-03-18'."""
    if not url:
        return None
    m = _URL_DATE.search(url)
    if not m:
        return None
    month = m.group(2).lower()
    number = _URL_MONTHS.index(month) + 1 if month in _URL_MONTHS else int(month)
    return f"{m.group(1)}-{number:02d}-{int(m.group(3)):02d}"


def parse_html(html: str) -> Any:
    """The one parse of a page (lxml, as trafilatura does)."""
    return lxml_html.fromstring(html)
