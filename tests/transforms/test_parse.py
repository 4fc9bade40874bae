"""Kind detection and splitting documents into input units, on the sample corpus."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from schemas.records import RawDocument
from tests.conftest import SAMPLES, shared_data
from transforms.errors import BinaryInput, EmptyFeed, HostileXml, InvalidJson, NotAFeed
from transforms.parse import parse_document, sniff_kind


def _doc(path: Path) -> RawDocument:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return RawDocument(str(path), data)


@pytest.mark.parametrize(
    ("name", "kind", "units"),
    [
        ("feeds/harbour-times.rss.xml", "rss", 4),
        ("feeds/nordkurier-latin1.rss.xml", "rss", 2),
        ("feeds/coastwatch.atom.xml", "atom", 4),
        ("feeds/marine-science.rdf", "rdf", 2),
        ("feeds/old-netscape.rss091.xml", "rss", 1),
        ("feeds/harbour-archive.rss.xml.gz", "rss", 2),
        ("feeds/island-sport.json", "jsonfeed", 3),
        ("pages/harbourtimes-ferry-strike.html", "html", 1),
        ("pages/valley-weekly-school.htm", "html", 1),
        ("kazakhstan_peacemaker.txt", "text", 1),
        ("dumps/crawl-2024-03.jsonl", "jsonl", 6),
    ],
)
def test_samples_split_into_units(name: str, kind: str, units: int) -> None:
    result = list(parse_document(_doc(SAMPLES / name)))
    assert len(result) == units
    assert {u.input_kind for u in result} == {kind}
    assert [u.index for u in result] == sorted(u.index for u in result)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("junk/binary-blob.xml", BinaryInput),
        ("junk/laughs.xml", HostileXml),
        ("junk/note.xml", NotAFeed),
        ("junk/no-items.rss.xml", EmptyFeed),
    ],
)
def test_junk_is_rejected_whole(name: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        list(parse_document(_doc(SAMPLES / name)))


def test_a_cdf_channel_without_items_is_an_empty_feed_as_rss_is() -> None:
    """feedparser gives a CDF channel with no items no version: it was not_a_feed, where an
    RSS channel with no items is empty_feed (feedparser's own tests/wellformed/cdf/)."""
    cdf = b"<CHANNEL>\n  <TITLE>Example feed</TITLE>\n</CHANNEL>"
    with pytest.raises(EmptyFeed, match="the CDF feed 'Example feed' has no entries"):
        list(parse_document(RawDocument("channel_title.xml", cdf)))
    with pytest.raises(NotAFeed):  # a <channel> that is no CDF channel
        list(parse_document(RawDocument("other.xml", b"<channel><foo>x</foo></channel>")))


def test_external_entity_is_refused_before_any_parser_sees_it(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
           '<rss version="2.0"><channel><title>&x;</title><item><title>&x;</title></item>'
           "</channel></rss>").encode()
    with pytest.raises(HostileXml):
        list(parse_document(RawDocument("xxe.xml", xxe)))


def test_an_entity_declared_after_a_megabyte_of_comment_is_refused() -> None:
    """The check read the first megabyte only; files may be 50 MB, and feedparser's
    fallback parser expands what it finds (found by review)."""
    padding = "<!-- " + "x" * 1_200_000 + " -->"
    bomb = (f'<?xml version="1.0"?>{padding}<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><rss version="2.0"><channel>'
            "<title>&b;</title><item><title>&b;</title></item></channel></rss>").encode()
    with pytest.raises(HostileXml):
        list(parse_document(RawDocument("late.xml", bomb)))


def test_a_document_that_looks_like_a_path_is_never_opened() -> None:
    # feedparser.parse() opens a str or bytes that names a file; we only hand it streams.
    units = list(parse_document(RawDocument("p.txt", b"/etc/hostname")))
    assert units[0].input_kind == "text"
    assert units[0].raw == "/etc/hostname"


def test_jsonfeed_fields() -> None:
    units = list(parse_document(_doc(SAMPLES / "feeds/island-sport.json")))
    first = units[0].fields
    assert first["title"] == "Record entries for the midsummer regatta"
    assert first["authors"] == ["Kari Dahl"]
    assert first["published"].isoformat() == "2024-03-13T16:45:00+00:00"
    assert first["categories"] == ["Sailing"]
    assert first["source"] == "Island Sport"


def test_json_that_is_not_jsonl_is_rejected() -> None:
    with pytest.raises(InvalidJson):
        list(parse_document(RawDocument("x.json", b"{ not json\n[ neither")))


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('<?xml version="1.0"?>\n<!-- c -->\n<rss version="2.0">', "feed"),
        ("<feed xmlns='http://www.w3.org/2005/Atom'>", "feed"),
        ("<!DOCTYPE html><html><body><p>x</p>", "html"),
        ("<div><p>fragment</p></div>", "html"),
        ('{"version": "https://jsonfeed.org/version/1", "items": []}', "jsonfeed"),
        ('{"url": "https://a.example/", "text": "t"}\n{"url": "b"}', "json"),
        ("Just a headline\n\nAnd a body.", "text"),
    ],
)
def test_sniff_kind(text: str, kind: str) -> None:
    assert sniff_kind(text) == kind


