"""A run becomes visible as a whole.

The pipeline writes every file under OUT/_staging/<run_id>/ (readers never look there: pyarrow,
pandas, DuckDB and polars skip paths that start with '_' or '.', and the data lives in
articles/, duplicates/, rejects/). When the pipeline has succeeded, the driver moves the files
into place — data first, then OUT/_index (what later runs compare against), then the manifest
OUT/_runs/<run_id>.json last: a run without a manifest never finished. File names derive from
their rows, so a rerun after a crash rewrites the same names instead of adding copies.

At the start of a run (under the lock), leftovers of killed runs are removed: their staging
folders and any temporary '.inprogress' file.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from apache_beam.io.filesystems import FileSystems

from transforms.write import TEMP_SUFFIX, join_path

LOG = logging.getLogger("newsbeam")
STAGING = "_staging"
# data first, the index after it: an index entry must never point at a file not in place
COMMIT_ORDER = {"articles": 0, "duplicates": 0, "rejects": 0, "_index": 1, "_state/feeds": 1}


def staging_dir(output_dir: str, run_id: str) -> str:
    return join_path(output_dir, STAGING, run_id)


def _mkdirs(path: str) -> None:
    try:
        FileSystems.mkdirs(path)
    except OSError:
        pass  # it exists already


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0]


def _move(f: dict[str, Any]) -> None:
    staged = f.get("staged")
    if not staged:
        return
    _mkdirs(_parent(f["path"]))
    if FileSystems.exists(f["path"]):
        FileSystems.delete([f["path"]])
    FileSystems.rename([staged], [f["path"]])


def commit(files: list[dict[str, Any]], output_dir: str | None = None) -> None:
    """Move staged files to their final names (data, then index). With ``output_dir`` (a
    local OUT), article files move under their partition's lock, so they never land in a
    partition that `newsbeam compact` is swapping."""
    from pipeline.compact import partition_lock

    for f in sorted(files, key=lambda f: (COMMIT_ORDER.get(f["dataset"], 0), f["path"])):
        if output_dir and "://" not in output_dir and f["dataset"] == "articles" \
                and f.get("partition") and f.get("staged"):
            with partition_lock(output_dir, "articles", f["partition"]):
                _move(f)
        else:
            _move(f)


def remove_staging(output_dir: str, run_id: str) -> None:
    path = staging_dir(output_dir, run_id)
    if FileSystems.exists(path):
        FileSystems.delete([path])
    parent = os.path.join(output_dir, STAGING)
    if "://" not in output_dir and os.path.isdir(parent) and not os.listdir(parent):
        os.rmdir(parent)


def clean_leftovers(output_dir: str) -> list[str]:
    """Remove what killed runs left behind; return what was removed (for the log)."""
    removed: list[str] = []
    if "://" in output_dir:
        staging = join_path(output_dir, STAGING)
        if FileSystems.exists(staging):
            FileSystems.delete([staging])
            removed.append(staging)
        return removed
    staging = os.path.join(output_dir, STAGING)
    if os.path.isdir(staging):
        for name in sorted(os.listdir(staging)):
            FileSystems.delete([os.path.join(staging, name)])
            removed.append(os.path.join(staging, name))
    state = os.path.join(output_dir, "_state")
    for root, _dirs, names in os.walk(output_dir):
        for name in names:
            if (name.startswith(".") and name.endswith(TEMP_SUFFIX)) or (
                root == output_dir and name.startswith("_lock.") and name.endswith(".tmp")
            ) or (root == state and name.endswith(".stop")):  # an aborted stream's stop file
                os.remove(os.path.join(root, name))
                removed.append(os.path.join(root, name))
    for path in removed:
        LOG.warning("removed a leftover of an interrupted run: %s", path)
    return removed
