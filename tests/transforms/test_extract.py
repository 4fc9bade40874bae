"""Units -> articles: plain text, bylines, JSONL records, HTML pages, feed entries."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from schemas.records import Unit
from tests.conftest import FIXED_NOW, SAMPLES, shared_data
from transforms.errors import EmptyContent, InvalidJson, InvalidRecord
from transforms.extract import (
    build_article,
    extract_article,
    html_fields,
    parse_byline,
    split_names,
    unit_fields,
)
from transforms.urls import canonical_url

KAZAKH = SAMPLES / "kazakhstan_peacemaker.txt"


def test_plain_text_article_from_shared_sample() -> None:
    unit = Unit(str(KAZAKH), "text", 0, raw=KAZAKH.read_text(encoding="utf-8"))
    article = next(extract_article(unit, FIXED_NOW))
    assert article.title == "Kazakhstan Offers To Play Peacemaker For U.S., Russia & China"
    assert article.authors == ("Azamat Batyrov",)
    assert article.published_at == datetime(2018, 11, 26, tzinfo=timezone.utc)
    assert article.updated_at == datetime(2024, 4, 16, 1, 19, tzinfo=timezone.utc)
    assert article.date == "2018-11-26" and article.date_source == "text"
    # the lines around the title are not body text
    assert "Newsroom logo" not in article.text
    assert not article.text.startswith("None")
    assert article.text.startswith("The 78-year-old leader")
    assert "Nazarbayev said Wednesday." in article.text
    assert article.word_count > 500
    assert article.url is None and len(article.article_id) == 32


@pytest.mark.parametrize(
    ("line", "names", "date"),
    [
        ("By Azamat Batyrov November 26, 2018", ["Azamat Batyrov"], "2018-11-26"),
        ("By Ann Lee and Bo Chen", ["Ann Lee", "Bo Chen"], None),
        ("Von Jürgen Schäfer, 3 March 2024", ["Jürgen Schäfer"], "2024-03-03"),
        # the weekday of the date line is not part of the name (was "John Smith Monday")
        ("By John Smith Monday, March 11, 2024 at 9:45 a.m. EDT", ["John Smith"], "2024-03-11"),
        ("By Ann Lee, Friday, 8 March 2024", ["Ann Lee"], "2024-03-08"),
        ("Bystander effect explained", None, None),
        # a body's first sentence is no byline (it was dropped from the text as one)
        ("By the end of the week, the council had approved the plan.", None, None),
        ("Von Montag an gilt die neue Regel.", None, None),
        ("Von den Sturmvögeln zu den Stiefkindern der Revolution: eine Geschichte", None, None),
        ("Par ailleurs, le gouvernement a annoncé un plan.", None, None),
        ("Por María de la Cruz", ["María de la Cruz"], None),
        ("By DANICA KIRKA and JILL LAWLESS", ["DANICA KIRKA", "JILL LAWLESS"], None),
        ("By Tom McCarthy in New York", ["Tom McCarthy"], None),
    ],
)
def test_parse_byline(line: str, names: list[str] | None, date: str | None) -> None:
    result = parse_byline(line)
    if names is None:
        assert result is None
        return
    assert result is not None
    assert result[0] == names
    assert (result[1].date().isoformat() if result[1] else None) == date


def test_split_names_email_form() -> None:
    assert split_names("editor@news.example (Jane Roe)") == ["Jane Roe"]
    assert split_names("A. One, B. Two & C. Three") == ["A. One", "B. Two", "C. Three"]


def test_articles_without_a_url_whose_words_run_alike_get_their_own_ids() -> None:
    """The id of an article without a URL hashed its title and text joined, word tokens only:
    a title-only entry and a text-only entry with the same words, or the same words split
    otherwise between title and text, had one id (two rows of one id in `articles`, found on
    feedparser's test feeds)."""
    from transforms.fields import finalize
    from transforms.text import content_id

    ids = [content_id("Example Atom", ""), content_id(None, "Example Atom"),
           content_id("Storm hits", "the coast tonight"),
           content_id("Storm", "hits the coast tonight")]
    assert len(set(ids)) == 4
    # still blind to case, spacing and punctuation, as an exact copy is
    assert content_id("Storm hits", "the coast tonight") == content_id("storm  HITS",
                                                                       "The coast, tonight.")
    # extraction and the end of the fields chain give the same id
    unit = Unit("d.jsonl", "jsonl", 0, raw=json.dumps({"title": "Storm hits",
                                                       "text": "The coast, tonight."}))
    extracted = next(extract_article(unit, FIXED_NOW))
    assert extracted.article_id == finalize(extracted).article_id == ids[2]


def test_jsonl_lines() -> None:
    good = Unit("d.jsonl", "jsonl", 0, raw='{"url": "https://A.example/x?utm_source=t#top", '
                '"text": "Body one.\\n\\nBody two.", "published": "2024-03-09T08:00:00Z"}')
    article = next(extract_article(good, FIXED_NOW))
    assert article.url == "https://a.example/x"
    assert article.text == "Body one.\n\nBody two."
    assert article.date == "2024-03-09"
    with pytest.raises(InvalidJson, match=r"^line 2 is not valid JSON: Unterminated string"):
        unit_fields(Unit("d.jsonl", "jsonl", 1, raw='{"url": "broken'))  # the file's 2nd line
    with pytest.raises(InvalidJson, match=r"^line 3 is not valid JSON"):  # one JSON document
        unit_fields(Unit("d.json", "jsonl", 0, raw='{\n"a": 1,\n"b": }'))
    with pytest.raises(InvalidRecord, match="^line 3: the record has neither 'html' nor 'text'"):
        unit_fields(Unit("d.jsonl", "jsonl", 2, raw='{"url": "https://a.example/"}'))
    # a text that is there but empty: no text to store, said so (not "neither ... nor")
    with pytest.raises(EmptyContent, match="^line 6: its 'text' is empty$"):
        unit_fields(Unit("d.jsonl", "jsonl", 5, raw='{"url": "https://a.example/", '
                                                    '"title": "T", "text": "  "}'))
    with pytest.raises(EmptyContent, match="^line 7: its 'html' and 'text' are empty$"):
        unit_fields(Unit("d.jsonl", "jsonl", 6, raw='{"html": "", "text": ""}'))
    with pytest.raises(InvalidRecord, match="^line 4 is a JSON array, not an object"):
        unit_fields(Unit("d.jsonl", "jsonl", 3, raw="[1, 2]"))
    # a text that is there but not a string is said so, not "neither html nor text"
    with pytest.raises(InvalidRecord, match="^line 5: 'text' is a JSON number, not a string"):
        unit_fields(Unit("d.jsonl", "jsonl", 4, raw='{"text": 12345}'))
    # a pretty-printed file is one document, not its line 1; the message lists its keys
    with pytest.raises(InvalidRecord, match=r"^the JSON document: the record has neither "
                       r"'html' nor 'text' \(its keys: id, headline, body\)"):
        unit_fields(Unit("d.json", "jsonl", 0, raw='{\n "id": 1,\n "headline": "H",\n '
                                                   '"body": "B"\n}\n'))


def test_html_page_with_canonical_and_metadata() -> None:
    page = SAMPLES / "pages" / "harbourtimes-ferry-strike.html"
    article = next(extract_article(Unit(str(page), "html", 0, raw=page.read_text()), FIXED_NOW))
    assert article.title == "Ferry crews vote to strike over rosters"
    assert article.url == "https://harbourtimes.example/news/ferry-crews-strike-vote"
    assert article.authors == ("Jonas Brekke",)
    assert article.published_at is not None and article.published_at.date().isoformat() \
        == "2024-03-18"
    assert "171 backed the walkout" in article.text
    # navigation, sidebars and footers are not part of the body
    assert "Most read" not in article.text and "newsletter" not in article.text
    assert article.language == "en"


def test_a_meta_tag_with_several_names_gives_each_of_them() -> None:
    """The New York Times writes its date as <meta property="article:published"
    itemprop="datePublished dateCreated" content="2019-11-19T11:00:09.000Z">: read by its
    first name only, the date fell back to the day in the URL, without its time."""
    import gzip

    name = "04a6711caa7c687592777718866e781e976e0fe684faebe8b3cedcef8cd0ea34.html.gz"
    page = shared_data() / "aeb" / "html" / name
    html = gzip.decompress(page.read_bytes()).decode("utf-8")
    assert 'itemprop="datePublished dateCreated"' in html
    article = next(extract_article(Unit(str(page), "html", 0, raw=html), FIXED_NOW))
    assert article.published_at == datetime(2019, 11, 19, 11, 0, 9, tzinfo=timezone.utc)
    assert article.date_source == "meta"


@pytest.mark.parametrize(("heading", "expected"), [
    # the only h1 is the site's name in its masthead: the <title> names the story
    ('<div id="header"><a href="/"><h1>Harbour Times</h1></a></div>', "Ferry crews vote to strike"),
    ('<header class="site-header"><h1>Harbour Times</h1></header>', "Ferry crews vote to strike"),
    # the only h1 is the headline, in the article's own header: it stays the title
    ('<article><header><h1>Crews vote to strike</h1></header></article>',
     "Crews vote to strike"),
    ('<div class="article-header"><h1>Crews vote to strike</h1></div>', "Crews vote to strike"),
])
def test_a_masthead_heading_is_not_the_title(heading: str, expected: str) -> None:
    body = " ".join(f"Paragraph {i} tells how the ferry crews voted on the new rosters." for i
                    in range(8))
    html = (f"<html><head><title>Ferry crews vote to strike - Harbour Times</title></head><body>"
            f"{heading}<div class='story'><p>{body}</p><p>{body}</p></div></body></html>")
    assert html_fields(html, "https://harbourtimes.example/ferry")["title"] == expected


def test_a_korean_magazines_site_name_is_not_the_title() -> None:
    import gzip

    name = "0ec95c7261"
    page = next((shared_data() / "aeb" / "html").glob(f"{name}*.html.gz"))
    fields = html_fields(gzip.decompress(page.read_bytes()).decode("utf-8"), None)
    # was the site name, "엔터 미디어"
    assert fields["title"] == "엘제이-류화영 진흙탕 싸움, 공적인 사안으로 봐야하는 이유"


def test_missing_date_falls_back_to_ingestion_date() -> None:
    unit = Unit("f.xml", "rss", 0, fields={"title": "T", "text": "Body", "link": ""})
    article = build_article(unit, unit_fields(unit), FIXED_NOW)
    assert article.date == FIXED_NOW.date().isoformat()
    assert article.date_source == "none"
    assert article.published_at is None


def test_empty_unit_is_rejected() -> None:
    unit = Unit("f.xml", "rss", 0, fields={"title": "", "summary": "", "link": ""})
    with pytest.raises(EmptyContent):
        build_article(unit, unit_fields(unit), FIXED_NOW)


def test_a_file_of_one_character_over_and_over_is_no_article() -> None:
    """A 20 MB line of 'x' was stored as an article of one word (found by review); a text
    in a script without spaces, or a short one, is still an article."""
    filler = Unit("junk.txt", "text", 0, raw="x" * 5000 + "\n")
    with pytest.raises(EmptyContent, match="only 1 different"):
        build_article(filler, unit_fields(filler), FIXED_NOW)
    chinese = ("北京时间今天上午主席在人民大会堂会见了来访的外国领导人"
               "双方就共同关心的问题交换了意见。")
    for raw in (chinese * 10, "The ferry left at noon. " * 20):  # one long paragraph each
        unit = Unit("ok.txt", "text", 0, raw=raw)
        article = build_article(unit, unit_fields(unit), FIXED_NOW)
        assert article.text and not article.title


def test_ids_come_from_canonical_url_not_from_paths() -> None:
    fields = {"title": "Same", "text": "Same body.", "link": "HTTPS://News.Example:443/a?b=2&a=1"}
    one = build_article(Unit("x/one.xml", "rss", 0, fields=fields), unit_fields(
        Unit("x/one.xml", "rss", 0, fields=fields)), FIXED_NOW)
    two = build_article(Unit("y/two.xml", "rss", 7, fields=fields), unit_fields(
        Unit("y/two.xml", "rss", 7, fields=fields)), FIXED_NOW)
    assert one.article_id == two.article_id
    assert one.url == "https://news.example/a?a=1&b=2"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM/Path?utm_source=x&id=3#frag", "http://example.com/Path?id=3"),
        ("https://example.com:443/a?fbclid=1&gclid=2&ref=home", "https://example.com/a"),
        # Webtrekk's campaign parameter, as heise's feeds add it
        ("https://www.heise.de/news/x.html?wt_mc=rss.ho.beitrag.rdf",
         "https://www.heise.de/news/x.html"),
        # Medium's feed parameter (found on a real feed); another 'source' stays
        ("https://medium.com/@a/post-1a2b?source=rss----5517fd7b58a6---4",
         "https://medium.com/@a/post-1a2b"),
        ("https://example.com/search?source=archive&q=x",
         "https://example.com/search?q=x&source=archive"),
        ("//cdn.example.com/x", None),
        ("ftp://example.com/file", None),
        ("", None),
    ],
)
def test_canonical_url(url: str, expected: str | None) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(("one", "other"), [
    ("https://bücher.example/straße?q=ä", "https://xn--bcher-kva.example/stra%c3%9fe?q=%C3%A4"),
    ("https://example.ru/новости/1",
     "https://example.ru/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8/1"),
    ("https://example.com/%7ebob", "https://example.com/~bob"),
    ("https://example.com/a/../b/./c", "https://example.com/b/c"),
    ("https://example.com/a b", "https://example.com/a%20b"),
    ("https://example.com/100%", "https://example.com/100%25"),
])
def test_one_address_has_one_canonical_spelling(one: str, other: str) -> None:
    """A feed's Unicode link and the page's percent-encoded canonical (or punycode host) name
    the same article: one canonical URL, so one article id."""
    assert canonical_url(one) == canonical_url(other) is not None