def test_an_entry_with_only_a_pubdate_is_not_marked_updated() -> None:
    # feedparser's entry.get("updated_parsed") falls back to the publication date
    feed = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
            b"<title>a</title><link>http://x.example/a</link>"
            b"<pubDate>Mon, 04 Mar 2024 10:00:00 GMT</pubDate></item></channel></rss>")
    (unit,) = parse_document(RawDocument("f.xml", feed))
    assert unit.fields["published"].isoformat() == "2024-03-04T10:00:00+00:00"
    assert unit.fields["updated"] is None


def test_http_charset_and_base_url_of_a_fetched_feed() -> None:
    feed = ('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
            "<title>Café</title><link>/news/a</link></item></channel></rss>").encode("latin-1")
    doc = RawDocument("https://feeds.example/rss", feed, headers={
        "content-type": "application/rss+xml; charset=ISO-8859-1",
        "content-location": "https://feeds.example/rss"})
    (unit,) = parse_document(doc)
    assert unit.fields["title"] == "Café"
    assert unit.fields["link"] == "https://feeds.example/news/a"


def test_jsonl_lines_split_on_newlines_only() -> None:
    """A record may hold U+2028 or U+0085 raw inside a string (json.dumps with
    ensure_ascii=False writes them); only "\\n" ends a JSONL line, so each record stays one
    unit and a unit's index is its line in the file."""
    import json

    records = [{"url": "https://a.example/1", "text": "one\u2028two"},
               {"url": "https://a.example/2", "text": "three\u0085four"}]
    data = "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n\n{broken\n"
    units = list(parse_document(RawDocument("d.jsonl", data.encode("utf-8"))))
    assert [u.index for u in units] == [0, 1, 3]
    assert [json.loads(u.raw)["text"] for u in units[:2]] == ["one\u2028two", "three\u0085four"]


def test_a_binary_reject_shows_its_first_bytes_in_hex() -> None:
    """Decoded binary is noise in a reject's excerpt; its magic bytes identify it."""
    from schemas.records import bounded_excerpt

    elf = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4
    excerpt = bounded_excerpt(elf)
    assert excerpt.startswith("binary: 7f454c46 02010100 00010203")
    assert len(excerpt) <= 300
    assert bounded_excerpt("Привет, мир".encode()) == "Привет, мир"  # text stays text
    assert bounded_excerpt(b"one \xff bad byte") == "one \ufffd bad byte"


