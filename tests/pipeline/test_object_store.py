"""OUT on an object store: every read and write goes through Beam's FileSystems, so the same
run writes to gs:// or s3://. An in-memory object store (tests/objectstore.py: flat keys, no
directories, rename as copy and delete) stands in for a bucket the tests cannot reach."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import tests.objectstore as store
from pipeline.main import main
from tests.conftest import SAMPLES

INGESTED_AT = "2026-01-15T12:00:00Z"


def keys(prefix: str) -> list[str]:
    return sorted(k for k in store._FILES if k.startswith(prefix))


def rows(prefix: str, dataset: str, column: str) -> list[str]:
    found = []
    for key in keys(f"{prefix}/{dataset}/"):
        table = pq.read_table(io.BytesIO(store._FILES[key][0]), columns=[column])
        found.extend(table.column(column).to_pylist())
    return sorted(found)


def test_a_run_into_an_object_store_equals_a_local_run(tmp_path: Path) -> None:
    out = f"nbmem://bucket-{uuid.uuid4().hex[:8]}/news"
    args = ["run", str(SAMPLES), "--ingested-at", INGESTED_AT, "-q"]
    assert main([*args, "--output", out]) == 0
    assert main([*args, "--output", str(tmp_path / "local")]) == 0
    local = tmp_path / "local"
    for dataset, column in (("articles", "article_id"), ("duplicates", "article_id"),
                            ("rejects", "reason")):
        want = sorted(pq.read_table(local / dataset, columns=[column]).column(column)
                      .to_pylist())
        assert rows(out, dataset, column) == want
    # committed whole: no staging key, no temporary name, one manifest that balances
    assert not keys(f"{out}/_staging") and not [k for k in keys(out) if "/." in k]
    manifests = keys(f"{out}/_runs/")
    assert len(manifests) == 1
    manifest = json.loads(store._FILES[manifests[0]][0])
    assert manifest["accounting"]["balanced"]
    assert manifest["counts"]["articles"] == len(rows(out, "articles", "article_id"))


def test_a_rerun_into_an_object_store_adds_nothing() -> None:
    out = f"nbmem://bucket-{uuid.uuid4().hex[:8]}/news"
    args = ["run", str(SAMPLES), "--output", out, "-q"]
    assert main(args) == 0
    first = rows(out, "articles", "article_id")
    assert not keys(f"{out}/_staging")  # the run's staging prefix is gone (a prefix is no
    # object: deleted as a local folder is, it stayed, journal and all, found by review)
    store._FILES[f"{out}/_staging/20260101T000000Z-dead/articles/part-x.parquet"] = (b"x", 0.0)
    assert main(args) == 0  # the index is read back from the store: everything is stored
    assert not keys(f"{out}/_staging")  # what a killed run staged is removed
    assert rows(out, "articles", "article_id") == first
    runs = [json.loads(store._FILES[k][0]) for k in keys(f"{out}/_runs/")]
    second = max(runs, key=lambda m: m["started_at"])
    assert second["counts"]["articles"] == 0
    assert second["counts"]["duplicates"] == second["counts"]["in"] - second["counts"]["rejects"]


def test_a_stream_refuses_an_out_under_its_watched_prefix(
        capsys: pytest.CaptureFixture[str]) -> None:
    """As for local folders: OUT under the watched prefix would be read back (the check was
    made for local paths only, found by review)."""
    inbox = f"nbmem://bucket-{uuid.uuid4().hex[:8]}/inbox"
    assert main(["stream", inbox, "--output", f"{inbox}/out", "--runner=DirectRunner",
                 "--stop-after", "1s"]) == 2
    assert "would read its own output" in capsys.readouterr().err
    assert not keys(inbox)
