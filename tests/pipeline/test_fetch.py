"""Feeds over HTTP end to end: the CLI against real loopback servers the tests start.

Every server listens on 127.0.0.1, so runs pass --allow-network 127.0.0.1/32 (loopback only;
any other private address stays refused, which the redirect test relies on).
"""

from __future__ import annotations

import gzip
import json
import random
import subprocess
from collections.abc import Iterator
from html import escape
from pathlib import Path

import pandas as pd
import pytest

from tests.httpserver import Reply, ServerGroup, conditional, redirect
from tests.pipeline.test_cli import newsbeam

LOOPBACK = ("--allow-network", "127.0.0.1/32")
RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}
HTML_TYPE = {"Content-Type": "text/html; charset=utf-8"}
BODY = ("Harbour workers in the northern port agreed on Monday to end a strike that had "
        "halted shipping for nine days, after the operator raised its wage offer. ")


def rss(items: list[tuple[str, str, str]], title: str = "Test feed") -> bytes:
    """items: (title, link, description)."""
    entries = "".join(
        f"<item><title>{escape(t)}</title><link>{escape(link)}</link>"
        f"<guid>{escape(link)}</guid><description>{escape(d)}</description>"
        f"<pubDate>Mon, 04 Mar 2024 10:00:00 GMT</pubDate></item>"
        for t, link, d in items
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{escape(title)}</title><link>https://example.org/</link>"
            f"{entries}</channel></rss>").encode()


def page(title: str, author: str, published: str, paragraphs: int = 6) -> bytes:
    ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": title,
          "author": {"@type": "Person", "name": author}, "datePublished": published}
    words = (BODY * 3).split()
    random.Random(title).shuffle(words)  # each story its own text: no near copies
    body = "".join(f"<p>{' '.join(words[i * 20:(i + 1) * 20])}. Paragraph {i} of "
                   f"{escape(title)} adds its own detail.</p>" for i in range(paragraphs))
    return (f"<html><head><title>{escape(title)} | The Port Gazette</title>"
            f'<script type="application/ld+json">{json.dumps(ld)}</script></head>'
            f"<body><nav>Home News Sport</nav><article><h1>{escape(title)}</h1>{body}"
            f"</article><footer>Copyright 2024 The Port Gazette</footer></body></html>"
            ).encode()


def run(out: Path, *args: str) -> dict:
    return run_with_output(out, *args)[0]


