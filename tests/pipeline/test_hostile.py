"""Hostile and broken input end to end: every file ends as an article or a reject with a
stable reason, nothing is written outside OUT, and the run never crashes."""

from __future__ import annotations

import bz2
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.conftest import REPO

TRAVERSAL_FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>../../../../tmp/evil</title>
<link>https://evil.example/</link>
<item><title>../../../etc/passwd</title><link>https://evil.example/a/../../b</link>
<guid>../../x</guid><category>../../../../root</category><category>/etc/shadow</category>
<pubDate>../../2024</pubDate><description>Body text of a story whose every field is a
path.</description></item>
<item><title>NUL\x00 and \u202e bidi</title><link>https://evil.example/c</link>
<pubDate>Mon, 11 Mar 2024 07:30:00 +0100</pubDate><description>Another story.</description></item>
</channel></rss>"""


def test_hostile_corpus(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "traversal.xml").write_text(TRAVERSAL_FEED.replace("\x00", ""), encoding="utf-8")
    (inputs / "nul.xml").write_bytes(b"<rss>\x00\x00\x00</rss>")
    (inputs / "bom-utf8.txt").write_bytes(b"\xef\xbb\xbfHeadline with a BOM\n\nBody text that "
                                          b"follows the byte order mark.")
    (inputs / "mixed.txt").write_bytes("Tête à tête\n\n".encode() + "Déjà vu".encode("latin-1"))
    (inputs / "deep.html").write_text("<html><body>" + "<div>" * 3000 + "<p>deep text</p>"
                                      + "</div>" * 3000 + "</body></html>")
    (inputs / "bomb.xml.gz").write_bytes(gzip.compress(b"<rss>" + b" " * (60 * 1024 * 1024)))
    (inputs / "bomb.txt.bz2").write_bytes(bz2.compress(b"a" * (60 * 1024 * 1024)))
    (inputs / "laughs.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 '
        '"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><rss><channel><title>&lol2;'
        "</title></channel></rss>")
    (inputs / "huge.txt").write_bytes(b"x " * (3 * 1024 * 1024))
    before = set((tmp_path).iterdir())
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(inputs), "--output", str(out),
         "--max-bytes", "5MB", "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert set(tmp_path.iterdir()) == before | {out}
    for path in out.rglob("*"):
        assert path.resolve().is_relative_to(out.resolve())
        assert ".." not in path.relative_to(out).parts
    manifest = json.loads(next((out / "_runs").glob("*.json")).read_text())
    assert manifest["accounting"]["balanced"]
    rejects = pd.read_parquet(out / "rejects")
    names = rejects.input_path.map(lambda p: Path(p).name)
    reasons = dict(zip(names, rejects.reason, strict=True))
    assert reasons["nul.xml"] == "binary_content"
    assert reasons["deep.html"] == "html_too_deep"
    assert reasons["bomb.xml.gz"] == "decompress_error"
    assert reasons["bomb.txt.bz2"] == "decompress_error"
    assert reasons["laughs.xml"] == "xml_entities"
    assert reasons["huge.txt"] == "too_large"
    assert "internal_error" not in set(rejects.reason)
    assert all(len(e) <= 300 for e in rejects.excerpt)
    arts = pd.read_parquet(out / "articles")
    titles = set(arts.title)
    assert "../../../etc/passwd" in titles  # kept as data, never as a path
    assert "Headline with a BOM" in titles
    # UTF-8 with a Latin-1 paragraph: both read right
    assert arts.set_index("title").text["Tête à tête"] == "Déjà vu"
    assert {p.name for p in (out / "articles").iterdir()} <= {
        f"date={d}" for d in arts.date.astype(str)}


LONE = "\\ud800"  # a JSON escape of a lone UTF-16 surrogate: valid JSON, not encodable UTF-8


def test_lone_surrogates_become_replacement_characters(tmp_path: Path) -> None:
    """JSON may escape half a surrogate pair, and feedparser turns &#55296; into one; such a
    string cannot be encoded as UTF-8. It once crashed the run in the Parquet writer (or sent
    the article to rejects from the language model): each becomes U+FFFD, and the article is
    kept."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    body = ("Harbour officials said the ferry would run again on Monday after the storm, "
            "and that the crossing would take about forty minutes.")
    (inputs / "dump.jsonl").write_text(
        '{"url": "https://s.example/a", "title": "Ferry ' + LONE + ' back", "text": "'
        + body.replace("storm", "storm " + LONE) + '"}\n', encoding="utf-8")
    (inputs / "feed.json").write_text(json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": "S", "items": [
            {"id": "1", "url": "https://s.example/b", "title": "Bridge X",
             "content_text": "The new bridge opened to traffic this morning, two years "
                             "late and over budget, the council said."}]},
    ).replace("Bridge X", "Bridge " + LONE), encoding="utf-8")
    (inputs / "array.json").write_text(  # a JSON array of records: dumped again per record
        '[{"url": "https://s.example/e", "title": "Pier ' + LONE + ' works", "text": "The pier '
        'will close for repairs from March, the harbour board said after its meeting."}]',
        encoding="utf-8")
    (inputs / "feed.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>S</title>'
        "<link>https://s.example/</link><item><title>Market &#55296; day</title>"
        "<link>https://s.example/c</link><description>The spring market returns to the "
        "square on Saturday with forty stalls and a brass band.</description></item>"
        "</channel></rss>", encoding="utf-8")
    (inputs / "page.html").write_text(
        '<html><head><script type="application/ld+json">{"@type": "NewsArticle", '
        '"headline": "School ' + LONE + ' opens", "url": "https://s.example/d"}</script>'
        "</head><body><article><p>The new primary school in the valley opened its doors "
        "to ninety pupils this week, the first new school in the district for decades.</p>"
        "<p>Parents said the building was bright and warm, and that the playground was "
        "already the most popular place in the village after lessons.</p></article>"
        "</body></html>",
        encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(inputs), "--output", str(out),
         "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    arts = pd.read_parquet(out / "articles")
    assert sorted(arts.title) == ["Bridge \ufffd", "Ferry \ufffd back", "Market \ufffd day",
                                  "Pier \ufffd works", "School \ufffd opens"]
    assert "storm \ufffd" in arts.set_index("title").text["Ferry \ufffd back"]
    assert set(arts.language) == {"en"}
    assert not (out / "rejects").exists() or pd.read_parquet(out / "rejects").empty


def _articles_and_rejects(inputs: Path, out: Path) -> tuple[set[str], list[tuple], dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(inputs), "--output", str(out),
         "--quiet", "--ingested-at", "2026-01-01T00:00:00Z"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(next((out / "_runs").glob("*.json")).read_text())
    ids = set(pd.read_parquet(out / "articles").article_id) if (out / "articles").exists() \
        else set()
    rejects = pd.read_parquet(out / "rejects") if (out / "rejects").exists() else None
    rows = [] if rejects is None else sorted(
        (Path(p).name, s, r, d) for p, s, r, d in
        zip(rejects.input_path, rejects.stage, rejects.reason, rejects.detail, strict=True))
    return ids, rows, manifest


def test_a_cut_download_keeps_its_complete_records(tmp_path: Path) -> None:
    """A JSONL dump whose gzip was cut inside its sixth line, and an RSS feed whose gzip was
    cut inside its fourth item, give the articles of the records before the cut, exactly as
    the same records in whole files do, and one reject each for the lost rest. Accounting
    balances."""
    import zlib

    whole = (REPO / "samples" / "dumps" / "crawl-2024-03.jsonl").read_bytes()
    lines = whole.split(b"\n")
    packed = gzip.compress(whole)

    def text_before(data: bytes, cut: int) -> bytes:
        return zlib.decompressobj(31).decompress(data[:cut])

    cut = next(c for c in range(len(packed)) if text_before(packed, c).count(b"\n") == 5
               and len(text_before(packed, c)) > len(b"\n".join(lines[:5])) + 20)
    feed = (REPO / "samples" / "feeds" / "harbour-times.rss.xml").read_bytes()
    assert feed.count(b"</item>") == 4
    feed_packed = gzip.compress(feed)
    feed_cut = next(c for c in range(len(feed_packed))
                    if text_before(feed_packed, c).count(b"</item>") == 3
                    and text_before(feed_packed, c).count(b"<item") == 4)
    cut_in = tmp_path / "cut"
    cut_in.mkdir()
    (cut_in / "dump.jsonl.gz").write_bytes(packed[:cut])
    (cut_in / "feed.xml.gz").write_bytes(feed_packed[:feed_cut])
    same_in = tmp_path / "same"
    same_in.mkdir()
    (same_in / "dump.jsonl.gz").write_bytes(gzip.compress(b"\n".join(lines[:5]) + b"\n"))
    (same_in / "feed.xml").write_bytes(feed)

    cut_ids, cut_rejects, manifest = _articles_and_rejects(cut_in, tmp_path / "out_cut")
    same_ids, same_rejects, _ = _articles_and_rejects(same_in, tmp_path / "out_same")
    # the whole feed's fourth item is the one article the cut run lacks
    assert cut_ids < same_ids and len(same_ids - cut_ids) == 1 and len(cut_ids) >= 5
    lost = [r for r in cut_rejects if r[0] == "dump.jsonl.gz" and r[2] == "decompress_error"]
    assert len(lost) == 1 and lost[0][1] == "read"
    assert "first 4 complete lines were read" in lost[0][3]
    assert [r for r in cut_rejects if r[0] == "dump.jsonl.gz" and r not in lost] == \
        [r for r in same_rejects if r[0] == "dump.jsonl.gz"]
    lost_items = [r for r in cut_rejects if r[0] == "feed.xml.gz"]
    assert [r[1:3] for r in lost_items] == [("read", "decompress_error")]
    assert "first 3 complete entries were read" in lost_items[0][3]
    assert manifest["accounting"]["balanced"]