@pytest.mark.parametrize("url", ["https://example.com/wiki/C%2B%2B", "https://example.com/a%2Fb",
                                 "https://example.com/a/(b)/c;d=1/e:f@g", "https://[::1]:8080/a"])
def test_reserved_escapes_and_characters_are_kept(url: str) -> None:
    assert canonical_url(url) == url


def test_relative_link_resolved_against_feed() -> None:
    assert canonical_url("wildlife/seal", "https://coastwatch.example/") == \
        "https://coastwatch.example/wildlife/seal"


def test_lazy_trafilatura_metadata_equals_extract_metadata() -> None:
    """TrafilaturaMetadata computes only the fields newsbeam reads, each on demand; every
    one of them must equal what trafilatura's own extract_metadata gives on real pages, but
    for one deliberate change: a title trafilatura takes from a masthead h1 (the site's
    name), where newsbeam takes the <title> (test_a_masthead_heading_is_not_the_title)."""
    import gzip

    import trafilatura
    from trafilatura.metadata import extract_metadata

    from transforms.extract import TrafilaturaMetadata, site_heading

    pages = sorted((shared_data() / "aeb" / "html").glob("*.html.gz"))[:40]
    assert len(pages) == 40
    compared = masthead_titles = 0
    for path in pages:
        html = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        for url in (None, "https://example.com/news/2021/05/03/story.html"):
            want = extract_metadata(trafilatura.load_html(html), url).as_dict()
            got = TrafilaturaMetadata(trafilatura.load_html(html), url)
            tree = trafilatura.load_html(html)
            h1s = tree.findall(".//h1")
            masthead = len(h1s) == 1 and site_heading(h1s[0]) and not tree.xpath(
                "//meta[@property='og:title' or @name='twitter:title']")
            if masthead and got.title() != want["title"]:
                masthead_titles += 1
            else:
                assert got.title() == want["title"], path.name
            assert got.author() == want["author"], path.name
            assert got.url() == want["url"], path.name
            assert got.date() == want["date"], path.name
            assert got.sitename() == want["sitename"], path.name
            assert got.categories() == (want["categories"] or []) + (want["tags"] or []), \
                path.name
            assert got.description() == want["description"], path.name
            compared += 1
    assert compared == 80
    assert masthead_titles == 2  # the Korean magazine's page, with and without its URL