def run_with_output(out: Path, *args: str) -> tuple[dict, subprocess.CompletedProcess[str]]:
    """One run: its manifest, and the process (stdout's summary, stderr's log)."""
    proc = newsbeam("run", *args, "--output", str(out), *LOOPBACK,
                    "--ingested-at", "2026-01-15T12:00:00Z")
    assert proc.returncode == 0, proc.stderr
    runs = sorted((out / "_runs").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    return json.loads(runs[-1].read_text()), proc


@pytest.fixture
def servers() -> Iterator[ServerGroup]:
    with ServerGroup() as group:
        yield group


def test_etag_round_trip_second_run_gets_304_and_adds_nothing(tmp_path: Path,
                                                               servers: ServerGroup) -> None:
    feed = rss([("Strike ends", "https://example.org/a", BODY * 3),
                ("Ferry back", "https://example.org/b", BODY[::-1] * 3)])
    server = servers.start({"/feed.xml": conditional(
        Reply(body=feed, headers=RSS_TYPE), etag='"v1"',
        last_modified="Mon, 04 Mar 2024 10:00:00 GMT")})
    out = tmp_path / "out"
    first = run(out, server.url("/feed.xml"))
    assert first["counts"]["articles"] == 2
    assert first["feeds"] == {"requested": 1, "fetched": 1, "not_modified": 0, "failed": 0,
                              "failures": []}
    state = pd.read_parquet(out / "_state" / "feeds")
    assert state.etag.tolist() == ['"v1"'] and state.status.tolist() == [200]
    second, proc = run_with_output(out, server.url("/feed.xml"))
    assert "feeds      1 requested: fetched 0, unchanged (304) 1, failed 0; every feed " \
           "unchanged since the last run" in proc.stdout
    request = server.requests_for("/feed.xml")[-1]
    assert request.headers["if-none-match"] == '"v1"'
    assert request.headers["if-modified-since"] == "Mon, 04 Mar 2024 10:00:00 GMT"
    assert second["counts"]["in"] == 0 and second["counts"]["articles"] == 0
    assert second["feeds"]["not_modified"] == 1
    assert len(pd.read_parquet(out / "articles")) == 2
    # the state keeps the validators for the run after
    assert set(pd.read_parquet(out / "_state" / "feeds").etag) == {'"v1"'}


def test_follow_links_gives_full_text_and_the_pages_author_and_date(
        tmp_path: Path, servers: ServerGroup) -> None:
    site = servers.start()
    site.route("/story", Reply(body=page("Strike ends at the port", "Maria Lopez",
                                         "2024-03-04T09:30:00+01:00"), headers=HTML_TYPE))
    site.route("/feed.xml", Reply(body=rss([("Strike ends at the port", site.url("/story"),
                                             "Workers agreed to end the strike.")]),
                                  headers=RSS_TYPE))
    out = tmp_path / "out"
    manifest = run(out, site.url("/feed.xml"), "--follow-links", "--ignore-robots")
    assert manifest["pages"]["fetched"] == 1
    art = pd.read_parquet(out / "articles").iloc[0]
    assert art.input_kind == "linked"
    assert "Paragraph 5 of Strike ends at the port adds its own detail" in art.text
    assert art.word_count > 150
    assert list(art.authors) == ["Maria Lopez"]
    assert art.published_at.isoformat() == "2024-03-04T08:30:00+00:00"
    assert art.title == "Strike ends at the port"
    assert art.field_sources["text"] == "page" and art.field_sources["authors"] == "page"
    assert art.field_sources["title"] == "feed"
    assert site.requests_for("/story")[0].headers["user-agent"].startswith("newsbeam/")


def test_follow_links_teasers_whose_page_cannot_be_had_are_rejects_that_say_why(
        tmp_path: Path, servers: ServerGroup) -> None:
    # --follow-links: a teaser whose link is not http(s), or whose page comes back empty,
    # cannot get its page: a reject that says why (not an article with url=null, not an
    # extract/empty_content); a whole-text entry with such a link goes on.
    site = servers.start()
    site.route("/blank", Reply(body=b"  \n", headers=HTML_TYPE))
    full = " ".join([BODY.strip()] * 6)  # well over FULL_ENTRY_WORDS, in content:encoded
    whole = (f'<item><title>Harbour strike ends</title><link>javascript:void(0)</link>'
             f'<guid>strike-1</guid><content:encoded>{escape(full)}</content:encoded></item>')
    feed = rss([
        ("Archive moved", "ftp://files.example.org/archive/moved.txt",
         "The archive has moved."),
        ("Blank page", site.url("/blank"), "A page that says nothing."),
    ]).replace(b'<rss version="2.0">', b'<rss version="2.0" xmlns:content='
               b'"http://purl.org/rss/1.0/modules/content/">').replace(
        b"</channel>", whole.encode() + b"</channel>")
    site.route("/feed.xml", Reply(body=feed, headers=RSS_TYPE))
    out = tmp_path / "out"
    manifest, proc = run_with_output(out, site.url("/feed.xml"), "--follow-links",
                                     "--ignore-robots")
    assert manifest["accounting"]["balanced"]
    assert manifest["counts"]["articles"] == 1 and manifest["counts"]["rejects"] == 2
    pages = manifest["pages"]
    assert (pages["fetched"], pages["failed"], pages["failed_kept_feed_text"]) == (0, 2, 1)
    assert "pages      fetched 0, failed 3 (2 rejected, 1 kept the feed's whole text)" \
        in proc.stdout
    rejects = pd.read_parquet(out / "rejects").sort_values("reason", ignore_index=True)
    assert list(zip(rejects.stage, rejects.reason, strict=True)) == [
        ("fetch_page", "bad_url"), ("fetch_page", "empty_body")]
    assert "ftp://files.example.org/archive/moved.txt" in rejects.detail[0]
    assert "(linked from entry 1 of " in rejects.detail[0]
    assert "(linked from entry 2 of " in rejects.detail[1]
    assert rejects.detail[1].startswith("HTTP 200 with an empty body")
    art = pd.read_parquet(out / "articles").iloc[0]
    assert art.title == "Harbour strike ends" and art.input_kind != "linked"


def test_every_failure_is_a_reject_and_good_feeds_still_land(tmp_path: Path,
                                                             servers: ServerGroup) -> None:
    bomb = gzip.compress(b"<rss>" + b" " * (40 * 1024 * 1024))
    good = rss([("Fine", "https://example.org/fine", BODY * 2)])
    server = servers.start({
        "/good.xml": Reply(body=good, headers=RSS_TYPE),
        "/missing.xml": Reply(404, b"gone"),
        "/broken.xml": Reply(500, b"oops"),
        "/slow.xml": Reply(body=good, headers=RSS_TYPE, delay=4.0),
        "/big.xml": Reply(body=b"<rss>" + b"x" * (3 * 1024 * 1024), headers=RSS_TYPE),
        "/bomb.xml": Reply(body=bomb, headers={**RSS_TYPE, "Content-Encoding": "gzip"}),
        "/loop-a": redirect("/loop-b"),
        "/loop-b": redirect("/loop-a"),
        "/to-private": redirect("http://10.255.255.1/feed.xml"),
        "/image.xml": Reply(body=b"\x89PNG....", headers={"Content-Type": "image/png"}),
        "/empty.xml": Reply(body=b"\n", headers=RSS_TYPE),
    })
    urls = [server.url(p) for p in ("/good.xml", "/missing.xml", "/broken.xml", "/slow.xml",
                                    "/big.xml", "/bomb.xml", "/loop-a", "/to-private",
                                    "/image.xml", "/empty.xml")]
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("# test feeds\n" + "\n".join(urls) + "\n\n")
    out = tmp_path / "out"
    manifest, proc = run_with_output(out, "--feeds", str(feeds), "--timeout", "1",
                                     "--retries", "1", "--max-bytes", "2MB")
    assert manifest["counts"]["articles"] == 1
    rejects = pd.read_parquet(out / "rejects")
    by_path = {r.input_path.rsplit("/", 1)[-1]: r for r in rejects.itertuples()}
    assert {name: (r.stage, r.reason) for name, r in by_path.items()} == {
        "missing.xml": ("fetch_feed", "http_404"),
        "broken.xml": ("fetch_feed", "http_500"),
        "slow.xml": ("fetch_feed", "timeout"),
        "big.xml": ("fetch_feed", "too_large"),
        "bomb.xml": ("fetch_feed", "too_large"),
        "loop-a": ("fetch_feed", "redirect_loop"),
        "to-private": ("fetch_feed", "private_address"),
        "image.xml": ("fetch_feed", "bad_content_type"),
        "empty.xml": ("fetch_feed", "empty_body"),
    }
    assert len(server.requests_for("/missing.xml")) == 1  # a 404 is not retried
    assert len(server.requests_for("/broken.xml")) == 2  # a 500 is, --retries 1
    assert manifest["accounting"]["balanced"]
    assert manifest["feeds"]["failed"] == 9
    # each dead feed is named on stderr and in the manifest, with its reason
    failures = manifest["feeds"]["failures"]
    assert sorted((f["url"].rsplit("/", 1)[-1], f["reason"]) for f in failures) == sorted(
        (name, r.reason) for name, r in by_path.items())
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line
                and "feed " in line and " failed (" in line]
    assert len(warnings) == 9
    assert any("/missing.xml failed (http_404)" in line for line in warnings)
    assert "feeds      10 requested: fetched 1, unchanged (304) 0, failed 9" in proc.stdout


