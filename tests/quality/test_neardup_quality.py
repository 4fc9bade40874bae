"""Quality gate for near-duplicate detection on the labelled corpus of benchmarks/neardup.py
(real AEB bodies, five kinds of republished variants, hard negatives that share boilerplate or
one paragraph). Floors from the measured runs in docs/benchmarks.md (F1 1.0 with five kinds,
0.9944 on the four kinds before mostly_common; precision 1.0; every kind >= 0.97; no hard
negative merged)."""

from __future__ import annotations

import pytest

from benchmarks.neardup import KINDS, build_corpus, run_newsbeam, score
from tests.conftest import shared_data

pytestmark = pytest.mark.shared


def test_near_duplicates_are_caught_and_hard_negatives_are_not() -> None:
    docs = build_corpus(shared_data() / "aeb")
    result = score(docs, *run_newsbeam(docs))
    assert result["precision"] >= 0.99, result
    assert result["f1"] >= 0.99, result
    for kind in KINDS:
        assert result["per_kind"][kind] >= 0.95, (kind, result)
    assert result["negatives_merged"] == 0, result
