"""What deduplication costs: its share of the pipeline's time on 10,000 articles, and the peak
memory of a run as the history held in OUT grows.

    python benchmarks/dedupe_cost.py [--aeb ../shared/data/aeb] [--articles 10000] [--html]
                                     [--rounds N] [--history 0 5000 ...]

The corpus is made of sentences from the AEB article bodies (real news text); one article in
five is a near copy of another. The same corpus runs with and without near-duplicate
detection (--no-dedupe keeps the exact stages, which cannot be switched off); the difference
is the near stage's cost. Memory: a fixed batch of 1,000 new articles is run into an OUT that
already holds 0, 5,000 and 10,000 stored articles; the peak resident set of the run
(DirectRunner, one process) is reported for each.
"""

from __future__ import annotations

import argparse
import html
import json
import random
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from common import aeb_text, run_cli  # noqa: E402


def make_corpus(aeb: Path, n: int, seed: int, prefix: str) -> list[dict]:
    """n articles of real news sentences: each draws 8 to 30 sentences at random from the
    whole AEB ground truth (so articles are distinct), and one in five is a near copy of an
    earlier one (3% of its words changed)."""
    truth = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    sentences = [s.strip() for v in truth.values()
                 for s in re.split(r"(?<=[.!?])\s+", v.get("articleBody") or "")
                 if len(s.split()) >= 6]
    rng = random.Random(seed)
    docs: list[dict] = []
    for i in range(n):
        if docs and rng.random() < 0.2:
            words = rng.choice(docs)["text"].split(" ")
            for k in rng.sample(range(len(words)), max(1, len(words) // 33)):
                words[k] = "edited"
            text = " ".join(words)
        else:
            picked = rng.sample(sentences, rng.randint(8, 30))
            text = "\n\n".join(" ".join(picked[j:j + 3]) for j in range(0, len(picked), 3))
        docs.append({"url": f"https://cost.example/{prefix}{i}", "title": f"Doc {prefix}{i}",
                     "text": text})
    return docs


def make_pages(aeb: Path, docs: list[dict], out_dir: Path) -> Path:
    """The same articles as HTML pages: each article's paragraphs replace the paragraphs of a
    real AEB page (its navigation, scripts, sidebars and footers kept), so extraction works
    on pages of real size and shape. One file per article."""

    import lxml.html

    templates = sorted((aeb / "html").glob("*.html.gz"))
    out_dir.mkdir(parents=True, exist_ok=True)
    shells = []
    for path in templates:
        tree = lxml.html.fromstring(aeb_text(path))
        paragraphs = tree.xpath("//p")
        if len(paragraphs) < 3:
            continue
        parent = paragraphs[0].getparent()
        for p in paragraphs:
            p.getparent().remove(p)
        marker = lxml.html.fromstring("<p>NEWSBEAM-BODY</p>")
        parent.insert(0, marker)
        shells.append(lxml.html.tostring(tree, encoding="unicode"))
    for i, doc in enumerate(docs):
        body = "".join(f"<p>{html.escape(p)}</p>" for p in doc["text"].split("\n\n"))
        page = shells[i % len(shells)].replace("<p>NEWSBEAM-BODY</p>", body, 1)
        page = page.replace("<head>", f'<head><link rel="canonical" href="{doc["url"]}">'
                            f"<title>{html.escape(doc['title'])}</title>", 1)
        (out_dir / f"page{i:05d}.html").write_text(page, encoding="utf-8")
    return out_dir


def run(corpus: Path, out: Path, *extra: str) -> tuple[float, int]:
    """(seconds, peak RSS in MiB of the child run)."""
    proc, seconds, peak = run_cli("run", str(corpus), "--output", str(out), "--quiet", *extra)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return seconds, peak


def write(docs: list[dict], path: Path) -> Path:
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n", encoding="utf-8")
    return path


def near_share(corpus: Path, out: Path, steps: str, label: str, rounds: int) -> None:
    """The same corpus with and without near-dup detection; the difference is its cost. With
    several rounds, the two alternate (which goes first alternates too) and the medians are
    reported: single runs on this machine move by about 1.5 s."""
    import shutil
    import statistics

    near_times, plain_times, shares = [], [], []
    rss_near = rss_plain = 0
    for i in range(rounds):
        order = [("near", ()), ("plain", ("--no-dedupe",))]
        for name, extra in order if i % 2 == 0 else order[::-1]:
            shutil.rmtree(out / name, ignore_errors=True)
            seconds, peak = run(corpus, out / name, steps, *extra)
            if name == "near":
                near_times.append(seconds)
                rss_near = max(rss_near, peak)
            else:
                plain_times.append(seconds)
                rss_plain = max(rss_plain, peak)
        shares.append((near_times[-1] - plain_times[-1]) / near_times[-1])
        if rounds > 1:
            print(f"  round {i + 1}: with {near_times[-1]:.1f} s, without "
                  f"{plain_times[-1]:.1f} s, share {shares[-1]:.1%}", flush=True)
    # the share is the median of each round's share (its two runs side by side), not one
    # taken from the two sides' median times, which may come from different rounds
    with_near, without = statistics.median(near_times), statistics.median(plain_times)
    print(f"{label}: with near-dup detection {with_near:.1f} s (peak {rss_near} MiB), without "
          f"{without:.1f} s (peak {rss_plain} MiB) (medians); near stage share of the run: "
          f"{statistics.median(shares):.1%} (median of {rounds} round"
          f"{'s' * (rounds > 1)}'s shares)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aeb", type=Path, default=REPO.parent / "shared" / "data" / "aeb")
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--html", action="store_true",
                        help="also measure the share on the same articles as HTML pages")
    parser.add_argument("--history", type=int, nargs="+", default=[0, 5_000, 10_000, 20_000],
                        help="stored history sizes for the memory series")
    parser.add_argument("--default-steps", action="store_true",
                        help="run the default steps (quotes and countries on) instead of "
                             "--steps=-quotes,-countries")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of each side for the share (medians are reported)")
    args = parser.parse_args()
    steps = "--steps=" if args.default_steps else "--steps=-quotes,-countries"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        docs = make_corpus(args.aeb, args.articles, 1, "a")
        near_share(write(docs, tmp / "corpus.jsonl"), tmp / "jsonl", steps,
                   f"{args.articles} text articles (JSONL)", args.rounds)
        if args.html:
            near_share(make_pages(args.aeb, docs, tmp / "pages"), tmp / "html", steps,
                       f"{args.articles} HTML pages", args.rounds)
        batch = write(make_corpus(args.aeb, 1000, 99, "new"), tmp / "batch.jsonl")
        for stored in args.history:
            out = tmp / f"hist{stored}"
            if stored:
                # in files of 5,000 articles: one JSONL file stays under --max-bytes
                folder = tmp / f"history{stored}"
                folder.mkdir()
                docs = make_corpus(args.aeb, stored, 5, f"h{stored}-")
                for k in range(0, stored, 5000):
                    write(docs[k:k + 5000], folder / f"part{k // 5000}.jsonl")
                run(folder, out, steps)
            seconds, peak = run(batch, out, steps)
            print(f"1000 new articles into an OUT holding {stored} stored: {seconds:.1f} s, "
                  f"peak {peak} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