def test_a_feed_served_under_a_type_that_says_nothing_is_read_when_it_is_one(
        tmp_path: Path, servers: ServerGroup) -> None:
    """Servers send feeds as text/html or application/octet-stream (a CMS, a download): such
    a feed is read as its body says; an HTML page under the same type (a login or error page
    where the feed was) is a bad_content_type reject that says why."""
    ferry = " ".join(f"The ferry timetable changes on pier {i} from Monday." for i in range(20))
    as_html = rss([("Served as HTML", "https://example.org/one", ferry)])
    as_bytes = rss([("Served as bytes", "https://example.org/two", BODY * 3)])
    login = b"<!doctype html><html><body><form>Sign in</form></body></html>"
    server = servers.start({
        "/cms.xml": Reply(body=as_html, headers={"Content-Type": "text/html; charset=utf-8"}),
        "/download": Reply(body=as_bytes, headers={"Content-Type": "application/octet-stream"}),
        "/members.xml": Reply(body=login, headers={"Content-Type": "text/html"}),
    })
    out = tmp_path / "out"
    manifest = run(out, server.url("/cms.xml"), server.url("/download"),
                   server.url("/members.xml"))
    titles = sorted(pd.read_parquet(out / "articles").title)
    assert titles == ["Served as HTML", "Served as bytes"]
    rejects = pd.read_parquet(out / "rejects")
    assert list(zip(rejects.stage, rejects.reason, strict=True)) == [
        ("fetch_feed", "bad_content_type")]
    assert rejects.detail[0].startswith("content type 'text/html', and the body is not a feed")
    assert rejects.input_path[0].endswith("/members.xml")
    assert manifest["accounting"]["balanced"]


