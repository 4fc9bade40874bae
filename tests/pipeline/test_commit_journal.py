"""A stream window's commit is journaled: killed half-way, the next start finishes it instead
of throwing it away (which would let its inputs be read again and their units land twice)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import pipeline.commit as commit_mod
from pipeline.commit import clean_leftovers, commit_journaled, staging_dir
from schemas import Reject, reject_row
from transforms.streaming import load_file_state
from transforms.write import write_partition


def staged_files(out: Path, stage_id: str) -> list[dict]:
    rows = [reject_row(Reject(f"/in/junk{i}.bin", "parse", "not_a_document", "NotADocument",
                              "", f"junk {i}")) for i in range(3)]
    return list(write_partition(str(out), "rejects", "", rows, staging_dir(str(out), stage_id),
                                tag="w1-p0"))


def test_a_commit_killed_half_way_is_finished_by_the_next_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    files = staged_files(out, "s1-w1")
    inputs = {"/in/junk.bin": (30, 123)}
    manifest = {"run_id": "s1-w1", "counts": {"in": 3, "rejects": 3}}

    def killed(output_dir: str, record: dict) -> None:
        commit_mod.commit(record["files"], output_dir)  # the data moves, then the "kill"
        raise KeyboardInterrupt

    monkeypatch.setattr(commit_mod, "finish_commit", killed)
    with pytest.raises(KeyboardInterrupt):
        commit_journaled(str(out), "s1-w1", files, inputs, manifest)
    monkeypatch.undo()
    assert not (out / "_runs").exists() and load_file_state(str(out)) == {}
    # the next start: the commit is finished, nothing is deleted or doubled
    clean_leftovers(str(out))
    assert load_file_state(str(out)) == {"/in/junk.bin": (30, 123)}
    assert json.loads((out / "_runs" / "s1-w1.json").read_text())["counts"]["rejects"] == 3
    written = list((out / "rejects").glob("*.parquet"))
    assert len(written) == 1 and pq.read_table(written[0]).num_rows == 3
    assert not (out / "_staging" / "s1-w1").exists()


def test_a_commit_run_twice_keeps_the_data(tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = staged_files(out, "s1-w2")
    record = {"run_id": "s1-w2", "files": files, "inputs": {},
              "manifest": {"run_id": "s1-w2"}}
    commit_mod.finish_commit(str(out), record)
    commit_mod.finish_commit(str(out), record)  # a retried bundle: the files are in place
    assert pq.read_table(files[0]["path"]).num_rows == 3