def test_catstags_equals_trafilatura_on_every_aeb_page() -> None:
    """catstags skips trafilatura's category and tag searches on pages with no link that
    could match them; the values must stay trafilatura's own, on every AEB page."""
    import gzip

    import trafilatura
    from trafilatura.metadata import extract_catstags

    from transforms.extract import catstags

    pages = sorted((shared_data() / "aeb" / "html").glob("*.html.gz"))
    assert len(pages) == 181
    skipped = found = 0
    for path in pages:
        tree = trafilatura.load_html(gzip.decompress(path.read_bytes()).decode("utf-8", "replace"))
        for kind in ("category", "tag"):
            got = catstags(kind, tree)
            assert got == extract_catstags(kind, tree), (path.name, kind)
            found += bool(got)
            skipped += not tree.xpath(f"//a[contains(@href, '/{kind[:3]}')]")
    assert found > 50 and skipped > 100  # both paths ran


def _page(article_paragraphs: int, other_paragraphs: int) -> str:
    def sentence(i: int) -> str:
        return (f"In its report number {i} the harbour authority said quay {i} would open "
                f"in spring, after {i * 7} weeks of work on berth {i + 3}. ")

    story = "".join(f"<p>{sentence(i)}{sentence(i + 100)}{sentence(i + 200)}</p>"
                    for i in range(article_paragraphs))
    others = "".join(f"<li><p>Other story {i}: {sentence(i + 300)}</p></li>"
                     for i in range(other_paragraphs))
    return (f"<html><body><article><h1>Quay</h1>{story}</article>"
            f"<aside><ul>{others}</ul></aside></body></html>")


