"""Coverage-guided fuzzing of the parse entry points with atheris (libFuzzer for Python).

    python benchmarks/fuzz/fuzz_parse.py -max_total_time=300 -rss_limit_mb=4096 CORPUS_DIR

Seeds: copy samples/ (and, for a longer campaign, ../shared/data/feeds) into CORPUS_DIR first;
benchmarks/fuzz/run.sh does that. A crash is any exception other than the typed RejectErrors
the stage turns into reject rows; libFuzzer saves the input as crash-<sha1>, and each one
found goes into tests/fixtures/crashers/ with a regression test.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports():
    from schemas.records import RawDocument
    from transforms.errors import RejectError
    from transforms.extract import extract_article
    from transforms.parse import parse_document
    from transforms.read import decompress

NOW = datetime(2026, 1, 15, tzinfo=timezone.utc)


def one_input(data: bytes) -> None:
    try:
        data = decompress("fuzz", data, 8 * 1024 * 1024)
        units = list(parse_document(RawDocument("fuzz", data)))
    except RejectError:
        return
    for unit in units[:20]:
        try:
            next(extract_article(unit, NOW))
        except RejectError:
            pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
