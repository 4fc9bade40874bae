"""Reading files: decompression by magic bytes, caps, corrupt and vanished files."""

from __future__ import annotations

import bz2
import codecs
import dataclasses
import functools
import gzip
import json
import re
import zlib
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

import transforms.read as read_module
from schemas.records import RawDocument
from tests.conftest import shared_data
from transforms.common import Rejected, Sink
from transforms.errors import DecompressError, EmptyInput, ReadError, TooLarge
from transforms.parse import ParseDocuments, parse_document
from transforms.read import (
    Chunk,
    DumpSlice,
    ReadSources,
    count_lines,
    decompress,
    dump_pieces,
    may_hold_dumps,
    number_chunks,
    read_chunk,
    read_document,
    read_or_plan,
    slice_dump,
)

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def test_gzip_and_bzip2_are_decompressed_by_content(tmp_path: Path) -> None:
    gz = tmp_path / "feed.xml"  # no .gz suffix: detected from the magic bytes
    gz.write_bytes(gzip.compress(FEED))
    bz = tmp_path / "feed.xml.bz2"
    bz.write_bytes(bz2.compress(FEED))
    assert next(read_document(str(gz))).data == FEED
    assert next(read_document(str(bz))).data == FEED


def test_gzip_bomb_is_refused() -> None:
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))
    with pytest.raises(DecompressError, match="bomb"):
        decompress("bomb.gz", bomb, max_bytes=50 * 1024 * 1024)


def test_bzip2_bomb_is_refused() -> None:
    bomb = bz2.compress(b"a" * (30 * 1024 * 1024))
    with pytest.raises(DecompressError, match="bomb"):
        decompress("bomb.bz2", bomb, max_bytes=50 * 1024 * 1024)


def test_corrupt_and_truncated_archives() -> None:
    with pytest.raises(DecompressError, match="corrupt"):
        decompress("x.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage", 1 << 20)
    with pytest.raises(DecompressError, match="truncated"):
        decompress("x.gz", gzip.compress(FEED * 50)[:-30], 1 << 20)


def test_size_cap_empty_and_missing(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(TooLarge):
        next(read_document(str(big), max_bytes=1000))
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"  \n")
    with pytest.raises(EmptyInput):
        next(read_document(str(empty)))
    with pytest.raises(ReadError):
        next(read_document(str(tmp_path / "vanished.xml")))


DUMP = Path(__file__).resolve().parents[2] / "samples" / "dumps" / "crawl-2024-03.jsonl"


@pytest.mark.parametrize("compress", [gzip.compress, functools.partial(bz2.compress,
                                                                      compresslevel=1)])