def test_stories_sharing_a_teaser_are_kept_and_their_copies_found_in_a_later_run(
        tmp_path: Path) -> None:
    """A feed whose entries all carry one short teaser: each story is an article (the body
    alone was their exact key, and two of three were dropped as copies). A later run that
    brings the same stories under other URLs finds them in OUT's index (the stored key holds
    the title too), and a new story with the same teaser is new."""
    teaser = "Read more on our website."
    first = tmp_path / "first.xml"
    first.write_bytes(rss([(t, f"https://n.example/{i}", teaser)
                           for i, t in enumerate(["Ferry strike ends", "School reopens",
                                                  "Bridge closed"])]))
    out = tmp_path / "out"
    manifest = run(out, str(first))
    assert manifest["counts"]["articles"] == 3
    stored = pd.read_parquet(out / "articles")
    second = tmp_path / "second.xml"
    second.write_bytes(rss([(t, f"https://mirror.example/{i}", teaser)
                            for i, t in enumerate(["Ferry strike ends", "School reopens",
                                                   "Bridge closed", "Market moves"])]))
    manifest = run(out, str(second))
    assert manifest["counts"]["articles"] == 1 and manifest["counts"]["duplicates"] == 3
    copies = pd.read_parquet(out / "duplicates")
    assert set(copies.method) == {"exact"}
    assert set(copies.duplicate_of) == set(stored.article_id)
    assert "Market moves" in set(pd.read_parquet(out / "articles").title)


def test_robots_disallowed_page_is_never_fetched(tmp_path: Path, servers: ServerGroup) -> None:
    site = servers.start({"/robots.txt": Reply(body=b"User-agent: *\nDisallow: /private/\n",
                                               headers={"Content-Type": "text/plain"})})
    site.route("/private/story", Reply(body=page("Secret", "X Y", "2024-03-04"),
                                       headers=HTML_TYPE))
    site.route("/public/story", Reply(body=page("Open", "Ann Lee", "2024-03-04"),
                                      headers=HTML_TYPE))
    feed = rss([("Secret", site.url("/private/story"), "teaser"),
                ("Open", site.url("/public/story"), "teaser"),
                ("Whole", site.url("/private/whole"), "teaser")])
    # the third entry carries its whole text (content:encoded): with its page out of reach it
    # stands for itself, where a teaser is a reject that waits for its page
    full = f"<content:encoded><![CDATA[<p>{BODY * 3}</p>]]></content:encoded></item>"
    feed = feed.replace(b'<rss version="2.0">', b'<rss version="2.0" xmlns:content='
                        b'"http://purl.org/rss/1.0/modules/content/">')
    head, tail = feed.rsplit(b"</item>", 1)
    feed = head + full.encode() + tail
    site.route("/feed.xml", Reply(body=feed, headers=RSS_TYPE))
    out = tmp_path / "out"
    manifest = run(out, site.url("/feed.xml"), "--follow-links", "--rate-per-host", "20")
    assert site.requests_for("/private/story") == site.requests_for("/private/whole") == []
    assert len(site.requests_for("/public/story")) == 1
    assert len(site.requests_for("/robots.txt")) == 1
    rejects = pd.read_parquet(out / "rejects")
    assert rejects[["stage", "reason"]].values.tolist() == [["fetch_page", "robots_disallowed"]]
    assert manifest["counts"]["articles"] == 2 and manifest["accounting"]["balanced"]
    whole = pd.read_parquet(out / "articles").set_index("title").loc["Whole"]
    assert whole.url.endswith("/private/whole") and whole.word_count >= 80
    # not a reject and not a fetched page: the manifest counts it apart (it was silent)
    assert manifest["pages"]["fetched"] == 1 and manifest["pages"]["failed"] == 1
    assert manifest["pages"]["failed_kept_feed_text"] == 1