@pytest.mark.parametrize(
    ("paragraphs", "others", "expected"),
    [
        (1, 0, True),    # under COMPARE_BELOW_CHARS: the comparison may find the body
        (8, 0, False),   # a long text that holds the page's paragraphs: nothing to gain
        (8, 60, True),   # the page's paragraphs hold far more than the text: it may
    ],
)
def test_needs_comparison(paragraphs: int, others: int, expected: bool) -> None:
    import trafilatura

    from transforms.extract import needs_comparison

    tree = trafilatura.load_html(_page(paragraphs, others))
    doc = trafilatura.bare_extraction(tree, fast=True, favor_precision=True,
                                      with_metadata=False)
    assert needs_comparison(doc.text, doc.body, tree) is expected


def test_needs_comparison_without_paragraphs_in_the_body() -> None:
    import lxml.html
    import trafilatura

    from transforms.extract import needs_comparison

    body = lxml.html.fromstring("<body><div>" + "word " * 400 + "</div></body>")
    tree = trafilatura.load_html("<html><body><div>" + "word " * 400 + "</div></body></html>")
    assert needs_comparison("word " * 400, body, tree) is True
    assert needs_comparison("", None, tree) is True


def _always_compared(tree, url=None) -> str:
    """_main_text with trafilatura's comparison run on every page (the reference)."""
    import trafilatura

    from transforms.extract import MIN_PRECISION_WORDS, _content_words

    def run(precision: bool) -> str:
        doc = trafilatura.bare_extraction(tree, url=url, with_metadata=False,
                                          include_comments=False, include_tables=True,
                                          favor_precision=precision)
        return (doc.text if doc is not None else "") or ""

    text = run(True)
    found = _content_words(text, MIN_PRECISION_WORDS)
    if found < MIN_PRECISION_WORDS:
        retry = run(False)
        if _content_words(retry) > found:
            text = retry
    return text


