"""Throughput on one machine: newsbeam end to end against a plain Python loop, one and two
worker processes, time per stage, peak memory, and growth with the input size.

    python benchmarks/throughput.py [--docs 2000] [--rounds N] [--growth 1000 4000 16000]
                                    [--growth-batch N] [--growth-max-memory SIZE]
                                    [--write FILE]

Corpora (built in a temporary folder, nothing copied into the repo):
- pages: the 181 AEB pages replicated to --docs distinct documents. Each copy changes every
  third word of the page's text (inside elements and after them) with a copy-specific
  suffix, so copies share no 5-word shingle, and gets its own URL (canonical link, og:url and
  wherever the page repeats them), so deduplication keeps them all (a copy differing by one
  paragraph would be a near duplicate and dropped; a copy with the page's own URL would be a
  revision of it).
- feeds: real feed files from ../shared/data/feeds, taken until they hold about --docs
  entries.
The plain loop is the reference the issue names, on the same inputs without Beam:
trafilatura.bare_extraction (text and metadata, its defaults) for each page, feedparser.parse
for each feed, and one pyarrow Parquet write. It does none of newsbeam's cleaning, fields,
language, deduplication or index, so the ratio is newsbeam's whole work against it. It
runs in a child process, like newsbeam, so that both sides pay their start-up (the
interpreter and the imports): "start-up included" holds for both. Its time inside the
process (imports excluded) is reported beside it. --rounds repeats the three runs (loop,
1 worker, 2 workers) side by side; the ratios' medians are reported (--rounds 0: the growth
only). The growth's one run is `--batch-files 0` (one run whatever the machine's memory);
--growth-batch N runs each growth size again with --batch-files N, and --growth-max-memory
SIZE again with --max-memory SIZE and no --batch-files (the batches newsbeam plans itself).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from common import aeb_text, report, run_cli  # noqa: E402

SHARED = REPO.parent / "shared" / "data"


def make_pages(n: int, folder: Path) -> Path:
    import lxml.html

    folder.mkdir(parents=True, exist_ok=True)
    trees = []
    for path in sorted((SHARED / "aeb" / "html").glob("*.html.gz")):
        try:
            trees.append(lxml.html.fromstring(aeb_text(path)))
        except Exception:  # an unparsable template is skipped
            continue
    for i in range(n):
        tree = copy.deepcopy(trees[i % len(trees)])
        html = None
        if i >= len(trees):
            for node in tree.iter():
                if not isinstance(node.tag, str):
                    continue
                # the text inside the element, and the text after it (words after a link or
                # a bold run live there), except inside scripts and styles
                if node.tag not in ("script", "style") and node.text and node.text.strip():
                    node.text = _mark_words(node.text, i)
                if node.tail and node.tail.strip():
                    node.tail = _mark_words(node.tail, i)
            html = lxml.html.tostring(tree).decode("utf-8")
            # a copy is another document: its own URL wherever the page names its own
            for url in _own_urls(tree):
                html = html.replace(url, url.rstrip("/") + f"/copy-{i}")
        data = html.encode("utf-8") if html is not None else lxml.html.tostring(tree)
        (folder / f"page{i:05d}.html").write_bytes(data)
    return folder


def _mark_words(text: str, i: int) -> str:
    """Every third word gets a copy-specific suffix: no 5-word shingle survives unchanged."""
    words = text.split(" ")
    return " ".join(w + f"q{i}" if k % 3 == 0 and w else w for k, w in enumerate(words))


def _own_urls(tree) -> list[str]:
    """The URLs a page gives for itself (canonical link, og:url), longest first."""
    found = tree.xpath("//link[@rel='canonical']/@href | //meta[@property='og:url']/@content")
    return sorted({u.strip() for u in found if u.strip().startswith("http")}, key=len,
                  reverse=True)


def pick_feeds(n: int, folder: Path) -> tuple[Path, int]:
    import feedparser

    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    candidates = sorted(p for p in (SHARED / "feeds").rglob("*")
                        if p.is_file() and p.suffix in (".xml", ".rss", ".atom", ".rdf"))
    for k, path in enumerate(candidates):
        data = path.read_bytes()
        if b"<!ENTITY" in data:
            continue
        entries = len(feedparser.parse(data).entries)
        if entries == 0:
            continue
        (folder / f"f{k:05d}{path.suffix}").write_bytes(data)
        total += entries
        if total >= n:
            break
    return folder, total


def plain_loop(pages: Path, feeds: Path, out: Path) -> float:
    """The same work as a plain Python loop (one process); seconds, imports excluded."""
    import feedparser
    import pyarrow as pa
    import pyarrow.parquet as pq
    import trafilatura

    t0 = time.perf_counter()
    rows = []
    for path in sorted(pages.iterdir()):
        doc = trafilatura.bare_extraction(path.read_text(encoding="utf-8", errors="replace"),
                                          with_metadata=True)
        if doc is not None:
            d = doc.as_dict()
            rows.append({"url": d.get("url"), "title": d.get("title"), "text": d.get("text"),
                         "author": d.get("author"), "date": d.get("date")})
    for path in sorted(feeds.iterdir()):
        for e in feedparser.parse(path.read_bytes()).entries:
            rows.append({"url": e.get("link"), "title": e.get("title"),
                         "text": e.get("summary"), "author": e.get("author"),
                         "date": e.get("published")})
    pq.write_table(pa.Table.from_pylist(rows), out)
    return time.perf_counter() - t0


def plain_loop_process(pages: Path, feeds: Path, out: Path) -> tuple[float, float]:
    """The plain loop in a child process: (whole process seconds, seconds inside it)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--loop", str(pages), str(feeds),
                           str(out)], capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return seconds, float(proc.stdout.split()[-1])


