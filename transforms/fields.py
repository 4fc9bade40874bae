"""ExtractFields: the field chain. Each step is a small pure function registered by name.

Built-in steps, in default order:
  authors    clean names: no "By", no dates glued on, "email (Name)" -> Name, no e-mail-only
  dates      published_at from a date in the URL when the source gave none (date_source url)
  dateline   'ASTANA —' at the start of the body -> dateline
  language   ISO 639-1 from py3langid (an offline model inside its package)
  countries  ISO 3166-1 alpha-2 codes of the countries named (transforms/countries.py)
  quotes     direct quotations with their speakers (transforms/quotes.py)

After the chain, ``finalize`` recomputes what derives from the cleaned body: word count,
content hash, the content-based id of an article without URL, and the date partition.
"""

from __future__ import annotations

import re
from typing import Any

import py3langid

from schemas.records import Article
from transforms.countries import find_countries
from transforms.dates import parse_date
from transforms.errors import EmptyContent
from transforms.extract import partition_date, split_names
from transforms.html_meta import date_from_url
from transforms.quotes import extract_quotes
from transforms.steps import ApplySteps, Step, step
from transforms.text import content_key, sha256_hex, words

_BY = re.compile(r"^(?:by|von|par|por|de|автор:?)\s+", re.I)
_EMAIL_ONLY = re.compile(r"^\S+@\S+\.\w+$")
_URLISH = re.compile(r"^(https?://|www\.)", re.I)
_DATE_TAIL = re.compile(
    r"[\s,|·–-]+(?:(?:mon|tue|wed|thu|fri|sat|sun)\w*,?\s+)?(?:\d{1,2}[./ ]|\w+\.? \d{1,2},? "
    r"\d{4}|\d{4}-\d{2}-\d{2}|updated|published|posted).*$",
    re.I,
)
_DATELINE = re.compile(
    r"^(?P<place>[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ.'’ -]{1,40}?(?:,\s*[A-Z][\w.]+(?:\s[A-Z][\w.]+){0,2})?)"
    r"\s*(?:\([^)]{1,30}\))?\s*(?:—|–|--|-)\s+(?=\S)"
)
MIN_TEXT_FOR_MODEL = 40


def clean_author(name: str) -> list[str]:
    """One raw author string -> clean names (may be several, may be none)."""
    name = _BY.sub("", name.strip())
    name = _DATE_TAIL.sub("", name).strip(" ,;|·-–—")
    if not name or _URLISH.match(name) or _EMAIL_ONLY.match(name):
        return []
    return [n for n in split_names(name) if n and not _EMAIL_ONLY.match(n) and len(n) <= 80]


@step("authors", "fields")
def authors(article: Article) -> dict[str, Any]:
    names: list[str] = []
    for raw in article.authors:
        for n in clean_author(raw):
            if n not in names:
                names.append(n)
    return {"authors": tuple(names)}


@step("dates", "fields")
def dates(article: Article) -> dict[str, Any]:
    if article.published_at is not None:
        return {}
    from_url = parse_date(date_from_url(article.url))
    if from_url is not None:
        return {"published_at": from_url, "date_source": "url"}
    return {"date_source": "none"}


@step("dateline", "fields")
def dateline(article: Article) -> dict[str, Any]:
    m = _DATELINE.match(article.text[:120])
    if not m:
        return {}
    place = m.group("place").strip(" ,")
    letters = [c for c in place.split(",")[0] if c.isalpha()]
    # a dateline's place is written in capitals; a sentence that starts with a dash is not one
    if len(letters) < 3 or not all(c.isupper() for c in letters):
        return {}
    return {"dateline": place}


@step("language", "fields")
def language(article: Article) -> dict[str, Any]:
    sample = f"{article.title or ''}\n{article.text[:3000]}".strip()
    if len(sample) < MIN_TEXT_FOR_MODEL and article.language:
        return {}
    if not sample:
        return {}
    code, _score = py3langid.classify(sample)
    return {"language": code if re.fullmatch(r"[a-z]{2}", code) else article.language}


@step("countries", "fields")
def countries(article: Article) -> dict[str, Any]:
    return {"countries": tuple(find_countries(f"{article.title or ''}\n\n{article.text}"))}


@step("quotes", "fields")
def quotes(article: Article) -> dict[str, Any]:
    return {"quotes": tuple(extract_quotes(article.text, article.language or "en"))}


def finalize(article: Article) -> Article:
    """Recompute what derives from the cleaned body; reject an article left empty."""
    if not article.text and not article.title:
        raise EmptyContent("nothing left after cleaning: no title and no body text")
    changes: dict[str, Any] = {
        "word_count": len(words(article.text)),
        "content_hash": sha256_hex(content_key(article.text or article.title or "")),
        "date": partition_date(article.published_at, article.ingested_at),
    }
    if article.published_at is None:
        changes["date_source"] = "none"
    if not article.url:
        changes["article_id"] = sha256_hex(
            "content:" + content_key(f"{article.title or ''}\n{article.text}")
        )[:32]
    return article.replace(**changes)


class ExtractFields(ApplySteps):
    """Article -> Article with fields extracted, then finalized. An article a step fails on
    becomes a reject with stage ``fields:<step>``."""

    def __init__(self, steps: tuple[Step, ...], error_handler: Any) -> None:
        super().__init__("fields", steps, error_handler, finalize=finalize)
