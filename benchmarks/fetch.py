"""Fetching many hosts: 200 linked pages on 20 loopback hosts (distinct ports), each answer
delayed by 100 ms, fetched by `newsbeam run --follow-links` at the default politeness of one
request per second per host.

    python benchmarks/fetch.py [--hosts 20] [--pages 200] [--latency 0.1] [--rate 1]

Reported side by side, in one run:
- the politeness floor: each host serves its feed, robots.txt and its pages, one request per
  1/rate seconds, so the busiest host needs (requests - 1) / rate seconds at the least;
- newsbeam's wall time for the run (start-up included) and its time minus the start-up of
  an empty run (the same command on a feed with no linked pages);
- a plain loop: the same client fetching the same URLs one after another, as a script
  without Beam would (it pays every latency and every host's spacing in series).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.httpserver import Reply, ServerGroup  # noqa: E402
from transforms.http import PAGE_TYPES, FetchPolicy, HttpClient  # noqa: E402


def page(host: int, i: int) -> bytes:
    words = " ".join(f"w{host}x{i}x{k}" for k in range(300))
    return (f"<html><head><title>Story {host}-{i}</title></head><body><article>"
            f"<h1>Story {host}-{i}</h1><p>{words}</p><p>Second paragraph of story {host}-{i} "
            f"with enough words to count as a body.</p></article></body></html>").encode()


def feed(links: list[str]) -> bytes:
    items = "".join(f"<item><title>Item {n}</title><link>{u}</link><guid>{u}</guid></item>"
                    for n, u in enumerate(links))
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>f</title>{items}'
            f"</channel></rss>").encode()


def newsbeam(feeds: Path, out: Path, rate: float) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--feeds", str(feeds), "--output", str(out),
         "--follow-links", "--allow-network", "127.0.0.1/32", "--rate-per-host", str(rate),
         "-q"], cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rate", type=float, default=1.0)
    args = parser.parse_args()
    per_host = args.pages // args.hosts
    delay = args.latency
    with ServerGroup() as group, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        servers = group.start_many(args.hosts)
        all_pages: list[str] = []
        for h, server in enumerate(servers):
            links = [server.url(f"/p{i}") for i in range(per_host)]
            all_pages.extend(links)
            for i in range(per_host):
                server.route(f"/p{i}", Reply(body=page(h, i), delay=delay,
                                             headers={"Content-Type": "text/html"}))
            server.route("/robots.txt", Reply(404, b"", delay=delay))
            server.route("/feed.xml", Reply(body=feed(links), delay=delay,
                                            headers={"Content-Type": "application/rss+xml"}))
        # start-up reference: one feed whose entries link nowhere fetchable
        empty = servers[0]
        empty.route("/empty.xml", Reply(body=feed([]).replace(
            b"</channel>", b"<item><title>x</title><description>teaser text</description>"
                           b"</item></channel>"), headers={"Content-Type": "application/rss+xml"}))
        (tmp / "empty.txt").write_text(empty.url("/empty.xml") + "\n")
        (tmp / "feeds.txt").write_text("\n".join(s.url("/feed.xml") for s in servers) + "\n")
        startup = newsbeam(tmp / "empty.txt", tmp / "o0", args.rate)
        for s in servers:
            s.clear_log()
        wall = newsbeam(tmp / "feeds.txt", tmp / "o1", args.rate)
        spans = []
        for s in servers:
            arrivals = sorted(r.arrived for r in s.requests)
            spans.append(arrivals[-1] - arrivals[0])
        requests_per_host = per_host + 2  # feed, robots.txt, pages
        floor = (requests_per_host - 1) / args.rate + delay
        manifest = json.loads(next((tmp / "o1" / "_runs").glob("*.json")).read_text())
        # a plain loop over the same pages, with the same client and politeness
        client = HttpClient(FetchPolicy(allow_networks=("127.0.0.1/32",),
                                        rate_per_host=args.rate))
        # round-robin over the hosts, so the loop pays latency, not one host's spacing
        ordered = [all_pages[h * per_host + i] for i in range(per_host)
                   for h in range(args.hosts)]
        t0 = time.perf_counter()
        for url in ordered:
            client.fetch(url, accept="text/html", allowed_types=PAGE_TYPES)
        loop = time.perf_counter() - t0
    print(f"{args.pages} pages on {args.hosts} hosts, {delay * 1000:.0f} ms latency, "
          f"{args.rate:g} request/s per host")
    print(f"  politeness floor per host ({requests_per_host} requests): {floor:.1f} s")
    print(f"  newsbeam run --follow-links: {wall:.1f} s wall, {wall - startup:.1f} s beyond "
          f"the start-up of an empty run ({startup:.1f} s); pages fetched: "
          f"{manifest['pages']['fetched']}, articles: {manifest['counts']['articles']}")
    print(f"  per-host span (first to last request, server clock): median "
          f"{statistics.median(spans):.1f} s, max {max(spans):.1f} s")
    print(f"  ratio to the floor: {(wall - startup) / floor:.2f}x")
    print(f"  plain loop (same client, one URL after another): {loop:.1f} s "
          f"({loop / max(wall - startup, 1e-9):.1f}x newsbeam)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
