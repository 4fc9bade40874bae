"""Extraction benchmark: newsbeam's text and metadata against trafilatura (and htmldate) alone.

    python benchmarks/extraction.py [--aeb ../shared/data/aeb] [--write docs/benchmarks.md]

1. Text quality on the 181 AEB pages with the benchmark's own metric (benchmarks/aeb.py):
   newsbeam's ``text`` field (extraction, cleaning chain, field chain) beside
   ``trafilatura.bare_extraction`` called alone with its defaults.
2. Metadata accuracy (title, authors, publication date) on the pages labelled by hand in
   tests/fixtures/aeb_metadata_labels.json, beside trafilatura alone and htmldate alone.
3. Speed, measured side by side in this one run: per-page times of trafilatura alone (text and
   metadata, as newsbeam needs both), of newsbeam's per-article functions, and the whole Beam
   pipeline (DirectRunner) on the same gzipped pages minus its fixed start-up cost (a run on
   one page).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from common import report  # noqa: E402

sys.path.insert(0, str(REPO))

import htmldate  # noqa: E402
import trafilatura  # noqa: E402

from benchmarks.aeb import Page, Score, corpus_score, load_pages  # noqa: E402
from schemas.records import Article, Unit  # noqa: E402
from transforms.dates import parse_date  # noqa: E402
from transforms.extract import extract_article, split_names  # noqa: E402
from transforms.fields import finalize  # noqa: E402
from transforms.steps import apply_step, resolve_steps  # noqa: E402

NOW = datetime(2026, 1, 15, tzinfo=timezone.utc)
LABELS = REPO / "tests" / "fixtures" / "aeb_metadata_labels.json"


def newsbeam_article(page: Page, html: str) -> Article:
    """What the pipeline does to one page, without Beam: extract, clean, fields, finalize."""
    steps = resolve_steps(None)
    article = next(extract_article(Unit(str(page.path), "html", 0, raw=html), NOW))
    for s in steps["clean"] + steps["fields"]:
        article = apply_step(article, s)
    return finalize(article)


def trafilatura_alone(html: str) -> dict[str, Any]:
    doc = trafilatura.bare_extraction(html, with_metadata=True)
    return doc.as_dict() if doc is not None else {}


# ---------------------------------------------------------------- metadata comparison
def norm_title(text: str | None) -> str:
    return " ".join(re.findall(r"\w+", unicodedata.normalize("NFKC", text or "").casefold()))


def norm_names(names: list[str]) -> set[str]:
    return {norm_title(n) for n in names if norm_title(n)}


def same_day(got: datetime | None, want: str | None) -> bool:
    if want is None:
        return got is None
    if got is None:
        return False
    want_dt = _aware(want)
    if want_dt is None:
        return False
    if len(want) == 10:  # a date without time: compare the calendar date as written
        return got.date().isoformat() == want
    # a labelled time carries the page's offset: compare the date in that zone
    return got.astimezone(want_dt.tzinfo).date() == want_dt.date()


def _aware(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def same_instant(got: datetime | None, want: str | None) -> bool | None:
    """Exact time check, only for labels that give a time."""
    if want is None or len(want) == 10:
        return None
    want_dt = parse_date(want)
    return got is not None and want_dt is not None and abs((got - want_dt).total_seconds()) < 60


def metadata_table(pages: dict[str, Page]) -> tuple[list[str], int]:
    labels = json.loads(LABELS.read_text(encoding="utf-8"))["pages"]
    tallies: dict[str, dict[str, list[bool]]] = {
        name: {"title": [], "authors": [], "date": [], "time": []}
        for name in ("newsbeam", "trafilatura alone", "htmldate alone")
    }
    for label in labels:
        page = pages[label["id"]]
        html = page.html()
        ours = newsbeam_article(page, html)
        alone = trafilatura_alone(html)
        hd = htmldate.find_date(html, extensive_search=True, outputformat="%Y-%m-%dT%H:%M:%S%z",
                                original_date=True)
        want_title = norm_title(label["title"])
        want_authors = norm_names(label.get("authors") or [])
        want_date = label.get("published")
        results = {
            "newsbeam": (ours.title, list(ours.authors), ours.published_at),
            "trafilatura alone": (
                alone.get("title"),
                split_names(alone["author"]) if alone.get("author") else [],
                parse_date(alone.get("date")),
            ),
            "htmldate alone": (None, None, parse_date(hd) if hd else None),
        }
        for name, (title, authors, date) in results.items():
            t = tallies[name]
            if title is not None or name != "htmldate alone":
                t["title"].append(norm_title(title) == want_title)
            if authors is not None:
                t["authors"].append(norm_names(authors) == want_authors)
            t["date"].append(same_day(date, want_date))
            exact = same_instant(date, want_date)
            if exact is not None:
                t["time"].append(exact)
    rows = ["| tool | title | authors | date (day) | date and time |",
            "| --- | --- | --- | --- | --- |"]
    for name, t in tallies.items():
        cells = []
        for key in ("title", "authors", "date", "time"):
            vals = t[key]
            cells.append(f"{sum(vals) / len(vals):.3f} ({sum(vals)}/{len(vals)})" if vals else "—")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows, len(labels)


# ---------------------------------------------------------------- speed
def time_whole_pipeline(files: list[Path]) -> float:
    from pipeline.main import execute
    from pipeline.options import Config, single_local_worker

    beam_args = ("--runner=DirectRunner",)
    with tempfile.TemporaryDirectory() as tmp:
        # the settings `newsbeam run` derives from these options (one local worker: the input
        # files are not spread over workers)
        config = Config(inputs=tuple(str(f) for f in files), output_dir=tmp,
                        run_id="bench", ingested_at=NOW, beam_args=beam_args,
                        steps=resolve_steps(None),
                        spread_inputs=not single_local_worker(beam_args))
        t0 = time.perf_counter()
        execute(config)
        return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aeb", type=Path, default=REPO.parent / "shared" / "data" / "aeb")
    parser.add_argument("--write", type=Path, help="write the report (markdown) to this file")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of the whole-pipeline timing (default 3; medians)")
    args = parser.parse_args()
    if not (args.aeb / "ground-truth.json").exists():
        print(f"benchmark data not found at {args.aeb}", file=sys.stderr)
        return 2
    pages = load_pages(args.aeb)
    htmls = [(p, p.html()) for p in pages]

    # warm both code paths once (imports, lazy tables) so per-page times are comparable
    trafilatura_alone(htmls[0][1])
    newsbeam_article(*htmls[0])

    ref_pairs, ours_pairs, ref_times, ours_times = [], [], [], []
    for page, html in htmls:
        t0 = time.perf_counter()
        doc = trafilatura_alone(html)
        ref_times.append(time.perf_counter() - t0)
        ref_pairs.append((doc.get("text") or "", page.truth))
        t0 = time.perf_counter()
        art = newsbeam_article(page, html)
        ours_times.append(time.perf_counter() - t0)
        ours_pairs.append((art.text, page.truth))
    ref, ours = corpus_score(ref_pairs), corpus_score(ours_pairs)

    # The whole pipeline against trafilatura alone, each repetition side by side (the
    # machine's speed drifts between runs): trafilatura over the pages, the pipeline on one
    # page (its fixed start-up), the pipeline on all of them. Medians are reported.
    rounds = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for _page, html in htmls:
            trafilatura_alone(html)
        alone = time.perf_counter() - t0
        startup = time_whole_pipeline([pages[0].path])
        whole = time_whole_pipeline([p.path for p in pages])
        rounds.append((alone, startup, whole, (whole - startup) / alone))
    if LABELS.exists():
        meta_rows, labelled = metadata_table({p.id: p for p in pages})
    else:
        meta_rows, labelled = [f"(no labels at {LABELS})"], 0

    def row(name: str, s: Score) -> str:
        return f"| {name} | {s.precision:.4f} | {s.recall:.4f} | {s.f1:.4f} |"

    total_ref, total_ours = sum(ref_times), sum(ours_times)
    lines = [
        "## Text extraction on AEB (181 pages)",
        "",
        "| extractor | precision | recall | F1 |",
        "| --- | --- | --- | --- |",
        row("newsbeam (text field)", ours),
        row(f"trafilatura {trafilatura.__version__} alone (defaults)", ref),
        "| published: trafilatura 2.0.0 | 0.938 | 0.978 | 0.958 |",
        "| published: rs-trafilatura (best) | | | 0.970 |",
        "",
        f"## Metadata accuracy ({labelled} hand-labelled pages)",
        "",
        *meta_rows,
        "",
        "## Speed (same run, same pages)",
        "",
        "| what | total s | median ms/page | ratio to trafilatura alone |",
        "| --- | --- | --- | --- |",
        f"| trafilatura alone, text + metadata | {total_ref:.2f} | "
        f"{statistics.median(ref_times) * 1000:.1f} | 1.00 |",
        f"| newsbeam per-article functions | {total_ours:.2f} | "
        f"{statistics.median(ours_times) * 1000:.1f} | {total_ours / total_ref:.2f} |",
        "",
        f"Whole pipeline (DirectRunner, gzipped pages: read, decode, parse, extract, clean,"
        f" fields, dedupe, Parquet) minus its start-up (a run on one page), {args.repeat} "
        "rounds, each beside a trafilatura-alone loop:",
        "",
        "| round | trafilatura alone s | start-up s | whole pipeline s | ratio (whole - start-up)"
        " / alone |",
        "| --- | --- | --- | --- | --- |",
        *(f"| {i + 1} | {a:.2f} | {su:.2f} | {w:.2f} | {r:.2f} |"
          for i, (a, su, w, r) in enumerate(rounds)),
        f"| median | {statistics.median(r[0] for r in rounds):.2f} | "
        f"{statistics.median(r[1] for r in rounds):.2f} | "
        f"{statistics.median(r[2] for r in rounds):.2f} | "
        f"**{statistics.median(r[3] for r in rounds):.2f}** |",
    ]
    report(lines, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