def test_per_host_rate_and_stored_pages_are_not_fetched_again(tmp_path: Path,
                                                               servers: ServerGroup) -> None:
    site = servers.start({"/robots.txt": Reply(404, b"")})
    n = 6
    for i in range(n):
        site.route(f"/s{i}", Reply(body=page(f"Story {i} " + "word " * i, "Ann Lee",
                                             f"2024-03-0{i + 1}"), headers=HTML_TYPE))
    items = [(f"Story {i}", site.url(f"/s{i}"), "teaser") for i in range(n)]
    site.route("/feed.xml", Reply(body=rss(items[:4]), headers=RSS_TYPE))
    out = tmp_path / "out"
    run(out, site.url("/feed.xml"), "--follow-links", "--rate-per-host", "4")
    arrivals = sorted(r.arrived for r in site.requests)
    # feed, robots.txt and 4 pages: 6 requests to one host at 4 per second
    assert len(arrivals) == 6
    assert arrivals[-1] - arrivals[0] >= (6 - 1) / 4 - 0.02
    # the feed grows by two entries: only the two new pages are fetched (pages whose article
    # is stored are not fetched again)
    site.route("/feed.xml", Reply(body=rss(items), headers=RSS_TYPE))
    site.clear_log()
    manifest = run(out, site.url("/feed.xml"), "--follow-links", "--rate-per-host", "4")
    fetched = sorted(r.path for r in site.requests if r.path.startswith("/s"))
    assert fetched == ["/s4", "/s5"]
    assert manifest["counts"]["articles"] == 2 and manifest["counts"]["duplicates"] == 4


def test_a_rerun_keeps_a_near_copys_entry_a_duplicate(tmp_path: Path,
                                                      servers: ServerGroup) -> None:
    """Entry b's page is a near copy of entry a's page, at its own URL. Rerun on
    a changed feed, the dropped copy's page used to be skipped (its URL was in OUT/duplicates),
    so the entry kept its feed teaser, which no stored article holds, and the rerun stored it
    as a new article. Now the page is fetched again and stays a near duplicate."""
    site = servers.start({"/robots.txt": Reply(404, b"")})
    original = page("Strike ends at the port", "Maria Lopez", "2024-03-04T09:30:00Z")
    copy = original.replace(b"<h1>Strike ends at the port</h1>",
                            b"<h1>Port strike is over</h1>").replace(
        b"</article>", b"<p>This story was first published by The Port Gazette and is "
                       b"republished here with its permission.</p></article>")
    site.route("/news/a", Reply(body=original, headers=HTML_TYPE))
    site.route("/news/b", Reply(body=copy, headers=HTML_TYPE))
    items = [("Strike ends at the port", site.url("/news/a"), "Short teaser about story 1."),
             ("Port strike is over", site.url("/news/b"), "Short teaser about story 2.")]
    site.route("/feed.xml", Reply(body=rss(items), headers=RSS_TYPE))
    out = tmp_path / "out"
    first = run(out, site.url("/feed.xml"), "--follow-links")
    assert first["counts"]["articles"] == 1
    assert first["duplicates_by_method"] == {"near": 1}
    site.route("/feed.xml", Reply(body=rss(items, title="Test feed, updated"),
                                  headers=RSS_TYPE))  # a changed feed is parsed again
    site.clear_log()
    second = run(out, site.url("/feed.xml"), "--follow-links")
    stored = pd.read_parquet(out / "articles")
    # the fuller copy (b: one paragraph more) is the kept one; a's page is fetched again
    assert stored.url.tolist() == [site.url("/news/b")]
    assert [r.path for r in site.requests if r.path.startswith("/news")] == ["/news/a"]
    assert second["counts"]["articles"] == 0, stored.url.tolist()
    assert second["duplicates_by_method"] == {"near": 1, "url": 1}
    assert "Short teaser" not in stored.text[0]


