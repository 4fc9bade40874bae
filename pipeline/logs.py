"""Logging as newsbeam sets it up: in the CLI's process and in the worker processes of the
DirectRunner's ``multi_processing`` mode (``pipeline/worker.py``), so that both print the same
lines at the same levels.

The CLI records its choice in ``$NEWSBEAM_WORKER_LOGGING`` (``LEVEL,quiet,FORMAT,beam``); a
worker process started later inherits it. ``beam`` is 1 when the user gave Beam's own worker
log level (``--default_sdk_harness_log_level``): Beam has set it in the worker before
newsbeam's set-up runs, and it is kept. Beam's per-logger overrides
(``--sdk_harness_log_level_overrides``) are set again after newsbeam's levels
(``pipeline/worker.py``), so they win either way.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
WORKER_ENV = "NEWSBEAM_WORKER_LOGGING"
# Beam's local job service relays each record of a worker process as one line
# ("Worker: severity: WARN timestamp {...} message: ..."); the worker prints the same record
# on the shared stderr itself.
RELAY_LOGGER = "apache_beam.runners.portability.local_job_service"
RELAY_MESSAGE = "Worker: %s"
# Beam relays every line the Flink or Spark job server's JVM prints (stdout and stderr) as an
# INFO record of a logger named for the server: Flink's WARN lines about metric names and a
# stack trace per finished bundle ("call already closed"), about 950 lines for 1,000 pages.
# Below DEBUG only the lines that say something went wrong are kept, as warnings: a JVM that
# cannot start (old Java, a corrupt jar, no memory for its heap, a port in use) or an error it
# logs; --log-level DEBUG shows every line.
JOB_SERVER_LOGGERS = ("FlinkJarJobServer", "SparkJarJobServer")
_JVM_TROUBLE = re.compile(r"\bERROR\b|\b\w+Error\b|Exception in thread|corrupt jarfile|"
                          r"Could not (reserve|create|find|start)|Address already in use")
_JVM_NOISE = re.compile(r"call already closed")


class JobServerLines(logging.Filter):
    """Keeps, raised to WARNING, the job server's lines that report trouble; drops the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        message = record.getMessage()
        if _JVM_TROUBLE.search(message) and not _JVM_NOISE.search(message):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            return True
        return False


class JobStateMessages(logging.Filter):
    """Drops the job-state messages a portable runner's job service sends ("starting
    job-001[job]", "running ...", "terminating ..."), which Beam logs on the root logger at
    INFO; newsbeam says when a job runs and ends itself. Messages of WARNING and above stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not _JOB_STATE.search(record.getMessage())


_JOB_STATE = re.compile(r"\bjob-\d+\[[^\]]*\]$")


class UnparsedFlagMessages(logging.Filter):
    """Drops Beam's "Discarding unparseable args" and "Unparseable argument" warnings. newsbeam
    refuses a flag nobody declares before a run (``check_beam_args``), or, for a Flink or Spark
    job server's own options, once the job server said which it takes
    (``pipeline/beam_options.py``); until then every ``PipelineOptions`` Beam and newsbeam
    build would warn about such a flag again."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Discarding unparseable", "Unparseable argument"))


BEAM_OPTIONS_LOGGER = "apache_beam.options.pipeline_options"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the
    ``data`` a record carries (the run summary)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data = getattr(record, "data", None)
        if data is not None:
            entry["data"] = data
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


# A progress line drawn on a terminal ends without a newline until the run is done
# (pipeline/progress.py); whatever is written to stderr before that starts a line of its own.
_open_line: dict[str, bool] = {"open": False}


def drop_closed(stream: Any) -> None:
    """After a BrokenPipeError on ``stream`` (its reader left: ``newsbeam ... | head``), point
    its file descriptor at the null device, so that what newsbeam still prints, and the
    interpreter's last flush, go nowhere instead of failing: the run goes on and is judged on
    its own."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a file (a test's capture): nothing left to fail at exit
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)


def line_open(is_open: bool) -> None:
    """The progress line on stderr is left without a newline (True) or ended (False)."""
    _open_line["open"] = is_open


def end_open_line() -> None:
    """End a progress line left open on stderr, so that what follows starts a line."""
    if _open_line["open"]:
        _open_line["open"] = False
        sys.stderr.write("\n")


class _LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr; a record after an open progress line starts a line of its own."""

    def emit(self, record: logging.LogRecord) -> None:
        end_open_line()
        super().emit(record)


def _not_relayed(record: logging.LogRecord) -> bool:
    return record.msg != RELAY_MESSAGE


