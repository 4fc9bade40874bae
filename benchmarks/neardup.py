"""Near-duplicate benchmark: newsbeam's dedupe against datasketch's MinHashLSH.

    python benchmarks/neardup.py [--aeb ../shared/data/aeb] [--write FILE]

Builds a labelled corpus from the article bodies in the AEB ground truth (real news text):
  * originals: the first 120 bodies of 80 words or more;
  * variants of each original, each kind a ground-truth copy of it:
      edited     other headline, byline and footer, and 3% of the words changed
      rewrapped  the sentences re-wrapped into other paragraphs, straight quotes for curly ones
      truncated  the first 80% of the words plus a "Read the full story" line
      appended   the original plus an update paragraph
      syndicated (30 of the originals) three copies, each under a footer of its own
  * hard negatives from the remaining bodies, never copies of anything:
      footer     a short distinct story (its first 50 words) followed by one long shared footer
      quote      a story that shares one paragraph with another held-out story
Every document is one JSONL line with its own URL, so only text decides. The CLI runs on the
corpus; its duplicates give predicted groups. Pairwise precision, recall and F1 are computed
over all pairs of documents put in one group. datasketch's MinHashLSH (same 5-word shingles,
128 permutations) runs on the same texts at thresholds 0.5, 0.7 and 0.8, with groups formed
by union-find over its query results.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from common import report  # noqa: E402

sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from transforms.text import content_key  # noqa: E402

FOOTER = (
    "This story was distributed by the Regional Press Exchange. Members may republish it in "
    "print and online with credit to the original publication. The views expressed are those "
    "of the authors and do not necessarily reflect the views of the Exchange, its members or "
    "its funders. For syndication enquiries, corrections and permissions, contact the "
    "Exchange desk. Our journalism is supported by readers: subscribe to receive the weekly "
    "digest of stories from member newsrooms across the region, delivered every Saturday."
)
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z“\"])")
VARIANTS = ("edited", "rewrapped", "truncated", "appended")
# syndicated: three partner sites carry the story whole, each under its own footer
KINDS = (*VARIANTS, "syndicated")
SITES = ("Harbour Times", "Valley Courier", "Coast Daily")


def paragraphs(body: str) -> list[str]:
    return [p.strip() for p in body.split("\n") if p.strip()]


def edit_words(body: str, rng: random.Random, share: float = 0.03) -> str:
    words = body.split(" ")
    for i in rng.sample(range(len(words)), max(1, int(len(words) * share))):
        words[i] = rng.choice(["also", "reportedly", "new", "local", "major", "said"])
    return " ".join(words)


def rewrap(body: str) -> str:
    sentences = [s for p in paragraphs(body) for s in SENTENCE.split(p)]
    grouped = [" ".join(sentences[i:i + 3]) for i in range(0, len(sentences), 3)]
    text = "\n\n".join(grouped)
    return text.replace("“", '"').replace("”", '"').replace("’", "'").replace("‘", "'")


def build_corpus(aeb: Path, seed: int = 7) -> list[dict]:
    truth = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    bodies = [v["articleBody"] for _k, v in sorted(truth.items())
              if len(content_key(v.get("articleBody") or "").split()) >= 80]
    rng = random.Random(seed)
    originals, held_out = bodies[:120], bodies[120:]
    docs: list[dict] = []

    def add(text: str, group: str, kind: str, title: str) -> None:
        n = len(docs)
        docs.append({"url": f"https://bench.example/doc/{n}", "title": title,
                     "text": text, "group": group, "kind": kind})

    for i, body in enumerate(originals):
        group = f"g{i}"
        add(body, group, "original", f"Story {i}")
        kind = VARIANTS[i % len(VARIANTS)]  # one variant of each kind per four originals...
        kinds = {kind, VARIANTS[(i + 1) % len(VARIANTS)]}  # ...and a second, so each has 60
        for k in sorted(kinds):
            if k == "edited":
                text = f"By Agency Staff\n\n{edit_words(body, rng)}\n\n© Partner Network"
                add(text, group, k, f"Another headline for story {i}")
            elif k == "rewrapped":
                add(rewrap(body), group, k, f"Story {i}")
            elif k == "truncated":
                words = body.split(" ")
                add(" ".join(words[: int(len(words) * 0.8)]) +
                    "\n\nRead the full story at the Harbour Times.", group, k, f"Story {i}")
            else:
                add(body + "\n\nUpdate: officials confirmed the figures on Friday evening and "
                    "said a full report would follow next week, after the review is complete.",
                    group, k, f"Story {i} (updated)")
        if i % 4 == 3:  # 30 stories, 90 copies
            for site in SITES:
                # a footer of its own (it names the story), so only the story is shared
                add(f"{body}\n\nPublished by the {site} as item {i} under licence from the "
                    f"wire service. All rights reserved by the {site} and its partners; no "
                    "part may be reproduced without permission.", group, "syndicated",
                    f"Story {i}")
    footer_stories = held_out[: len(held_out) // 2]
    quote_stories = held_out[len(held_out) // 2:]
    for j, body in enumerate(footer_stories):
        short = " ".join(body.split()[:50])
        add(f"{short}\n\n{FOOTER}", f"h{j}", "footer", f"Short {j}")
    for j in range(0, len(quote_stories) - 1, 2):
        a, b = quote_stories[j], quote_stories[j + 1]
        shared = max(paragraphs(a), key=len)
        pb = paragraphs(b)
        pb.insert(len(pb) // 2, shared)
        add(a, f"q{j}", "quote", f"Event {j}")
        add("\n\n".join(pb), f"q{j + 1}", "quote", f"Event {j} other view")
    return docs


def pairs_of(groups: dict[str, list[int]]) -> set[tuple[int, int]]:
    return {p for members in groups.values() for p in combinations(sorted(members), 2)}


def score(docs: list[dict], predicted: dict[str, list[int]], seconds: float) -> dict:
    true_groups: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(docs):
        true_groups[d["group"]].append(i)
    truth, pred = pairs_of(true_groups), pairs_of(predicted)
    tp = len(truth & pred)
    precision = tp / len(pred) if pred else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    group_of = {i: g for g, members in predicted.items() for i in members}
    per_kind = {}
    for kind in KINDS:
        variants = [i for i, d in enumerate(docs) if d["kind"] == kind]
        originals = {d["group"]: i for i, d in enumerate(docs) if d["kind"] == "original"}
        # a variant found in neither articles nor duplicates (rejected) is not caught, even
        # when its original is missing too
        caught = sum(1 for i in variants if group_of.get(i) is not None
                     and group_of.get(i) == group_of.get(originals[docs[i]["group"]]))
        per_kind[kind] = caught / len(variants)
    negatives = [i for i, d in enumerate(docs) if d["kind"] in ("footer", "quote")]
    merged = sum(1 for i in negatives
                 if i in group_of and len(predicted.get(group_of[i], [])) > 1)
    return {"precision": precision, "recall": recall, "f1": f1, "fp": len(pred - truth),
            "per_kind": per_kind, "negatives_merged": merged, "seconds": seconds}


def run_newsbeam(docs: list[dict]) -> tuple[dict[str, list[int]], float]:
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text("\n".join(json.dumps({k: d[k] for k in ("url", "title", "text")})
                                    for d in docs) + "\n", encoding="utf-8")
        out = Path(tmp) / "out"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pipeline", "run", str(corpus), "--output",
                               str(out), "--quiet", "--steps=-quotes,-countries"],
                              cwd=REPO, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        arts = pd.read_parquet(out / "articles", columns=["article_id", "url"])
        dups = pd.read_parquet(out / "duplicates", columns=["url", "duplicate_of"])
    index_of = {d["url"]: i for i, d in enumerate(docs)}
    groups: dict[str, list[int]] = defaultdict(list)
    for r in arts.itertuples():
        groups[r.article_id].append(index_of[r.url])
    for r in dups.itertuples():
        groups[r.duplicate_of].append(index_of[r.url])
    return dict(groups), seconds


def run_datasketch(docs: list[dict], threshold: float) -> tuple[dict[str, list[int]], float]:
    from datasketch import MinHash, MinHashLSH

    t0 = time.perf_counter()
    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    hashes = []
    for i, d in enumerate(docs):
        tokens = content_key(d["text"]).split()
        m = MinHash(num_perm=128)
        for k in range(max(1, len(tokens) - 4)):
            m.update(" ".join(tokens[k:k + 5]).encode("utf-8"))
        lsh.insert(str(i), m)
        hashes.append(m)
    parent = list(range(len(docs)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, m in enumerate(hashes):
        for j in lsh.query(m):
            a, b = find(i), find(int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[str, list[int]] = defaultdict(list)
    for i in range(len(docs)):
        groups[str(find(i))].append(i)
    return dict(groups), time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aeb", type=Path, default=REPO.parent / "shared" / "data" / "aeb")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    docs = build_corpus(args.aeb)
    rows = [("newsbeam (CLI, whole pipeline)", score(docs, *run_newsbeam(docs)))]
    for threshold in (0.5, 0.7, 0.8):
        rows.append((f"datasketch MinHashLSH {threshold}",
                     score(docs, *run_datasketch(docs, threshold))))
    kinds = " | ".join(KINDS)
    lines = [
        f"Corpus: {len(docs)} documents, "
        f"{sum(d['kind'] == 'original' for d in docs)} originals, "
        f"{sum(d['kind'] in KINDS for d in docs)} variants, "
        f"{sum(d['kind'] in ('footer', 'quote') for d in docs)} hard negatives.",
        "",
        f"| method | precision | recall | F1 | false-positive pairs | {kinds} "
        "| hard negatives merged | seconds |",
        "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in KINDS) + " | --- | --- |",
    ]
    for name, r in rows:
        per = " | ".join(f"{r['per_kind'][k]:.2f}" for k in KINDS)
        lines.append(f"| {name} | {r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} | "
                     f"{r['fp']} | {per} | {r['negatives_merged']} | {r['seconds']:.1f} |")
    report(lines, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
