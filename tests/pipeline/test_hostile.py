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
    assert {p.name for p in (out / "articles").iterdir()} <= {
        f"date={d}" for d in arts.date.astype(str)}
