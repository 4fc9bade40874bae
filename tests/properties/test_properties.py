"""Property-based tests: whatever bytes or text arrive, the pure parsing and cleaning functions
either return a result or raise one of the typed RejectErrors the stage turns into a reject row.
Nothing else may escape (an escaping exception would be an ``internal_error`` reject)."""

from __future__ import annotations

import gzip
import os
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.records import RawDocument, Unit
from tests.conftest import SAMPLES
from transforms.clean import (
    drop_repeated_paragraphs,
    drop_title_byline,
    normalize_unicode,
    remove_boilerplate,
    strip_markup,
)
from transforms.countries import find_countries
from transforms.dates import parse_date
from transforms.decode import decode_bytes
from transforms.dedupe import prepared
from transforms.errors import RejectError
from transforms.extract import build_article, extract_article, unit_fields
from transforms.fields import clean_author, clean_title, dateline, finalize
from transforms.neardup import NearConfig, minhash
from transforms.parse import parse_document
from transforms.quotes import extract_quotes
from transforms.read import decompress
from transforms.text import content_tokens
from transforms.urls import canonical_url

NOW = datetime(2026, 1, 15, tzinfo=timezone.utc)
EXAMPLES = int(os.environ.get("NEWSBEAM_PROPERTY_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
SEEDS = [p.read_bytes() for p in sorted(SAMPLES.rglob("*"))
         if p.is_file() and "junk" not in p.parts]
SEEDS = [gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b for b in SEEDS if b]
MARKUP = st.sampled_from(["<rss>", "<item>", "</item>", "<title>", "<![CDATA[", "]]>", "&amp;",
                          "&#0;", "<!DOCTYPE x>", "<feed xmlns='http://www.w3.org/2005/Atom'>",
                          "<entry>", "{", "}", "\"url\":", "\n", "\x00", "\xff", "<html>",
                          "<p>", "“", "”", "By ", "None", "\ufeff"])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A real sample with byte flips, truncation and injected markup."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        action = draw(st.integers(0, 3))
        if action == 0:
            data[i] = draw(st.integers(0, 255))
        elif action == 1:
            del data[i:]
        elif action == 2:
            data[i:i] = draw(MARKUP).encode("utf-8", "surrogatepass")
        else:
            data[i:i] = data[i:i + draw(st.integers(1, 200))]
    return bytes(data)


def _through_extraction(data: bytes) -> None:
    try:
        units = list(parse_document(RawDocument("fuzz", data)))
    except RejectError:
        return
    for unit in units:
        try:
            article = next(extract_article(unit, NOW))
        except RejectError:
            continue
        for step in (normalize_unicode, strip_markup, remove_boilerplate,
                     drop_repeated_paragraphs, drop_title_byline):
            article = article.replace(**step(article))
        article = article.replace(**dateline(article))
        extract_quotes(article.text)
        find_countries(article.text)
        try:
            finalize(article)
        except RejectError:
            pass


@SETTINGS
@given(mutated())
def test_mutated_samples_raise_only_typed_errors(data: bytes) -> None:
    _through_extraction(data)


@SETTINGS
@given(st.binary(max_size=3000))
def test_random_bytes_raise_only_typed_errors(data: bytes) -> None:
    _through_extraction(data)
    try:
        decompress("x", data, 1 << 20)
    except RejectError:
        pass
    try:
        decode_bytes(data)
    except RejectError:
        pass


@SETTINGS
@given(st.text(max_size=400))
def test_text_helpers_never_raise(text: str) -> None:
    parse_date(text)
    canonical_url(text)
    canonical_url(text, "https://base.example/")
    clean_author(text)
    clean_title(text, text[:10], "site.example")
    extract_quotes(text)
    find_countries(text)
    prep = prepared(text, NearConfig())
    assert minhash(prep.full, 16).shape == (16,)
    n = len(content_tokens(text))
    assert int(prep.hashes.sizes.sum()) == n
    assert prep.hashes.ordered.size == (max(n - 4, 1) if n else 0)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["title", "text", "summary", "link", "guid", "html",
                                        "feed_link", "source", "language"]),
                       st.text(max_size=200)))
def test_feed_entry_fields_build_or_reject(fields: dict[str, str]) -> None:
    unit = Unit("fuzz.xml", "rss", 0, fields=dict(fields))
    try:
        article = build_article(unit, unit_fields(unit), NOW)
    except RejectError:
        return
    assert article.article_id and len(article.article_id) == 32