def setup(level: str, quiet: bool, fmt: str = "text", *, worker: bool = False,
          levels: bool = True) -> None:
    """Root handler on stderr and the levels of the chatty libraries (not with
    ``levels=False``: only the handler).

    In the CLI's process every root handler is replaced. In a worker process only the plain
    stderr handlers are (Beam's own handler, which sends records to the runner, stays)."""
    root_level = logging.WARNING if quiet else getattr(logging, level)
    handler = _LineHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(FORMAT))
    root = logging.getLogger()
    if worker:
        for old in [h for h in root.handlers
                    if type(h) in (logging.StreamHandler, _LineHandler)]:
            root.removeHandler(old)
        root.addHandler(handler)
    else:
        logging.basicConfig(level=root_level, handlers=[handler], force=True)
        os.environ[WORKER_ENV] = f"{level},{int(quiet)},{fmt},0"
    if not levels:
        return
    root.setLevel(root_level)
    # Beam and its dependencies are chatty at INFO; keep their warnings. (In a worker process
    # Beam's harness, sdk_worker_main, logs as "__main__".)
    chatty = ("apache_beam", "trafilatura", "htmldate", "urllib3", "charset_normalizer")
    for noisy in (*chatty, "__main__") if worker else chatty:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, getattr(logging, level)))
    for name in JOB_SERVER_LOGGERS:
        server = logging.getLogger(name)
        server.setLevel(logging.DEBUG if level == "DEBUG" else logging.INFO)
        for kept in [f for f in server.filters if isinstance(f, JobServerLines)]:
            server.removeFilter(kept)
        if level != "DEBUG":
            server.addFilter(JobServerLines())
    options_logger = logging.getLogger(BEAM_OPTIONS_LOGGER)
    if not any(isinstance(f, UnparsedFlagMessages) for f in options_logger.filters):
        options_logger.addFilter(UnparsedFlagMessages())
    for state in [f for f in root.filters if isinstance(f, JobStateMessages)]:
        root.removeFilter(state)
    if level != "DEBUG":
        root.addFilter(JobStateMessages())  # records logged on the root logger itself only
        # trafilatura warns per page about its internal choices ("discarding data: None");
        # what matters to a user (an empty page) is a reject row already.
        logging.getLogger("trafilatura").setLevel(logging.ERROR)
        # "Really starting service" lines of the Flink/Spark job server and Prism
        logging.getLogger("apache_beam.utils.subprocess_server").setLevel(logging.ERROR)
        # A failing element makes Beam log its traceback before the run fails; the run's own
        # one-line error says what happened (--log-level DEBUG shows the traceback).
        logging.getLogger("apache_beam.runners.common").setLevel(logging.CRITICAL)
        logging.getLogger("apache_beam.runners.worker").setLevel(logging.CRITICAL)


@contextmanager
def workers_print_their_own(beam_levels: bool) -> Iterator[None]:
    """While a run's worker processes set themselves up from ``$NEWSBEAM_WORKER_LOGGING``
    (``beam_levels``: the user gave Beam's worker log levels) and print their own records:
    Beam's relayed copy of each is dropped here."""
    relay = logging.getLogger(RELAY_LOGGER)
    before = os.environ.get(WORKER_ENV)
    parts = (before or "").split(",")
    chosen = parts[:3] if len(parts) == 4 else ["WARNING", "0", "text"]
    os.environ[WORKER_ENV] = ",".join([*chosen, str(int(beam_levels))])
    relay.addFilter(_not_relayed)
    try:
        yield
    finally:
        relay.removeFilter(_not_relayed)
        if before is None:
            os.environ.pop(WORKER_ENV, None)
        else:
            os.environ[WORKER_ENV] = before


def setup_worker() -> None:
    """In a worker process: the format the CLI chose and its levels, unless the user gave
    Beam's default level (``$NEWSBEAM_WORKER_LOGGING``; WARNING and text without it)."""
    level, quiet, fmt, beam_levels = "WARNING", False, "text", False
    parts = os.environ.get(WORKER_ENV, "").split(",")
    if len(parts) == 4 and parts[0] in ("DEBUG", "INFO", "WARNING", "ERROR"):
        level, quiet, fmt, beam_levels = parts[0], parts[1] == "1", parts[2], parts[3] == "1"
    setup(level, quiet, fmt if fmt in ("text", "json") else "text", worker=True,
          levels=not beam_levels)


def counted(n: int, noun: str) -> str:
    """'1 file', '2 files': a count and its noun, for messages."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
