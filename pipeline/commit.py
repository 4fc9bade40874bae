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
COMMIT_ORDER = {"articles": 0, "duplicates": 0, "rejects": 0, "_index": 1, "_state/feeds": 1,
                "_state/links": 1}


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
    """Move one staged file into place. Idempotent: a commit that is run again (a retried
    bundle, a finished journal) skips what is in place already, and never deletes a final
    file before its replacement is there (the rename replaces it in one step)."""
    staged = f.get("staged")
    if not staged:
        return
    if not FileSystems.exists(staged):
        if FileSystems.exists(f["path"]):
            return  # moved by an earlier attempt
        raise FileNotFoundError(f"staged file missing and not in place: {staged}")
    _mkdirs(_parent(f["path"]))
    if "://" in f["path"] and FileSystems.exists(f["path"]):
        FileSystems.delete([f["path"]])  # object stores: rename is copy + delete
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


def remove_staging(output_dir: str, run_id: str, remove_parent: bool = True) -> None:
    """Remove a run's staging folder, and OUT/_staging once empty (``remove_parent``; a
    stream's windows keep it: another window may be creating its folder in it)."""
    path = staging_dir(output_dir, run_id)
    if "://" in output_dir:
        delete_prefix(path)
    elif FileSystems.exists(path):
        FileSystems.delete([path])
    if remove_parent:
        remove_empty_staging(output_dir)


def delete_prefix(prefix: str) -> None:
    """Every object under ``prefix`` of an object store. A prefix is no object there:
    ``exists`` says no (gs://, s3://), and a delete without the trailing '/' removes only an
    object of that exact name, so a staging folder deleted as a local one would be left
    whole, and its journal finished again by every later run."""
    FileSystems.delete([prefix.rstrip("/") + "/"])


def remove_empty_staging(output_dir: str) -> None:
    """OUT/_staging, once nothing is staged in it."""
    parent = os.path.join(output_dir, STAGING)
    if "://" not in output_dir and os.path.isdir(parent) and not os.listdir(parent):
        try:
            os.rmdir(parent)
        except OSError:
            pass  # not empty any more: someone else is staging


JOURNAL_PREFIX = "_commit-"


def commit_journaled(output_dir: str, run_id: str, files: list[dict[str, Any]],
                     inputs: dict[str, tuple[int, int]], manifest: dict[str, Any],
                     remove_parent: bool = False) -> None:
    """A run's or a stream window's commit, crash-safe: what it will do (files, inputs read,
    manifest) is written whole into its staging folder first, then done. A start after a
    crash finishes a journaled commit (``clean_leftovers``) instead of throwing it away:
    thrown away half-done (the index moved, the manifest not written), the inputs would be
    read again and their units land twice, as articles and as duplicates of themselves."""
    import json

    from apache_beam.io.filesystem import CompressionTypes

    path = join_path(staging_dir(output_dir, run_id), f"{JOURNAL_PREFIX}{run_id}.json")
    temp = join_path(staging_dir(output_dir, run_id), f".{run_id}{TEMP_SUFFIX}")
    record = {"run_id": run_id, "files": files,
              "inputs": {p: list(sig) for p, sig in inputs.items()}, "manifest": manifest,
              "remove_parent": remove_parent}
    with FileSystems.create(temp, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        fh.write(json.dumps(record, default=str).encode("utf-8"))
    FileSystems.rename([temp], [path])
    finish_commit(output_dir, record)


def finish_commit(output_dir: str, record: dict[str, Any]) -> None:
    """Do (or finish) a journaled commit; every step is idempotent."""
    from pipeline.manifest import write_manifest_at
    from transforms.streaming import write_file_state

    commit(record["files"], output_dir)
    write_file_state(output_dir, record["run_id"],
                     {p: (int(s), int(m)) for p, (s, m) in record["inputs"].items()})
    write_manifest_at(output_dir, record["run_id"], record["manifest"])
    remove_staging(output_dir, record["run_id"],
                   remove_parent=bool(record.get("remove_parent")))


def _finish_journals(output_dir: str) -> None:
    """Finish every journaled commit a killed run or stream left in OUT/_staging."""
    import json

    from apache_beam.io.filesystem import CompressionTypes

    pattern = join_path(output_dir, STAGING, "*", f"{JOURNAL_PREFIX}*.json")
    try:
        journals = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except Exception:  # nothing staged
        return
    for path in journals:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            record = json.loads(fh.read().decode("utf-8"))
        LOG.warning("finishing the commit of an interrupted run: %s", record["run_id"])
        finish_commit(output_dir, record)


def clean_leftovers(output_dir: str) -> list[str]:
    """Remove what killed runs left behind (a commit that was under way is finished instead);
    return what was removed (for the log)."""
    removed: list[str] = []
    _finish_journals(output_dir)
    if "://" in output_dir:
        staging = join_path(output_dir, STAGING)
        if FileSystems.match([staging + "/**"])[0].metadata_list:
            delete_prefix(staging)
            removed.append(staging)
        for path in removed:
            LOG.warning("removed a leftover of an interrupted run: %s", path)
        return removed
    from pipeline.compact import compaction_alive

    staging = os.path.join(output_dir, STAGING)
    if os.path.isdir(staging):
        for name in sorted(os.listdir(staging)):
            if compaction_alive(name):  # `newsbeam compact` at work on article partitions
                continue
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
