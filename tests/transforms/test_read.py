"""Reading files: decompression by magic bytes, caps, corrupt and vanished files."""

from __future__ import annotations

import bz2
import functools
import gzip
import zlib
from pathlib import Path

import pytest

from transforms.errors import DecompressError, EmptyInput, ReadError, TooLarge
from transforms.read import decompress, read_document

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


def test_a_truncated_feed_is_still_one_reject(tmp_path: Path) -> None:
    feed = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>\n'
            + b"".join(b"<item><title>entry %d</title><description>text of entry %d"
                       b"</description></item>\n" % (i, i) for i in range(200))
            + b"</channel></rss>\n")
    path = tmp_path / "feed.xml.gz"
    path.write_bytes(gzip.compress(feed)[:-200])
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