def test_feed_entry_dates_are_never_rolled_over() -> None:
    """An entry whose date has an impossible part keeps it as text (date_unparsed) and gets
    no date, where feedparser alone gave another day; a valid one keeps its time of day."""
    items = [("a", "2024-00-00"), ("b", "2024-02-30T10:00:00Z"), ("c", "2024-06-15 10:00:00 GMT"),
             ("d", "Sat, 01 Jun 2024 10:30:00 +0200")]
    xml = ('<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
           "<link>https://t.example/</link>"
           + "".join(f"<item><title>{t}</title><link>https://t.example/{t}</link><pubDate>{d}"
                     "</pubDate><description>x</description></item>" for t, d in items)
           + "</channel></rss>")
    units = list(parse_document(RawDocument(input_path="d.xml", data=xml.encode())))
    got = {u.fields["title"]: (u.fields["published"], u.fields["date_unparsed"]) for u in units}
    assert got["a"] == (None, "2024-00-00") and got["b"] == (None, "2024-02-30T10:00:00Z")
    assert got["c"][0] is not None and got["c"][0].isoformat() == "2024-06-15T10:00:00+00:00"
    assert got["d"][0] is not None and got["d"][0].isoformat() == "2024-06-01T08:30:00+00:00"


SHARED_LICENSE = Path(__file__).resolve().parents[3] / "shared" / "data" / "feeds" / \
    "realworld" / "miniflux" / "LICENSE"


@pytest.mark.parametrize("name", ["steps.py", "table.csv", "settings.yaml", "LICENSE",
                                  "README.md", "license.txt", "CHANGELOG", "app.toml.gz"])
def test_code_tables_and_project_files_are_not_news(name: str) -> None:
    """A folder of downloads holds more than news: a plain-text file whose name says it is
    code, a table, settings or a project's file is a not_news reject, not an article (a
    Python source became a 3,950-word article, a LICENSE an article titled 'MIT License')."""
    from transforms.errors import NotNews

    text = (SHARED_LICENSE.read_bytes() if SHARED_LICENSE.exists()
            else (SAMPLES / "kazakhstan_peacemaker.txt").read_bytes())
    with pytest.raises(NotNews):
        list(parse_document(RawDocument(f"/data/{name}", text)))


@pytest.mark.parametrize("name", ["story.txt", "story", "notes.md", "history-of-rome.txt",
                                  "readme-for-editors.txt", "2024-05-01.text", "diary.log",
                                  "interview.r", "talk.srt"])
def test_articles_with_any_other_name_are_read(name: str) -> None:
    story = (SAMPLES / "kazakhstan_peacemaker.txt").read_bytes()
    assert [u.input_kind for u in parse_document(RawDocument(f"/data/{name}", story))] == \
        ["text"]


@pytest.mark.parametrize("name", ["feed.txt", "export.csv"])
def test_the_name_does_not_override_what_the_content_is(name: str) -> None:
    """The name decides only for plain text: a feed or JSON under any name is read."""
    feed = (SAMPLES / "feeds" / "harbour-times.rss.xml").read_bytes()
    assert len(list(parse_document(RawDocument(f"/data/{name}", feed)))) == 4


def test_a_text_file_with_a_title_and_no_body_is_empty() -> None:
    from schemas.records import Unit
    from transforms.errors import EmptyContent
    from transforms.extract import unit_fields

    with pytest.raises(EmptyContent, match="only a title line"):
        unit_fields(Unit("/data/hello.txt", "text", 0, raw="hello\n"))
    assert unit_fields(Unit("/data/a.txt", "text", 0, raw="Title\n\nA body line."))["text"]


@pytest.mark.parametrize(("name", "proxy", "original"), [
    ("feedburner.atom", "feedproxy.google.com", "googleadsdeveloper.blogspot.com"),
    ("encoding.rss", "feeds.jn.pt", "www.jn.pt"),
])
def test_feedburner_entries_link_to_the_story_not_the_proxy(name: str, proxy: str,
                                                            original: str) -> None:
    """A FeedBurner feed's <link> is a feedproxy redirect; feedburner:origLink is the story
    (real feeds of ../shared: their urls, domains and URL dedupe were the proxy's)."""
    path = shared_data() / "feeds" / "realworld" / "rss-parser" / name
    raw = path.read_bytes()
    assert proxy.encode() in raw and b"origLink" in raw
    units = list(parse_document(RawDocument(str(path), raw)))
    links = [u.fields["link"] for u in units]
    assert units and all(link.split("/")[2] == original for link in links), links