def test_a_page_that_failed_is_fetched_again_while_its_feed_is_unchanged(
        tmp_path: Path, servers: ServerGroup) -> None:
    """Entry two's page answers 404 on the first run (a reject). The feed does not change, so
    the next run's conditional request would get a 304 and never see the entry again, until
    the feed changed. A feed whose page failed keeps no validators: the next run gets it
    whole, does not fetch the stored page again, and fetches the failed one."""
    site = servers.start({"/robots.txt": Reply(404, b"")})
    site.route("/one", Reply(body=page("Strike ends at the port", "Ann Lee", "2024-03-04"),
                             headers=HTML_TYPE))
    site.route("/two", Reply(404, b"not yet"))
    feed = rss([("Strike ends at the port", site.url("/one"), "teaser one"),
                ("Ferry back in service", site.url("/two"), "teaser two")])
    site.route("/feed.xml", conditional(Reply(body=feed, headers=RSS_TYPE), etag='"v1"'))
    out = tmp_path / "out"
    first = run(out, site.url("/feed.xml"), "--follow-links")
    assert first["counts"]["articles"] == 1 and first["rejects_by_reason"] == {"http_404": 1}
    reject = pd.read_parquet(out / "rejects").iloc[0]  # the page, and the entry that led there
    assert reject.input_path == site.url("/two")
    assert reject.detail.endswith(f"(linked from entry 2 of {site.url('/feed.xml')})")
    assert pd.read_parquet(out / "_state" / "feeds").etag.isna().tolist() == [True]
    site.route("/two", Reply(body=page("Ferry back in service", "Bo Chen", "2024-03-04"),
                             headers=HTML_TYPE))
    site.clear_log()
    second = run(out, site.url("/feed.xml"), "--follow-links")
    assert "if-none-match" not in site.requests_for("/feed.xml")[0].headers
    assert [r.path for r in site.requests if r.path in ("/one", "/two")] == ["/two"]
    assert second["counts"]["articles"] == 1 and second["counts"]["rejects"] == 0
    assert sorted(pd.read_parquet(out / "articles").title) == [
        "Ferry back in service", "Strike ends at the port"]
    # every page fetched: the validators are kept, and the run after gets its 304
    third = run(out, site.url("/feed.xml"), "--follow-links")
    assert third["feeds"]["not_modified"] == 1 and third["counts"]["in"] == 0


def test_the_user_agent_carries_the_operators_contact_or_a_warning_asks_for_it(
        tmp_path: Path, servers: ServerGroup) -> None:
    site = servers.start({"/feed.xml": Reply(body=rss([("Open", "https://x.example/a", "t")]),
                                             headers=RSS_TYPE)})
    plain = newsbeam("run", site.url("/feed.xml"), "--output", str(tmp_path / "a"), *LOOPBACK)
    assert plain.returncode == 0, plain.stderr
    assert "fetching without --contact" in plain.stderr
    agent = site.requests_for("/feed.xml")[0].headers["user-agent"]
    assert agent.startswith("newsbeam/") and "(" not in agent  # no contact of ours
    named = newsbeam("run", site.url("/feed.xml"), "--output", str(tmp_path / "b"), *LOOPBACK,
                     "--contact", "mailto:ops@example.org")
    assert named.returncode == 0 and "--contact" not in named.stderr
    assert site.requests_for("/feed.xml")[-1].headers["user-agent"].endswith(
        "(+mailto:ops@example.org)")


def test_a_page_that_names_another_url_is_not_fetched_again(tmp_path: Path,
                                                            servers: ServerGroup) -> None:
    """The feed links to /story?utm=feed; the page names https://gazette.example/story as its
    own URL, and the article is stored under it. The next run must not fetch the page again
    (the link is remembered in OUT/_state/links): its entry is a url duplicate of the stored
    article. Before, only links equal to a stored URL were known, so such a feed had every
    page fetched on every run."""
    site = servers.start({"/robots.txt": Reply(404, b"")})
    canonical = "https://gazette.example/story"
    html = page("Strike ends at the port", "Maria Lopez", "2024-03-04T09:30:00+01:00")
    html = html.replace(b"<head>", f'<head><link rel="canonical" href="{canonical}">'.encode())
    site.route("/story", Reply(body=html, headers=HTML_TYPE))
    link = site.url("/story") + "?utm_source=feed&id=7"
    site.route("/feed.xml", Reply(body=rss([("Strike ends at the port", link,
                                             "Workers agreed to end the strike.")]),
                                  headers=RSS_TYPE))
    out = tmp_path / "out"
    first = run(out, site.url("/feed.xml"), "--follow-links")
    assert first["pages"]["fetched"] == 1 and first["pages"]["links_remembered"] == 1
    assert list(pd.read_parquet(out / "articles").url) == [canonical]
    remembered = pd.read_parquet(out / "_state" / "links")
    assert list(remembered.url) == [canonical] and "/story?" in remembered.link[0]
    site.route("/feed.xml", Reply(body=rss([("Strike ends at the port (updated)", link,
                                             "Workers agreed to end the strike.")]),
                                  headers=RSS_TYPE))  # a changed feed is parsed again
    site.clear_log()
    second = run(out, site.url("/feed.xml"), "--follow-links")
    assert site.requests_for("/story") == []
    assert second["pages"]["fetched"] == 0
    assert second["counts"]["articles"] == 0 and second["counts"]["duplicates"] == 1
    dups = pd.read_parquet(out / "duplicates")
    assert list(dups.method) == ["url"] and list(dups.url) == [canonical]


