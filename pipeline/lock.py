"""One run at a time per OUT: a lock file, OUT/_lock, created atomically (O_EXCL).

A second run fails at once with a message naming the holder. A lock whose process is gone
(same host, pid not running) is stale. When the lock proves its holder is gone (it was taken
on this machine since its last boot, in this pid namespace, and that pid is not running or is
another process now, told by its start time), the next run removes it with a warning, so a
scheduled job recovers by itself from a killed run (the OOM killer, kill -9). Otherwise (a
lock from another host or container, or one written before these fields) newsbeam says the
lock looks stale, and ``--break-lock`` removes it. Runs take and break locks one at a time
(an flock on the OUT folder, released by the kernel if the process dies).
Local output folders only: object stores (gs://, s3://) have no atomic create-if-absent that
Beam's FileSystems exposes, so a run there takes no lock (the docs say so).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone

LOCK_NAME = "_lock"
LOG = logging.getLogger("newsbeam")


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


def identity(pid: int) -> dict[str, object]:
    """What tells process ``pid`` from a later one with its number (Linux /proc; empty
    elsewhere): the boot, the pid namespace and the process's start time since boot."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot = fh.read().strip()
        namespace = os.readlink(f"/proc/{pid}/ns/pid")
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            # the fields after the command name, which may hold spaces and parentheses
            start = int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return {}
    return {"boot_id": boot, "pid_ns": namespace, "start_ticks": start}


def _proven_stale(holder: dict[str, object], me: dict[str, object]) -> bool:
    """The holder's own fields show it ran here (host, boot, pid namespace) and its process
    is gone: not running, or its pid now belongs to a process started at another time."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or not me.get("boot_id"):
        return False
    if any(holder.get(k) != me.get(k) for k in ("host", "boot_id", "pid_ns")):
        return False
    if not _alive(pid):
        return True
    return identity(pid).get("start_ticks") not in (None, holder.get("start_ticks"))


def describe(holder: dict[str, object]) -> str:
    return (f"run {holder.get('run_id')} (pid {holder.get('pid')} on {holder.get('host')}, "
            f"since {holder.get('started')})")


def acquire(output_dir: str, run_id: str, break_lock: bool = False) -> Lock:
    if "://" in output_dir:
        return Lock(None)
    path = os.path.join(output_dir, LOCK_NAME)
    me = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
          "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
          **identity(os.getpid())}
    guard = os.open(output_dir, os.O_RDONLY)  # OUT itself: no file of its own to leave
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)  # held for a moment: while this run checks the lock
        return _acquire(output_dir, path, me, break_lock)
    finally:
        os.close(guard)  # releases the flock


def _acquire(output_dir: str, path: str, me: dict[str, object], break_lock: bool) -> Lock:
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
                if _proven_stale(holder, me):
                    LOG.warning("removed the stale lock of %s, which is no longer running",
                                describe(holder))
                    os.remove(path)
                    continue
                pid = holder.get("pid")
                stale = holder.get("host") == me["host"] and isinstance(pid, int) \
                    and not _alive(pid)
                if stale:
                    raise LockBusy(f"{output_dir} has a stale lock from {describe(holder)}, "
                                   "which is no longer running; rerun with --break-lock to "
                                   "remove it") from None
                if holder.get("host") != me["host"]:  # its pid means nothing here
                    raise LockBusy(f"{output_dir} is in use by {describe(holder)}, taken on "
                                   "another host, so this one cannot tell whether it still "
                                   "runs: wait for it to finish, or, if it is gone, rerun "
                                   "with --break-lock") from None
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