def newsbeam(inputs: list[Path], out: Path, *extra: str) -> tuple[float, int, dict]:
    """(seconds, peak MiB of the largest process: with 2 workers, the command's or a
    worker's, whichever is larger; the manifest)."""
    proc, seconds, peak = run_cli("run", *map(str, inputs), "--output", str(out), "--quiet",
                                  *extra, children=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    manifest = json.loads(next((out / "_runs").glob("*.json")).read_text())
    return seconds, peak, manifest


def batched(folder: Path, out: Path, *flags: str) -> tuple[float, int, int]:
    """``folder`` run with ``flags`` (``--batch-files N``, or ``--max-memory SIZE`` for the
    batches newsbeam plans): (seconds, peak MiB of the largest process: the batches run in
    processes of their own, number of runs)."""
    proc, seconds, peak = run_cli("run", str(folder), "--output", str(out), "--quiet",
                                  *flags, children=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return seconds, peak, len(list((out / "_runs").glob("*.json")))


def stage_times(manifest: dict) -> str:
    stages = manifest["stages"]
    parts = [f"{s} {stages.get(s + '.us', 0) / 1e6:.1f}s"
             for s in ("setup", "read", "parse", "extract", "clean", "fields", "write")]
    measured = sum(stages.get(s + ".us", 0) for s in
                   ("setup", "read", "parse", "extract", "clean", "fields", "write")) / 1e6
    parts.append(f"dedupe+runner {max(0.0, manifest['duration_s'] - measured):.1f}s")
    return ", ".join(parts)


MULTI = ("--direct_num_workers", "2", "--direct_running_mode", "multi_processing")


def main() -> int:
    if sys.argv[1:2] == ["--loop"]:  # the plain loop's child process
        print(plain_loop(*map(Path, sys.argv[2:5])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=1,
                        help="side-by-side repetitions of loop, 1 worker, 2 workers (medians)")
    parser.add_argument("--growth", type=int, nargs="*", default=[1000, 4000, 16000])
    parser.add_argument("--growth-batch", type=int, default=None, metavar="N",
                        help="also run each growth size with --batch-files N")
    parser.add_argument("--growth-max-memory", default=None, metavar="SIZE",
                        help="also run each growth size with --max-memory SIZE (planned "
                             "batches)")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    lines = [f"# throughput ({time.strftime('%Y-%m-%d')})", ""]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pages = make_pages(args.docs, tmp / "pages")
        feeds, entries = pick_feeds(args.docs, tmp / "feeds")
        units = args.docs + entries
        lines += [
            f"{args.docs} pages + {entries} feed entries = {units} documents; each run a "
            "child process, start-up included",
            "",
            "| round | plain loop s (inside) | 1 worker s | 2 workers s | 1 worker / loop "
            "| 2 workers / loop | speed-up 2 over 1 | peak MiB 1 / 2 workers |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        ratios: list[tuple[float, float, float]] = []
        if not args.rounds:  # growth only
            lines = lines[:2]
        m1: dict = {}
        for r in range(args.rounds):
            loop, inside = plain_loop_process(pages, feeds, tmp / "loop.parquet")
            one, peak1, m1 = newsbeam([pages, feeds], tmp / f"o1-{r}")
            two, peak2, _m2 = newsbeam([pages, feeds], tmp / f"o2-{r}", *MULTI)
            ratios.append((one / loop, two / loop, one / two))
            lines.append(f"| {r + 1} | {loop:.1f} ({inside:.1f}) | {one:.1f} | {two:.1f} | "
                         f"{one / loop:.2f} | {two / loop:.2f} | {one / two:.2f} | "
                         f"{peak1} / {peak2} |")
            print(lines[-1], flush=True)
        med = [statistics.median(x[i] for x in ratios) for i in range(3)] if ratios else []
        lines += [] if not ratios else [
            f"| median | | | | **{med[0]:.2f}** | {med[1]:.2f} | **{med[2]:.2f}** | |",
            "",
            f"documents per second, 1 worker (last round): {units / one:.0f}; 2 workers: "
            f"{units / two:.0f}",
            f"time per stage, 1 worker (last round): {stage_times(m1)}",
            f"articles {m1['counts']['articles']}, duplicates {m1['counts']['duplicates']}, "
            f"rejects {m1['counts']['rejects']}",
            "",
        ]
        print("\n".join(lines[-6:]), flush=True)
        if args.growth:
            batch, limit = args.growth_batch, args.growth_max_memory
            head = "| pages | seconds | ms/page | peak MiB |"
            if batch:
                head += f" with --batch-files {batch}: seconds | ms/page | peak MiB |"
            if limit:
                head += f" with --max-memory {limit}: runs | seconds | ms/page | peak MiB |"
            lines += [head, "|" + " --- |" * (head.count("|") - 1)]
            for n in args.growth:
                folder = make_pages(n, tmp / f"g{n}")
                seconds, peak, _m = newsbeam([folder], tmp / f"go{n}", "--batch-files", "0")
                row = f"| {n} | {seconds:.1f} | {seconds / n * 1000:.1f} | {peak} |"
                if batch:
                    seconds, peak, _runs = batched(folder, tmp / f"gb{n}", "--batch-files",
                                                   str(batch))
                    row += f" {seconds:.1f} | {seconds / n * 1000:.1f} | {peak} |"
                if limit:
                    seconds, peak, runs = batched(folder, tmp / f"gm{n}", "--max-memory", limit)
                    row += f" {runs} | {seconds:.1f} | {seconds / n * 1000:.1f} | {peak} |"
                lines.append(row)
                print(lines[-1], flush=True)
                for p in folder.iterdir():
                    p.unlink()
    report(lines, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