def _fast_text(tree) -> str:
    import trafilatura

    doc = trafilatura.bare_extraction(tree, with_metadata=False, include_comments=False,
                                      include_tables=True, favor_precision=True, fast=True)
    return (doc.text if doc is not None else "") or ""


def _story(i: int) -> str:
    return " ".join(f"Sentence {i}-{k}: the harbour board approved the plan for quay {i} and "
                    f"berth {k} after a long debate." for k in range(3))


def test_paragraph_share_sends_a_page_to_the_comparison() -> None:
    """trafilatura's own pass keeps a 1,100-character <article>; the page's other paragraphs
    hold a story six times as long, which readability prefers. The text must be the full
    run's, not the fast pass's."""
    import trafilatura

    from transforms.extract import _main_text

    story = "".join(f"<p>{_story(i)}</p>" for i in range(4))
    other = "".join(f"<p>{_story(100 + i)}</p>" for i in range(25))
    html = (f"<html><body><article><h1>T</h1>{story}</article><div>{other}</div>"
            "</body></html>")
    tree = trafilatura.load_html(html)
    want = _always_compared(tree)
    assert len(_fast_text(tree)) < len(want) / 2  # the case matters
    assert _main_text(tree, None) == want


def test_teaser_blocks_get_the_full_extraction() -> None:
    """When trafilatura's main pass finds next to nothing it recovers loose paragraphs, and
    in fast mode only it keeps teaser-class blocks: such a page must not keep the fast text."""
    import trafilatura

    from transforms.extract import _main_text, names_teasers

    teasers = "".join(f"<div class='teaser'><p>{_story(i)}</p></div>" for i in range(5))
    html = ("<html><body><div class='content'><p>Short intro line here.</p></div>"
            f"{teasers}<div><p>Closing note of the page, brief.</p></div></body></html>")
    tree = trafilatura.load_html(html)
    want = _always_compared(tree)
    assert _fast_text(tree) != want  # the case matters
    assert names_teasers(html)
    assert _main_text(tree, None, html) == want


