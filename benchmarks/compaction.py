"""What many small files cost a scheduled job, and what `newsbeam compact` gives back.

    python benchmarks/compaction.py [--files 200 1000 2400] [--rounds 3] [--write FILE]

An hourly job adds one file to OUT/_index, duplicates and rejects with every run, and every
run opens all the _index files at its start. To measure that without hundreds of real runs,
one run stores 3,000 articles made of real AEB sentences (benchmarks/dedupe_cost.py's corpus,
one in five a near copy), and its _index and duplicates files are then cut into N files each,
as N runs would have left them (the same rows, the same Parquet metadata). For each N it times
a run of samples/ into a copy of that OUT (the median of --rounds runs), `newsbeam compact`,
the same run after it, and pandas reading OUT/duplicates before and after.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from common import report, run_cli  # noqa: E402
from dedupe_cost import make_corpus, write  # noqa: E402

AEB = REPO.parent / "shared" / "data" / "aeb"


def split(folder: Path, pieces: int) -> None:
    """Cut the dataset's files into ``pieces`` files of consecutive rows, metadata kept."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(folder.glob("*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files])
    metadata = pq.read_schema(files[0]).metadata
    for f in files:
        f.unlink()
    size = -(-table.num_rows // pieces)
    for k in range(pieces):
        part = table.slice(k * size, size)
        if part.num_rows:
            pq.write_table(part.replace_schema_metadata(metadata),
                           folder / f"part-split{k:05d}.parquet")


def timed_run(out: Path, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        trial = out.with_name(out.name + "-trial")
        shutil.rmtree(trial, ignore_errors=True)
        shutil.copytree(out, trial)
        proc, seconds, _peak = run_cli("run", str(REPO / "samples"), "--output", str(trial),
                                       "-q")
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-2000:])
        times.append(seconds)
        shutil.rmtree(trial)
    return statistics.median(times)


def read_seconds(folder: Path, rounds: int) -> float:
    import pandas as pd

    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        pd.read_parquet(folder)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[200, 1000, 2400])
    parser.add_argument("--articles", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    if not AEB.is_dir():
        raise SystemExit(f"needs the AEB pages at {AEB}")
    lines = ["| files in _index / duplicates | run of samples/ before | compact | "
             "the same run after | pandas reads duplicates before / after |",
             "| --- | --- | --- | --- | --- |"]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        corpus = write(make_corpus(AEB, args.articles, 7, "hist"), Path(tmp) / "hist.jsonl")
        proc, _s, _p = run_cli("run", str(corpus), "--output", str(base), "-q")
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-2000:])
        one = timed_run(base, args.rounds)
        lines.append(f"| 1 (one run stored them all) | {one:.2f} s | - | - | "
                     f"{read_seconds(base / 'duplicates', args.rounds):.3f} s |")
        for n in args.files:
            out = Path(tmp) / f"out{n}"
            shutil.copytree(base, out)
            split(out / "_index", n)
            split(out / "duplicates", n)  # fewer rows than n: one file a row
            counts = [len(list((out / d).glob("*.parquet"))) for d in ("_index", "duplicates")]
            before = timed_run(out, args.rounds)
            read_before = read_seconds(out / "duplicates", args.rounds)
            proc, compact_s, _peak = run_cli("compact", str(out))
            if proc.returncode != 0:
                raise SystemExit(proc.stderr[-2000:])
            after = timed_run(out, args.rounds)
            read_after = read_seconds(out / "duplicates", args.rounds)
            lines.append(f"| {counts[0]} / {counts[1]} | {before:.2f} s | {compact_s:.2f} s | "
                         f"{after:.2f} s | {read_before:.3f} / {read_after:.3f} s |")
            print(lines[-1], flush=True)
            shutil.rmtree(out)
    report(lines, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