def test_a_truncated_jsonl_file_keeps_its_complete_lines(tmp_path: Path, compress) -> None:
    """Cut anywhere after its first line, a compressed JSONL dump (the sample dump 150 times
    over, 340 KB: bzip2 gives up its text by blocks of 100 KB here) gives every line that
    ends before the cut, unchanged, and one reject for the rest; cut before its first line
    is out, it is one reject, as any truncated file."""
    from transforms.common import Rejected

    whole = DUMP.read_bytes() * 150
    lines = whole.split(b"\n")
    packed = compress(whole)
    salvaged = 0
    for cut in range(20, len(packed) - 1, max(1, len(packed) // 60)):
        path = tmp_path / f"cut{cut}.jsonl.gz"
        path.write_bytes(packed[:cut])
        try:
            out = list(read_document(str(path)))
        except DecompressError as exc:
            assert "truncated" in exc.detail
            continue
        salvaged += 1
        doc, lost = out
        assert isinstance(lost, Rejected) and lost.exc.reason == "decompress_error"
        kept = doc.data[:-1].split(b"\n")  # read_document adds the last line's newline
        assert kept == lines[:len(kept)]  # whole lines only, in order, none cut
        complete = sum(1 for line in kept if line.strip())
        assert f"first {complete} complete line" in lost.exc.detail
        assert lines[len(kept)].startswith(lost.excerpt.encode()[:20])  # the cut line
    assert salvaged >= 20


REAL_FEEDS = ("realworld/rss-parser/guardian.rss", "realworld/rss-parser/heise.atom",
              "realworld/miniflux/rdf_UTF8.xml", "realworld/miniflux/encoding_ISO-8859-1.xml",
              "realworld/miniflux/encoding_WINDOWS-1251.xml",
              "realworld/miniflux/no_encoding_ISO-8859-1.xml",
              "realworld/miniflux/large_atom.xml")


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("name", REAL_FEEDS)
def test_a_truncated_feed_keeps_its_complete_entries(tmp_path: Path, name: str,
                                                     bom: bytes) -> None:
    """A real feed (RSS, Atom, RDF, Latin-1), gzipped and cut at 40 points: the salvaged
    document gives exactly the first entries of the whole feed, as the whole feed gives them,
    as many as end before the cut; the reject counts them. Cut before the first entry ends,
    the file is one reject. (The end tags of the channel and the root are put back: read
    loosely, without them, feedparser gives other fields, '&amp;' left in categories.)"""
    import re

    from schemas.records import RawDocument
    from transforms.common import Rejected
    from transforms.parse import parse_document

    whole = (shared_data() / "feeds" / name).read_bytes()
    if bom and not whole.lower().startswith(b'<?xml version="1.0" encoding="utf-8"?>'):
        pytest.skip("a UTF-8 byte order mark goes before a UTF-8 feed only")
    whole = bom + whole
    units = [u.fields for u in parse_document(RawDocument(input_path="f", data=whole))]
    assert len(units) >= 3
    packed = gzip.compress(whole)
    salvaged = 0
    for cut in range(30, len(packed) - 8, max(1, len(packed) // 40)):
        path = tmp_path / "feed.xml.gz"
        path.write_bytes(packed[:cut])
        text = zlib.decompressobj(31).decompress(packed[:cut])
        ended = len(re.findall(rb"</(?:\w+:)?(?:item|entry)\s*>", text, re.I))
        try:
            out = list(read_document(str(path)))
        except DecompressError as exc:
            assert "truncated" in exc.detail and ended == 0
            continue
        doc, lost = out
        assert isinstance(lost, Rejected) and lost.exc.reason == "decompress_error"
        assert f"first {ended} complete entr" in lost.exc.detail
        kept = [u.fields for u in parse_document(RawDocument(input_path="f", data=doc.data))]
        assert kept == units[:ended]
        salvaged += 1
    assert salvaged >= 20


def test_a_truncated_ill_formed_feed_keeps_its_complete_entries(tmp_path: Path) -> None:
    """An ill-formed feed (an unescaped '&', read loosely whole or cut) keeps the entries whose
    end tag came before the cut; a feed declaring entities stays one reject."""
    from schemas.records import RawDocument
    from transforms.common import Rejected
    from transforms.parse import parse_document

    items = b"".join(b"<item><title>Story %d & more</title><link>https://x.example/%d</link>"
                     b"<description>Text of story %d.</description></item>\n" % (i, i, i)
                     for i in range(300))
    feed = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>\n' + items
    path = tmp_path / "feed.xml.gz"
    packed = gzip.compress(feed + b"</channel></rss>")
    path.write_bytes(packed[:len(packed) // 2])
    doc, lost = list(read_document(str(path)))
    assert isinstance(lost, Rejected)
    units = list(parse_document(RawDocument(input_path="f", data=doc.data)))
    n = len(units)
    assert n > 50 and f"first {n} complete entries" in lost.exc.detail
    assert [u.fields["title"] for u in units] == [f"Story {i} & more" for i in range(n)]
    entities = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY e "x">]><rss version="2.0">'
                b"<channel><title>&e;</title>\n" + items)
    path.write_bytes(gzip.compress(entities)[:len(packed) // 2])
    with pytest.raises(DecompressError, match="truncated gzip data"):
        list(read_document(str(path)))


RSS_HEAD = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>\n'


def _rss(*items: bytes, head: bytes = RSS_HEAD, tail: bytes = b"</channel></rss>\n") -> bytes:
    return head + b"".join(items) + tail


def _item(i: int, extra: bytes = b"") -> bytes:
    return (b"<item><title>Story %d</title><category>A &amp; B</category><link>"
            b"https://x.example/%d</link>%s<description>Text of story %d.</description>"
            b"</item><!--end-->\n" % (i, i, extra, i))


SMALL_FEEDS = {
    "empty item element": _rss(_item(0), b"<item/><!--end-->\n", _item(2), _item(3)),
    "white space before the prolog": b"\n\n" + _rss(*(_item(i) for i in range(4))),
    "an item inside an item": _rss(*(_item(i, b"<x:item xmlns:x='urn:x'>n</x:item>")
                                     for i in range(4))),
    "ill-formed, CDATA holding an end tag": _rss(*(_item(i, b"<content><![CDATA[a </item> b"
                                                         b"]]></content>&nbsp;")
                                                   for i in range(4))),
    "ill-formed, an item inside an item": _rss(*(_item(i, b"<x:item xmlns:x='urn:x'>n"
                                                          b"</x:item>&nbsp;<x:item/>")
                                                 for i in range(4))),
    "items of other namespaces between the items": _rss(*(
        _item(i) + b"<x:item xmlns:x='urn:x'>n</x:item><media:item xmlns:media="
        b"'http://search.yahoo.com/mrss/'/>\n" for i in range(4))),
    "a surrogate reference": _rss(*(_item(i, b"<author>&#xD800; x</author>")
                                    for i in range(4))),
    "atom with a prefixed root": (
        b'<?xml version="1.0"?><atom:feed xmlns:atom="http://www.w3.org/2005/Atom">'
        b"<atom:title>t</atom:title>\n" + b"".join(
            b"<atom:entry><atom:title>Story %d</atom:title><atom:id>urn:%d</atom:id>"
            b"<atom:summary>Text of story %d.</atom:summary></atom:entry><!--end-->\n"
            % (i, i, i) for i in range(4)) + b"</atom:feed>\n"),
}


@pytest.mark.parametrize("name", SMALL_FEEDS)
def test_a_feed_cut_anywhere_keeps_its_whole_entries(tmp_path: Path, name: str) -> None:
    """Cut at every length of its gzip, an awkward feed gives its first entries exactly as
    the whole feed does (an entry kept cut would differ), none of those that ended before the
    cut is lost, and any other outcome is the one truncation reject."""
    from schemas.records import RawDocument
    from transforms.common import Rejected
    from transforms.parse import parse_document

    whole = SMALL_FEEDS[name]
    units = [u.fields for u in parse_document(RawDocument(input_path="f", data=whole))]
    assert len(units) == 4
    packed = gzip.compress(whole)
    salvaged = 0
    for cut in range(10, len(packed) - 8):
        path = tmp_path / "feed.xml.gz"
        path.write_bytes(packed[:cut])
        ended = zlib.decompressobj(31).decompress(packed[:cut]).count(b"<!--end-->")
        try:
            doc, lost = list(read_document(str(path)))
        except DecompressError as exc:
            assert "truncated" in exc.detail and ended == 0, (cut, exc.detail)
            continue
        assert isinstance(lost, Rejected)
        n = int(re.search(r"first (\d+) complete entr", lost.exc.detail).group(1))
        kept = [u.fields for u in parse_document(RawDocument(input_path="f", data=doc.data))]
        assert kept == units[:n] and n >= ended, (cut, n, ended)
        salvaged += 1
    assert salvaged > 0


def test_other_truncated_documents_stay_one_reject(tmp_path: Path) -> None:
    """A page, a text, a JSON feed cut short would read as a shorter whole."""
    page = b"<html><body>" + b"<p>A paragraph of the story, item by item.</p>" * 400 \
        + b"</body></html>"
    text = b"Headline\n\n" + b"A sentence of the story. " * 2000
    jsonfeed = (b'{"version": "https://jsonfeed.org/version/1.1", "items": ['
                + b",".join(b'{"id": "%d", "content_text": "entry %d"}' % (i, i)
                            for i in range(500)) + b"]}")
    for data in (page, text, jsonfeed):
        path = tmp_path / "doc.gz"
        path.write_bytes(gzip.compress(data)[:len(gzip.compress(data)) // 2])
        with pytest.raises(DecompressError, match="truncated gzip data"):
            list(read_document(str(path)))


def test_a_cut_inside_a_crlf_line_end_keeps_that_line(tmp_path: Path) -> None:
    from transforms.common import Rejected

    lines = [line for line in DUMP.read_bytes().split(b"\n") if line.strip()][:3]
    data = b"\r\n".join(lines) + b"\r\n"
    packed = gzip.compress(data * 40)
    cut = next(c for c in range(len(packed), 0, -1)
               if zlib.decompressobj(31).decompress(packed[:c]).endswith(b"\r"))
    path = tmp_path / "crlf.jsonl.gz"
    path.write_bytes(packed[:cut])
    doc, lost = list(read_document(str(path)))
    assert isinstance(lost, Rejected) and lost.excerpt == ""
    kept = [line for line in doc.data.split(b"\n") if line.strip()]
    assert kept[-1].rstrip(b"\r") == lines[(len(kept) - 1) % 3]  # the last line is whole


# ------------------------------------------------------------- large JSONL files, in pieces
def _dump_lines() -> list[str]:
    """A JSONL dump as people write them: records of varied length with non-ASCII text (so a
    piece can start inside a character), blank lines, a line that is not JSON, and a record
    whose text holds U+2028 (JSON allows it raw; it is no line end)."""
    lines = [json.dumps({"url": "https://e.example/0", "text": "first"})]
    for i in range(1, 120):
        if i % 17 == 0:
            lines.append("")
        elif i % 29 == 0:
            lines.append("{not json")
        else:
            text = f"Ærlig talt, {i} Straße \u2028 " + "ord " * (i * 7 % 90)
            lines.append(json.dumps({"url": f"https://e.example/{i}", "text": text},
                                    ensure_ascii=False))
    return lines


def _pieces(path: str, chunk_bytes: int, max_bytes: int, part: DumpSlice | None = None
            ) -> tuple[list[Any], list[str]]:
    """What ReadSources's chunked branch makes of a file (or of its slice ``part``), without
    Beam: its units (index, raw) and the details of its rejects."""
    planned = list(read_or_plan(path, max_bytes, chunk_bytes,
                                slices={path: part} if part else None))
    assert planned and all(isinstance(p, Chunk) for p in planned), "read whole"
    counted = [next(count_lines(p)) for p in planned]
    units: list[Any] = []
    lost: list[str] = []
    for chunk in number_chunks((path, [(c, n) for _path, c, n in counted])):
        for out in read_chunk(chunk, max_bytes):
            if isinstance(out, Rejected):
                lost.append(out.exc.detail)
            else:
                units += [(u.index, u.raw) for u in parse_document(out)]
    return units, lost


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("final_newline", [True, False])
@pytest.mark.parametrize("block", [1, 5, 1 << 20])
def test_a_jsonl_dump_read_in_pieces_gives_the_units_of_the_whole_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, newline: str, final_newline: bool,
        block: int) -> None:
    monkeypatch.setattr(read_module, "BLOCK", block)
    data = (newline.join(_dump_lines()) + newline * final_newline).encode("utf-8")
    path = tmp_path / "dump.jsonl"
    path.write_bytes(data)
    whole = [(u.index, u.raw) for u in parse_document(RawDocument(str(path), data))]
    assert len(whole) == 113
    for chunk_bytes in (1, 7, 333, 4096):
        units, lost = _pieces(str(path), chunk_bytes, 1 << 20)
        assert units == whole, chunk_bytes
        assert lost == []


@pytest.mark.parametrize("block", [1, 5, 1 << 20])
def test_a_dump_in_slices_gives_the_units_of_the_whole_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    """--batch-lines: the slices (``slice_dump``) start at line starts and hold at most the
    lines asked, and read one after another (each in pieces) they give the whole file's
    units, numbered as in a whole read, and its rejects."""
    monkeypatch.setattr(read_module, "BLOCK", block)
    lines = _dump_lines()
    lines[40] = json.dumps({"url": "https://e.example/huge", "text": "x" * 5000})
    for final_newline in (True, False):
        data = ("\n".join(lines) + "\n" * final_newline).encode("utf-8")
        path = tmp_path / "dump.jsonl"
        path.write_bytes(data)
        whole, whole_lost = _pieces(str(path), 1000, 3000)
        assert len(whole) == 112 and len(whole_lost) == 1
        for per in (1, 7, 50, 119, 120, 500):
            parts = slice_dump(str(path), per)
            count = data.count(b"\n") + (not data.endswith(b"\n"))  # the last line may be ""
            assert len(parts) == -(-count // per), per  # every slice but the last is full
            assert [p.lines_before for p in parts] == [i * per for i in range(len(parts))]
            assert parts[0].start == 0 and parts[-1].end == len(data)
            for part, after in zip(parts, parts[1:], strict=False):
                assert part.end == after.start and data[after.start - 1:after.start] == b"\n"
                assert data[part.start:part.end].count(b"\n") == per
            units: list[Any] = []
            lost: list[str] = []
            for part in parts:
                for chunk_bytes in (333,):
                    more, gone = _pieces(str(path), chunk_bytes, 3000, part)
                    units += more
                    lost += gone
            assert units == whole and lost == whole_lost, per


def test_a_dump_that_changes_after_its_slices_were_planned_is_a_reject(tmp_path: Path
                                                                      ) -> None:
    """--batch-lines plans the slices once, before the first batch: a dump appended to (or
    rewritten) before a later batch reads it is a reject, not lines silently missed or
    misnumbered."""
    path = tmp_path / "dump.jsonl"
    path.write_bytes(("\n".join(_dump_lines()) + "\n").encode("utf-8"))
    parts = slice_dump(str(path), 50)
    assert len(list(read_or_plan(str(path), 1 << 20, 1000, slices={str(path): parts[1]}))) > 1
    with path.open("ab") as fh:
        fh.write(b'{"url": "https://e.example/late", "text": "appended"}\n')
    with pytest.raises(ReadError, match="changed while it was read"):
        list(read_or_plan(str(path), 1 << 20, 1000, slices={str(path): parts[1]}))


def test_a_line_over_the_cap_is_one_reject_and_the_lines_after_keep_their_numbers(
        tmp_path: Path) -> None:
    lines = _dump_lines()
    lines[40] = json.dumps({"url": "https://e.example/huge", "text": "x" * 5000})
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path = tmp_path / "dump.jsonl"
    path.write_bytes(data)
    whole = [(u.index, u.raw) for u in parse_document(RawDocument(str(path), data))]
    for chunk_bytes in (7, 1000, 3000):
        units, lost = _pieces(str(path), chunk_bytes, 3000)
        assert units == [(i, raw) for i, raw in whole if i != 40], chunk_bytes
        at = len("\n".join(lines[:40]).encode("utf-8")) + 1
        assert lost == [f"line 41 (at byte {at}) is larger than the cap of 3000 bytes"]


def test_what_is_not_an_uncompressed_jsonl_dump_is_read_whole(tmp_path: Path) -> None:
    dump = ("\n".join(_dump_lines()) + "\n").encode("utf-8")
    cases = {
        "dump.jsonl.gz": (gzip.compress(dump), dump),  # a gzip stream cannot be cut
        "page.html": (b"<html><body>" + b"<p>text</p>" * 500 + b"</body></html>", None),
        "array.json": (json.dumps([{"text": "a"}] * 300).encode(), None),  # one JSON value
        "list-first.jsonl": (b"[1, 2]\n" + dump, None),  # its first line is no object
        "small.jsonl": (dump[:1000], None),  # no larger than a piece
    }
    for name, (data, decompressed) in cases.items():
        (tmp_path / name).write_bytes(data)
        read = list(read_or_plan(str(tmp_path / name), 1 << 20, 1000))
        assert read == [RawDocument(str(tmp_path / name), decompressed or data)], name
    (tmp_path / "dump.jsonl").write_bytes(dump)  # the same dump, uncompressed: in pieces
    pieces = list(read_or_plan(str(tmp_path / "dump.jsonl"), 1 << 20, 1000))
    assert [(c.start, c.end) for c in pieces] == [
        (start, min(start + 1000, len(dump))) for start in range(0, len(dump), 1000)]
    with pytest.raises(ReadError):
        list(read_or_plan(str(tmp_path / "missing.jsonl"), 100, 10))
    (tmp_path / "big.html").write_bytes(b"<p>" * 100)
    with pytest.raises(TooLarge):  # over --max-bytes and no dump: rejected as before
        list(read_or_plan(str(tmp_path / "big.html"), 200, 100))


def _write_dump(folder: Path, name: str, lines: list[str]) -> Path:
    path = folder / name
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return path


def test_one_json_value_on_one_line_is_read_whole(tmp_path: Path) -> None:
    """A minified JSON Feed (a trailing newline after it) is one document, not a dump of one
    record: read whole, it gives its items."""
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": "Harbour",
            "items": [{"id": str(i), "url": f"https://h.example/{i}",
                       "content_text": "Boats " * 50} for i in range(40)]}
    path = _write_dump(tmp_path, "feed.json", [json.dumps(feed), "", ""])
    read = list(read_or_plan(str(path), 1 << 20, 1000))
    assert [type(r).__name__ for r in read] == ["RawDocument"]
    units = list(parse_document(read[0]))
    assert len(units) == 40 and {u.input_kind for u in units} == {"jsonfeed"}


def test_a_dump_whose_name_holds_glob_characters(tmp_path: Path) -> None:
    path = _write_dump(tmp_path, "dump[1]*.jsonl", _dump_lines())
    whole = [(u.index, u.raw) for u in parse_document(RawDocument(str(path),
                                                                  path.read_bytes()))]
    assert _pieces(str(path), 500, 1 << 20) == (whole, [])


def test_blank_lines_before_the_first_record(tmp_path: Path) -> None:
    path = _write_dump(tmp_path, "dump.jsonl", ["", "  ", *_dump_lines()])
    whole = [(u.index, u.raw) for u in parse_document(RawDocument(str(path),
                                                                  path.read_bytes()))]
    assert _pieces(str(path), 500, 1 << 20) == (whole, [])


def test_after_a_piece_that_could_not_be_counted_no_line_is_renumbered(tmp_path: Path
                                                                        ) -> None:
    """Its reject says why; the pieces after it become rejects when read, instead of lines
    numbered without its newlines (their unit keys would collide with other lines')."""
    path = _write_dump(tmp_path, "dump.jsonl", _dump_lines())
    chunks = list(read_or_plan(str(path), 1 << 20, 1000))
    counted = [next(count_lines(c))[1:] for c in chunks]
    del counted[2]
    numbered = list(number_chunks((str(path), counted)))
    assert [c.lines_before >= 0 for c in numbered] == [True, True] + [False] * (
        len(chunks) - 3)
    with pytest.raises(ReadError, match="cannot be numbered"):
        list(read_chunk(numbered[2]))


def test_a_file_that_changes_while_it_is_read_is_a_reject(tmp_path: Path) -> None:
    path = _write_dump(tmp_path, "dump.jsonl", _dump_lines())
    chunks = list(read_or_plan(str(path), 1 << 20, 1000))
    with path.open("ab") as fh:  # still being written
        fh.write(b'{"url": "https://e.example/late"}\n')
    with pytest.raises(ReadError, match="changed while it was read"):
        list(count_lines(chunks[0]))
    with pytest.raises(ReadError, match="changed while it was read"):
        list(read_chunk(dataclasses.replace(chunks[1], lines_before=3)))


def test_pieces_inside_one_long_line_are_left_at_once(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Each piece inside a line reads only its own bytes; the piece where the line starts
    reads it through once (it was read to its end by every piece inside it: quadratic)."""
    lines = _dump_lines()
    lines[5] = json.dumps({"url": "https://e.example/long", "text": "y" * 400_000})
    path = _write_dump(tmp_path, "dump.jsonl", lines)
    read_bytes = [0]
    real_open = read_module.FileSystems.open

    class Counted:
        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def __enter__(self) -> Counted:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def close(self) -> None:
            self.fh.close()

        def seek(self, *args: int) -> int:
            return int(self.fh.seek(*args))

        def read(self, n: int = -1) -> bytes:
            data = self.fh.read(n)
            read_bytes[0] += len(data)
            return bytes(data)

    class CountingFileSystems:
        @staticmethod
        def open(path: str, **kwargs: Any) -> Counted:
            return Counted(real_open(path, **kwargs))

    chunks = list(read_or_plan(str(path), 1 << 20, 20_000))  # 20 pieces inside the line
    numbered = list(number_chunks((str(path), [next(count_lines(c))[1:] for c in chunks])))
    monkeypatch.setattr(read_module, "FileSystems", CountingFileSystems)
    units = [u for c in numbered for d in read_chunk(c) for u in parse_document(d)]
    assert len(units) == 113
    # each piece its own bytes, the line once more (its reads double, so up to twice): 2.7
    # times the file; 9 times when every piece inside the line read on to its end
    assert read_bytes[0] < 4 * path.stat().st_size


def test_each_piece_is_decoded_as_utf8_whatever_one_record_holds(tmp_path: Path) -> None:
    """A <meta charset> inside one record does not decide how the others read (it made the
    whole file read as gb18030), and a junk line of bytes that are not UTF-8 stays one line."""
    lines = _dump_lines()
    lines[3] = json.dumps({"url": "https://e.example/meta",
                           "html": '<meta charset="gb18030"><p>Hei</p>'})
    data = ("\n".join(lines) + "\n").encode("utf-8")
    junk_at = data.index(b"\n", 3000) + 1
    data = data[:junk_at] + b"\xff\xfejunk\x81\n" + data[junk_at:]
    path = tmp_path / "dump.jsonl"
    path.write_bytes(data)
    whole = [(u.index, u.raw) for u in parse_document(RawDocument(str(path), data))]
    assert any("Straße" in raw for _i, raw in whole)  # read as UTF-8, not gb18030
    for chunk_bytes in (junk_at, 333, 1000):
        units, lost = _pieces(str(path), chunk_bytes, 1 << 20)
        assert [i for i, _raw in units] == [i for i, _raw in whole], chunk_bytes
        # the junk line is the one its piece decodes its own way (as cp1251 or with U+FFFD)
        assert [unit for unit in units if "junk" not in unit[1]] == \
            [unit for unit in whole if "junk" not in unit[1]]
        assert lost == []


def test_a_latin1_line_does_not_change_how_the_utf8_lines_of_its_piece_read(
        tmp_path: Path) -> None:
    lines = [json.dumps({"url": f"https://e.example/{i}",
                         "text": "Straße" if i % 50 == 10 else "plain text " * 3},
                        ensure_ascii=False) for i in range(200)]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    cut = data.index(b"\n", len(data) // 2) + 1
    data = data[:cut] + b'{"text": "caf\xe9 na\xefve"}\n' + data[cut:]
    path = tmp_path / "dump.jsonl"
    path.write_bytes(data)
    whole = [(u.index, u.raw) for u in parse_document(RawDocument(str(path), data))]
    for chunk_bytes in (2000, 5000, 8000):
        units, _lost = _pieces(str(path), chunk_bytes, 1 << 20)
        assert [i for i, _raw in units] == [i for i, _raw in whole]
        assert sum("Straße" in raw for _i, raw in units) == 4, chunk_bytes
        assert [raw for _i, raw in units if "caf" in raw] == ['{"text": "café naïve"}']


def test_a_byte_order_mark_is_dropped_at_the_start_of_the_file_only(tmp_path: Path) -> None:
    """Two dumps concatenated: the second one's mark stays in its line, as in a whole read
    (where it makes the line invalid JSON), wherever the pieces fall; a mark and a blank
    line at the start still make a dump."""
    first = ("\n".join(_dump_lines()[:60]) + "\n").encode("utf-8")
    data = codecs.BOM_UTF8 + b"\n" + first + codecs.BOM_UTF8 + first
    path = tmp_path / "dump.jsonl"
    path.write_bytes(data)
    whole = [(u.index, u.raw) for u in parse_document(RawDocument(str(path), data))]
    at = len(codecs.BOM_UTF8 + b"\n" + first)
    for chunk_bytes in (at, at - 1, at + 1, 300, len(first) * 2):
        assert _pieces(str(path), chunk_bytes, 1 << 20) == (whole, []), chunk_bytes
    assert sum(raw.startswith("\ufeff") for _i, raw in whole) == 1


def test_read_sources_in_pieces_on_beam(tmp_path: Path) -> None:
    """The chunked branch on the real runner gives the same units as the whole read, for a
    dump over --max-bytes (which the whole read rejects) beside a file read whole."""
    dump = ("\n".join(_dump_lines()) + "\n").encode("utf-8")
    (tmp_path / "dump.jsonl").write_bytes(dump)
    (tmp_path / "note.txt").write_bytes(b"A short note.\n")
    whole = [(str(tmp_path / "dump.jsonl"), u.index, u.raw) for u in parse_document(
        RawDocument(str(tmp_path / "dump.jsonl"), dump))] + [(str(tmp_path / "note.txt"), 0,
                                                             "A short note.\n")]
    paths = [str(tmp_path / "dump.jsonl"), str(tmp_path / "note.txt")]
    with TestPipeline() as p:
        with Sink("Rejects", beam.Map(_reason)) as rejects:
            units = (p | beam.Create(paths)
                     | ReadSources(rejects, max_bytes=len(dump) // 3, chunked=True,
                                   chunk_bytes=999)
                     | ParseDocuments(rejects)
                     | beam.Map(lambda u: (u.input_path, u.index, u.raw)))
        assert_that(units, equal_to(whole))
        assert_that(rejects.output(), equal_to([]), label="NoRejects")


def _reason(row: Any) -> str:
    return str(row.reason)


def test_the_driver_builds_the_chunked_read_only_for_a_dump(tmp_path: Path) -> None:
    """The chunked branch costs a run of pages a materialization of every page on the
    DirectRunner, so the driver asks for it only when an input is a dump."""
    (tmp_path / "page.html").write_bytes(b"<html><body>" + b"<p>text</p>" * 500 + b"</body>")
    dump = _write_dump(tmp_path, "dump.jsonl", _dump_lines())
    (tmp_path / "dump.jsonl.gz").write_bytes(gzip.compress(dump.read_bytes()))
    others = [str(tmp_path / "page.html"), str(tmp_path / "dump.jsonl.gz"),
              str(tmp_path / "missing.jsonl")]
    assert not may_hold_dumps(others, 1 << 20, 1000)
    assert not may_hold_dumps([*others, str(dump)], 1 << 20)  # no larger than a piece
    assert may_hold_dumps([*others, str(dump)], 1 << 20, 1000)
    assert may_hold_dumps([*others, str(dump)], 1000)  # a piece is at most --max-bytes
    assert may_hold_dumps(["gs://bucket/news/a.html"])  # the read decides there
    # the pieces the driver counts for the progress line are those the read plans
    size = dump.stat().st_size
    planned = [c for c in read_or_plan(str(dump), 1 << 20, 1000) if isinstance(c, Chunk)]
    assert dump_pieces([*others, str(dump), "gs://bucket/a.jsonl"], 1 << 20, 1000) == {
        str(dump): len(planned)} and len(planned) == -(-size // 1000) > 1
    assert dump_pieces([str(dump)], 1 << 20) == {}