def test_a_compressed_feed_file_over_http_is_read_as_on_disk(tmp_path: Path,
                                                             servers: ServerGroup) -> None:
    """samples' harbour-archive.rss.xml.gz served as a file (Content-Type application/gzip,
    no Content-Encoding) was refused as bad_content_type; on disk it is decompressed. Now it
    is read the same; a gzip bomb served that way is a decompress_error reject, as on disk."""
    from tests.conftest import SAMPLES

    archive = (SAMPLES / "feeds" / "harbour-archive.rss.xml.gz").read_bytes()
    bomb = gzip.compress(b"<rss>" + b" " * (40 * 1024 * 1024))
    site = servers.start({
        "/archive.rss.xml.gz": Reply(body=archive, headers={"Content-Type": "application/gzip"}),
        "/bomb.xml.gz": Reply(body=bomb, headers={"Content-Type": "application/x-gzip"}),
    })
    out = tmp_path / "out"
    manifest = run(out, site.url("/archive.rss.xml.gz"), site.url("/bomb.xml.gz"),
                   "--max-bytes", "2MB")
    on_disk = newsbeam("run", str(SAMPLES / "feeds" / "harbour-archive.rss.xml.gz"),
                       "--output", str(tmp_path / "disk"))
    assert on_disk.returncode == 0, on_disk.stderr
    assert manifest["counts"]["articles"] == 2
    assert sorted(pd.read_parquet(out / "articles").title) == \
        sorted(pd.read_parquet(tmp_path / "disk" / "articles").title)
    rejects = pd.read_parquet(out / "rejects")
    assert rejects[["stage", "reason"]].values.tolist() == [["fetch_feed", "decompress_error"]]
    assert "decompression bomb" in rejects.detail[0]


def test_fetching_reports_progress_from_the_fetching_threads(
        caplog: pytest.LogCaptureFixture) -> None:
    """A run of feeds and pages has no file count for the progress line: the fetch stage logs
    how many requests are done (and failed) as it goes, at most once an interval."""
    import logging

    import apache_beam as beam

    from transforms.common import REJECTS_TAG
    from transforms.fetch import FeedRequest, FetchProgress, _FetchHosts
    from transforms.http import FetchPolicy

    now = [0.0]
    progress = FetchProgress("pages", interval=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="newsbeam.fetch"):
        assert progress.add(False) is None  # too soon
        now[0] = 12.0
        assert progress.add(True) == "fetching pages: 2 done (1 failed) in 12s"
        assert progress.add(False) is None  # not again before another interval
    assert [r.getMessage() for r in caplog.records] == ["fetching pages: 2 done (1 failed) "
                                                        "in 12s"]

    def fetch(_client: object, request: FeedRequest) -> list[object]:
        if request.url.startswith("bad"):
            return [beam.pvalue.TaggedOutput(REJECTS_TAG, request.url)]
        return [request.url]

    hosts = _FetchHosts(FetchPolicy(), "fetch_page", fetch)
    hosts.setup()
    hosts._progress = FetchProgress("pages", interval=0.0)
    caplog.clear()
    batch = [("h1", [FeedRequest(u) for u in ("a1", "bad2", "a3")]),
             ("h2", [FeedRequest("bad4")])]
    with caplog.at_level(logging.INFO, logger="newsbeam.fetch"):
        out = list(hosts.process(batch))
    assert len(out) == 4
    assert hosts._progress.done == 4 and hosts._progress.failed == 2
    assert caplog.records[-1].getMessage().startswith("fetching pages: 4 done (2 failed)")