@pytest.mark.parametrize(("line", "expected"), [
    ("November 26, 2018", "2018-11-26T00:00:00+00:00"),
    ("Monday, November 26, 2018 10:00 AM", "2018-11-26T10:00:00+00:00"),
    ("Montag, 26. November 2018, 14:30", "2018-11-26T14:30:00+00:00"),
    ("26 novembre 2018", "2018-11-26T00:00:00+00:00"),
    ("26 de noviembre de 2018", "2018-11-26T00:00:00+00:00"),
    ("26 ноября 2018 г.", "2018-11-26T00:00:00+00:00"),
    ("2018-11-26 14:30", "2018-11-26T14:30:00+00:00"),
    ("May 2024 Election Results", None),  # a headline holding a date is not a date line
    ("The 26 November 2018 meeting", None),
    ("2018", None),
])
def test_a_date_line(line: str, expected: str | None) -> None:
    from transforms.dates import text_date

    found = text_date(line)
    assert (found.isoformat() if found else None) == expected


@pytest.mark.parametrize(("raw", "title", "author"), [
    ("Hafen öffnet nach Sturm wieder\n\nVon Anna Müller\n\n26. November 2018\n\n{body}",
     "Hafen öffnet nach Sturm wieder", "Anna Müller"),
    ("Le port rouvre après la tempête\n\nPar Jean Dupont\n\n26 novembre 2018\n\n{body}",
     "Le port rouvre après la tempête", "Jean Dupont"),
    ("26 ноября 2018\n\nПорт снова открыт после шторма\n\nАвтор: Иван Петров\n\n{body}",
     "Порт снова открыт после шторма", "Иван Петров"),
])
def test_a_plain_text_date_line_is_the_publication_date(raw: str, title: str,
                                                        author: str) -> None:
    """A date on its own line before the body, in the languages the boilerplate rules
    cover, is the publication date (date_source text) and leaves the body."""
    from transforms.extract import parse_text_article

    body = "The harbour reopened on Monday after the storm closed it for three days."
    fields = parse_text_article(raw.format(body=body))
    assert fields["title"] == title and fields["authors"] == [author]
    assert fields["published"].isoformat() == "2018-11-26T00:00:00+00:00"
    assert fields["date_source"] == "text" and fields["text"] == body


def test_keywords_split_into_categories_without_sentences_or_hosts() -> None:
    """A page's keywords are one comma-separated string (WSJ: 'Electronic Arts,EA,...'); a
    description put into them, or the site's host name, is no category (found on 9 of 30
    AEB pages)."""
    from transforms.extract import _categories

    got = _categories(["Electronic Arts,EA,Microsoft,MSFT", "gizmodo.com", "Tech",
                       "The company said on Monday that it would cut jobs across its "
                       "divisions - CNN", "Politics; World", "Tech"])
    assert got == ("Electronic Arts", "EA", "Microsoft", "MSFT", "Tech", "Politics", "World")


def test_escaped_markup_in_a_feed_summary_stays_text() -> None:
    """'&amp; &lt; &gt;' in a feed's description is the text '& < >': the summary decoded it
    once more and dropped '< >' as a tag (a real KOI8-R feed; found by review)."""
    from schemas.records import RawDocument
    from transforms.parse import parse_document

    path = shared_data() / "feeds" / "realworld" / "miniflux" / "koi8r.xml"
    units = list(parse_document(RawDocument(str(path), path.read_bytes())))
    summaries = [build_article(u, unit_fields(u), FIXED_NOW).summary or "" for u in units]
    assert any("символов: & < > А также" in s for s in summaries), summaries


