"""Exit code 3: a run whose input units and output rows differ. newsbeam's stages account
for every unit by construction, so no real input makes a run unbalanced; these tests drive
the manifest and the command's verdict with the counts such a run would have."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipeline.main import EXIT_ACCOUNTING, EXIT_OK, _judge, make_parser, print_summary
from pipeline.manifest import Tally, build_manifest
from pipeline.options import config_from_args
from tests.conftest import SAMPLES


def _manifest(tmp_path: Path, units_in: int) -> tuple[object, dict]:
    args, extra = make_parser().parse_known_args(
        ["run", str(SAMPLES), "--output", str(tmp_path / "out"),
         "--ingested-at", "2026-01-15T12:00:00Z"])
    config = config_from_args(args, extra)
    tally = Tally()
    tally.rows.update(articles=3, duplicates=1, rejects=1)
    tally.reject_reasons["empty_file"] = 1
    return config, build_manifest(config, datetime.now(timezone.utc), units_in, {}, [], tally,
                                  "DirectRunner")


def test_a_run_whose_rows_miss_a_unit_is_exit_3_and_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, manifest = _manifest(tmp_path, units_in=6)
    assert manifest["status"] == "accounting_mismatch"
    assert manifest["accounting"] == {**manifest["accounting"], "in": 6, "out": 5,
                                      "balanced": False}
    assert _judge(config, [manifest]) == EXIT_ACCOUNTING
    assert capsys.readouterr().err.strip().splitlines() == [
        "newsbeam: error: accounting does not balance: in=6 but "
        "articles+duplicates+rejects=5"]
    summary = io.StringIO()
    print_summary(manifest, summary)
    assert "accounting in=6 out=5 DOES NOT BALANCE" in summary.getvalue()


def test_the_same_counts_balanced_are_exit_0(tmp_path: Path) -> None:
    config, manifest = _manifest(tmp_path, units_in=5)
    assert manifest["status"] == "ok" and manifest["accounting"]["balanced"] is True
    assert _judge(config, [manifest]) == EXIT_OK
