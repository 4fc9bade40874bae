"""Robustness in figures: every file of ../shared/data/feeds plus mutated copies of samples/
through the CLI, with the accounting checked file by file.

    python benchmarks/robustness.py [--feeds ../shared/data/feeds] [--mutants 600]

Mutations of each sample file (seeded): truncation at a random point, random byte flips, a
repeated tag or chunk, an injected NUL, a duplicated XML prolog. Reported: files tried,
crashes (a non-zero exit, a traceback, or an ``internal_error`` reject: must be 0), files
unaccounted for (an input path found in none of articles, duplicates and rejects: must be 0),
the run's peak memory and time.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from common import run_cli  # noqa: E402

sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0 and data:
        del data[rng.randrange(len(data)):]
    elif kind == 1:
        for _ in range(rng.randint(1, 20)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 2 and data:
        i = rng.randrange(len(data))
        data[i:i] = bytes(data[i:i + rng.randint(1, 400)]) * rng.randint(2, 50)
    elif kind == 3 and data:
        data[rng.randrange(len(data)):0] = b"\x00"
    else:
        data[0:0] = b'<?xml version="1.0" encoding="koi8-r"?>'
    return bytes(data)


def make_mutants(target: Path, count: int, seed: int = 11) -> int:
    rng = random.Random(seed)
    seeds = []
    for p in sorted((REPO / "samples").rglob("*")):
        if p.is_file() and p.stat().st_size:
            data = p.read_bytes()
            seeds.append((p.name, gzip.decompress(data) if data[:2] == b"\x1f\x8b"
                          and p.suffix == ".gz" and "junk" not in p.parts else data))
    for i in range(count):
        name, data = seeds[i % len(seeds)]
        (target / f"m{i:04d}-{name}").write_bytes(mutate(data, rng))
    return count


def run(inputs: list[Path], out: Path) -> tuple[subprocess.CompletedProcess[str], float, int]:
    return run_cli("run", *map(str, inputs), "--output", str(out), "--quiet")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=Path, default=REPO.parent / "shared" / "data" / "feeds")
    parser.add_argument("--mutants", type=int, default=600)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        mutants = tmp / "mutants"
        mutants.mkdir()
        make_mutants(mutants, args.mutants)
        files = sorted(p.resolve() for d in (args.feeds, mutants) for p in d.rglob("*")
                       if p.is_file() and not p.name.startswith("."))
        out = tmp / "out"
        proc, seconds, peak = run([args.feeds, mutants], out)
        crashed = proc.returncode != 0 or "Traceback" in proc.stderr
        seen: set[str] = set()
        internal = 0
        if not crashed:
            for dataset in ("articles", "duplicates", "rejects"):
                if (out / dataset).exists():
                    frame = pd.read_parquet(out / dataset)
                    seen.update(frame.input_path)
                    if dataset == "rejects":
                        internal = int((frame.reason == "internal_error").sum())
            manifest = json.loads(next((out / "_runs").glob("*.json")).read_text())
        unaccounted = [str(f) for f in files if str(f) not in seen]
        lines = [
            "| files tried | of which mutants | crashes | internal errors | files unaccounted "
            "| units in | articles | duplicates | rejects | peak MiB | seconds |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        counts = manifest["counts"] if not crashed else {}
        lines.append(
            f"| {len(files)} | {args.mutants} | {int(crashed)} | {internal} | "
            f"{len(unaccounted)} | {counts.get('in', '—')} | {counts.get('articles', '—')} | "
            f"{counts.get('duplicates', '—')} | {counts.get('rejects', '—')} | {peak} | "
            f"{seconds:.1f} |"
        )
        report = "\n".join(lines) + "\n"
        print(report)
        if crashed:
            print(proc.stderr[-3000:], file=sys.stderr)
        for path in unaccounted[:20]:
            print("unaccounted:", path, file=sys.stderr)
        if args.write:
            args.write.write_text(report, encoding="utf-8")
    return 0 if not crashed and not unaccounted and not internal else 1


if __name__ == "__main__":
    sys.exit(main())
