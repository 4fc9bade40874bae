"""One run at a time per OUT: a lock file, OUT/_lock, created atomically (O_EXCL).

A second run fails at once with a message naming the holder. A lock whose process is gone
(same host, pid not running) is stale: newsbeam says so, and ``--break-lock`` removes it.
Local output folders only: object stores (gs://, s3://) have no atomic create-if-absent that
Beam's FileSystems exposes, so a run there takes no lock (the docs say so).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone

LOCK_NAME = "_lock"


class LockBusy(Exception):
    """Another run holds OUT, or a killed one left its lock."""


@dataclass
class Lock:
    path: str | None

    def release(self) -> None:
        if self.path and os.path.exists(self.path):
            os.remove(self.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe(holder: dict[str, object]) -> str:
    return (f"run {holder.get('run_id')} (pid {holder.get('pid')} on {holder.get('host')}, "
            f"since {holder.get('started')})")


def acquire(output_dir: str, run_id: str, break_lock: bool = False) -> Lock:
    if "://" in output_dir:
        return Lock(None)
    path = os.path.join(output_dir, LOCK_NAME)
    me = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
          "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    # The lock is written complete to a private name and then hard-linked into place: link()
    # fails if the lock exists, so creating it is atomic and a lock is never seen half-written.
    temp = f"{path}.{me['pid']}.tmp"
    with open(temp, "w", encoding="utf-8") as fh:
        json.dump(me, fh)
    try:
        for _attempt in range(2):
            try:
                os.link(temp, path)
                return Lock(path)
            except FileExistsError:
                holder = _read(path)
                if break_lock:
                    os.remove(path)
                    continue
                if holder is None:
                    raise LockBusy(f"{output_dir} has an unreadable lock file {path}; if no run "
                                   "is writing there, rerun with --break-lock") from None
                pid = holder.get("pid")
                stale = holder.get("host") == me["host"] and isinstance(pid, int) \
                    and not _alive(pid)
                if stale:
                    raise LockBusy(f"{output_dir} has a stale lock from {describe(holder)}, "
                                   "which is no longer running; rerun with --break-lock to "
                                   "remove it") from None
                raise LockBusy(f"{output_dir} is in use by {describe(holder)}; wait for it to "
                               "finish (or use another --output)") from None
        raise LockBusy(f"could not take the lock on {output_dir}")
    finally:
        os.remove(temp)


def _read(path: str) -> dict[str, object] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            holder = json.load(fh)
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None