@pytest.mark.parametrize(("url", "day"), [
    ("https://x.example/news/2024/03/18/story", "2024-03-18"),
    ("https://x.example/2024-3-8-story", "2024-03-08"),
    # a month's name (PolitiFact's and the Guardian's URLs)
    ("https://www.politifact.com/west-virginia/statements/2019/nov/18/david-mckinley/x/",
     "2019-11-18"),
    ("https://x.example/world/2019/Nov/18/x", "2019-11-18"),
    ("https://x.example/2024/13/18/x", None),
    ("https://x.example/2024/mars/18/x", None),
])
def test_the_day_in_a_url(url: str, day: str | None) -> None:
    from transforms.html_meta import date_from_url

    assert date_from_url(url) == day


def test_a_fact_check_is_dated_by_its_url_not_by_the_claim_it_checks() -> None:
    """PolitiFact's page names the claim's date ('on Sunday, October 13th, 2019') before its
    own and carries no date metadata; its URL holds /2019/nov/18/ (AEB page 9e8c9f08)."""
    import gzip

    page = next((shared_data() / "aeb" / "html").glob("9e8c9f08*.html.gz"))
    fields = html_fields(gzip.decompress(page.read_bytes()).decode("utf-8"), None)
    assert fields["date_source"] == "url" and fields["published"].date().isoformat() == \
        "2019-11-18"


def test_word_count_counts_chinese_and_japanese_characters() -> None:
    """A run of Chinese characters between punctuation is not one word: a 2,000-character
    Chinese article had a word_count of a few dozen, and any filter on it dropped the text."""
    from transforms.text import count_words

    assert count_words("The ferry left at noon.") == 5
    assert count_words("北京时间今天上午。The end.") == 8 + 2
    assert count_words("東京で3日") == 4 + 1  # the digit is a word of its own
    assert count_words("서울에서 새로운 법이") == 3  # Korean spaces its words
    body = "北京时间今天上午主席在人民大会堂会见了来访的外国领导人。" * 12
    unit = Unit("cn.txt", "text", 0, raw=f"标题\n\n{body}")
    assert build_article(unit, unit_fields(unit), FIXED_NOW).word_count == 27 * 12


def test_a_date_after_the_ingestion_is_no_publication_date() -> None:
    """'2099-01-01' made a partition date=2099-01-01 (found by review): a date more than a
    day after the ingestion is counted as unparsed, and the article is filed under its
    ingestion date; a date within the day (a zone ahead of UTC) stays."""
    from transforms.dates import parse_date

    fields = {"title": "T", "text": "A body of words.", "link": "https://x.example/a"}
    future = Unit("f.xml", "rss", 0, fields={**fields, "published": "2099-01-01T00:00:00Z"})
    article = build_article(future, unit_fields(Unit("f.xml", "rss", 0, fields={
        **fields, "published": parse_date("2099-01-01T00:00:00Z"),
        "updated": parse_date("2099-01-02T00:00:00Z")})), FIXED_NOW)
    assert article.published_at is None and article.updated_at is None
    assert article.date == FIXED_NOW.date().isoformat() and article.date_source == "none"
    assert article.date_unparsed == "2099-01-01T00:00:00+00:00 (after the ingestion)"
    ahead = FIXED_NOW + timedelta(hours=20)
    near = build_article(future, unit_fields(Unit("f.xml", "rss", 0, fields={
        **fields, "published": ahead})), FIXED_NOW)
    assert near.published_at == ahead and near.date_unparsed is None


def test_a_feed_entrys_reject_names_the_entry() -> None:
    """A reject of a feed's 4th entry said only 'no title and no body text', with an empty
    excerpt: nothing told which entry (found by review on a real feed)."""
    from transforms.common import to_reject

    unit = Unit("feed.xml", "rss", 3, fields={"title": "", "summary": "", "link": ""})
    with pytest.raises(EmptyContent) as caught:
        build_article(unit, unit_fields(unit), FIXED_NOW)
    row = to_reject(unit, "extract", caught.value)
    assert row.detail == "entry 4: no title and no body text"
    page = Unit("page.html", "html", 0, raw="<html></html>")
    assert not to_reject(page, "extract", caught.value).detail.startswith("entry")
