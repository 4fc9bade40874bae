"""The command line: parse -> build -> run -> manifest and summary. Logging is set up here once.

Exit codes: 0 ok; 1 the pipeline failed; 2 usage error (nothing was run);
3 the run finished but its accounting does not balance (in != articles + duplicates + rejects);
4 OUT is locked by another run (or by a killed one: --break-lock);
5 the run finished but its share of rejects is above --max-reject-ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime, timezone
from typing import Any, NoReturn

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import graph, logs
from pipeline.beam_options import JOB_SERVER_FLAG, JOB_SERVER_RUNNERS, beam_probe
from pipeline.cli import EXIT_TERMINATED
from pipeline.commit import clean_leftovers, commit_journaled
from pipeline.lock import LockBusy, acquire
from pipeline.manifest import build_manifest, read_report, tally_files, warn_failed_feeds
from pipeline.options import (
    Config,
    UsageError,
    add_run_arguments,
    config_from_args,
    load_config_file,
    read_feed_list,
)
from pipeline.reindex import check_signature_settings, suggest_compaction, upgrade_index
from pipeline.runners import runner_name
from transforms.common import METRICS_NAMESPACE
from transforms.errors import error_line
from transforms.write import inside, join_path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ACCOUNTING, EXIT_LOCKED = 0, 1, 2, 3, 4
EXIT_REJECTS = 5  # finished, but the share of rejects is above --max-reject-ratio
STAGE_TIMERS = ("setup", "read", "fetch_feed", "parse", "fetch_page", "extract", "clean",
                "fields", "write")
LOG = logging.getLogger("newsbeam")

DESCRIPTION = """newsbeam: ingest raw news (RSS, Atom, JSON Feed, HTML pages, plain-text
articles, JSONL; files or feed URLs) into a hive-partitioned Parquet dataset, with exact and
near duplicates removed within a run and across runs, and every input unit accounted for
(articles, duplicates or rejects)."""

RUN_EPILOG = """Apache Beam pipeline options are passed through, e.g. --runner DirectRunner
(the default), --direct_num_workers 2, --direct_running_mode multi_processing,
--temp_location, or any other Beam option (see the Beam docs for your runner).

output layout:
  OUT/articles/date=YYYY-MM-DD/part-*.parquet   one row per article
  OUT/duplicates/part-*.parquet                 one row per dropped copy
  OUT/rejects/part-*.parquet                    one row per unit that is no article, with reason
  OUT/_runs/<run_id>.json                       the run manifest
  OUT/_index, OUT/_state, OUT/_locks            newsbeam's own state (what later runs compare
                                                against, feed validators, files a stream read)

exit codes: 0 ok, 1 pipeline failed, 2 usage error, 3 accounting does not balance,
4 OUT is locked by another run, 5 rejects above --max-reject-ratio, 130 interrupted,
143 terminated (SIGTERM).
read it: from schemas.read import read_articles; read_articles("OUT") (any schema version;
pandas.read_parquet("OUT/articles") reads an OUT of one version)"""


STREAM_EPILOG = """\
The stream is an unbounded Beam pipeline on the Prism runner (built once from Beam's Go module
by scripts/get_prism.sh; cached): the same stages and dedupe as `run`, windows of arrival time,
each window committed whole with its own manifest in OUT/_runs. Files already read are
remembered in OUT/_state/files, across restarts. --stop-after, SIGINT or SIGTERM stop cleanly
(open windows are flushed); a second SIGINT aborts. --runner DirectRunner runs each window as a
bounded batch run instead (micro-batches; no Prism needed). See docs/streaming.md.

exit codes: 0 ok (stopped by --stop-after or a signal), 1 the pipeline failed,
2 usage error, 3 a window's accounting did not balance, 4 OUT is locked by another run."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_USAGE)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="newsbeam", description=DESCRIPTION,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log verbosity (default INFO)")
    parser.add_argument("--log-format", default="text", choices=["text", "json"],
                        help="json: one JSON object per log line (for schedulers); the run "
                             "summary is logged as one JSON record too")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run = sub.add_parser(
        "run", help="batch: ingest INPUT files and feed URLs into OUT",
        description="Batch ingestion: read INPUT files, write the dataset under OUT.",
        epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(run)
    stream = sub.add_parser(
        "stream", help="streaming: watch folders and poll feeds, ingest what arrives",
        description="Streaming ingestion: watch SOURCE folders and poll feed URLs; every "
                    "--window, what arrived goes through the same stages as `run` into OUT.",
        epilog=STREAM_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(stream, stream=True)
    timing = stream.add_argument_group("streaming")
    timing.add_argument("--window", type=_duration, default=60.0, metavar="DURATION",
                        help="how often what arrived is ingested and written (default 60s); "
                             "durations are written like 5s, 10m, 2h")
    timing.add_argument("--poll", type=_duration, default=30.0, metavar="DURATION",
                        help="how often folders are listed and feeds fetched (default 30s)")
    timing.add_argument("--stop-after", type=_duration, default=None, metavar="DURATION",
                        help="stop cleanly after this long (default: run until SIGINT or "
                             "SIGTERM)")
    timing.add_argument("--drain-timeout", type=_duration, default=600.0, metavar="DURATION",
                        help="once a stop is asked, how long the job may take to commit its "
                             "open windows and finish; past it the job is cancelled and the "
                             "command fails (default 10m; the next start reads again what "
                             "no committed window held)")
    timing.add_argument("--settle", type=_duration, default=2.0, metavar="DURATION",
                        help="a file is read once its size and time have not changed for "
                             "this long (default 2s)")
    timing.add_argument("--dedupe-horizon", type=_duration, default=86400.0,
                        metavar="DURATION",
                        help="how long the stream keeps each article's content hash in its "
                             "state to catch exact repeats at once; older ones are caught by "
                             "OUT/_index (default 24h)")
    for sub_parser in (run, stream):
        sub_parser.set_defaults(_run_parser=sub_parser)
    report = sub.add_parser(
        "report", help="write a self-contained HTML report of OUT (charts, no network)",
        description="Write one self-contained HTML file about OUT: articles per day per "
                    "source, languages, countries, duplicates and rejects over the runs, field "
                    "coverage per source and the run history. No CDN, no network.")
    from pipeline.report import add_report_arguments

    add_report_arguments(report)
    compact = sub.add_parser(
        "compact", help="merge the small files each run or stream window leaves in OUT",
        description="Merge the files of each article partition into one, atomically (readers "
                    "see the old files or the new one, never both). Safe while a stream or a "
                    "run writes other partitions: a partition being compacted is locked. "
                    "Then, when no run or stream holds OUT, the same for OUT/_index, "
                    "duplicates, rejects and _state, which every run adds a file to (and "
                    "reads all of _index and _state at its start).")
    compact.add_argument("output", metavar="OUT", help="a newsbeam output directory")
    compact.add_argument("--partition", action="append", default=[], metavar="date=YYYY-MM-DD",
                         help="compact only this article partition (repeatable; nothing "
                              "else); default all that hold at least --min-files files, "
                              "then the other datasets")
    compact.add_argument("--min-files", type=int, default=2, metavar="N",
                         help="leave partitions with fewer files alone (default 2)")
    for sub_parser in (run, stream, report, compact):  # after the command too
        logging_flags = sub_parser.add_argument_group("logging (also before the command)")
        logging_flags.add_argument("--log-level", default=argparse.SUPPRESS,
                                   choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                                   help="log verbosity (default INFO)")
        logging_flags.add_argument("--log-format", default=argparse.SUPPRESS,
                                   choices=["text", "json"],
                                   help="json: one JSON object per log line")
    return parser


def _duration(text: str) -> float:
    from pipeline.stream import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def check_beam_args(beam_args: list[str]) -> None:
    probe = beam_probe()
    known = {name for action in probe._actions for name in action.option_strings}
    # Flink's and Spark's job servers take options of their own (Java's FlinkPipelineOptions:
    # --checkpointing_interval, --flink_conf_dir...); they are checked against what the job
    # server declares once it runs (pipeline/beam_options.py)
    deferred = runner_name(beam_args) in JOB_SERVER_RUNNERS
    for arg in beam_args:
        if arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            if flag not in known and not (deferred and JOB_SERVER_FLAG.fullmatch(flag)):
                raise UsageError(f"unknown option {flag} (not a newsbeam or Beam option)")
        elif arg.startswith("-") and len(arg) > 1:
            raise UsageError(f"unknown option {arg} (options go after the command: newsbeam "
                             f"run {arg} ... or newsbeam stream {arg} ...)" if arg == "-q" else
                             f"unknown option {arg}")
    try:
        probe.parse_known_args(beam_args)
    except argparse.ArgumentError as exc:  # a Beam option's value: one line, as for ours
        raise UsageError(str(exc)) from None
    check_runner(beam_args)


def check_runner(beam_args: list[str]) -> None:
    """A --runner Beam does not know is a usage error, before anything runs (Beam would only
    refuse it once the pipeline is built). Names as Beam takes them: any case, with or without
    'Runner'; a dotted class path is left to Beam."""
    from apache_beam.options.pipeline_options import StandardOptions

    from pipeline.runners import _value

    value = _value(beam_args, "--runner")
    if value is None or "." in value:
        return
    names = {path.rsplit(".", 1)[-1] for path in StandardOptions.ALL_KNOWN_RUNNERS}
    lowered = {name.lower() for name in names}
    if value.lower() not in lowered and value.lower() + "runner" not in lowered:
        common = "DirectRunner, PrismRunner, FlinkRunner, SparkRunner, DataflowRunner"
        raise UsageError(f"unknown --runner {value!r} (for example: {common})")


def _counters(result: Any) -> dict[str, int]:
    counters: dict[str, int] = {}
    query = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    for c in query["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        counters[c.key.metric.name] = counters.get(c.key.metric.name, 0) + int(value or 0)
    return counters


def units_in(counters: dict[str, int]) -> int:
    """Input units = files and feeds rejected whole (read, fetch, parse) + units the parser
    emitted."""
    return counters.get("read.rejected", 0) + counters.get("fetch_feed.rejected", 0) \
        + counters.get("parse.rejected", 0) + counters.get("parse.out", 0)


def _runner_name(beam_args: tuple[str, ...]) -> str:
    return PipelineOptions(list(beam_args)).get_all_options()["runner"] or "DirectRunner"


def execute(config: Config) -> tuple[int, dict[str, Any]]:
    """Run the batch pipeline and write the manifest. Returns (exit code, manifest)."""
    from pipeline import prewarm
    from pipeline.beam_options import pipeline_options
    from pipeline.runners import (
        BEAM_WORKER_LEVEL_FLAG,
        _given,
        local_workers,
        tallied_progress,
        worker_plugin_args,
    )

    # the multi_processing mode's worker processes set themselves up as this one
    beam_args = worker_plugin_args(config.beam_args)
    workers = local_workers(beam_args)
    # and start now, unless the command started them already (pipeline/prewarm.py)
    prewarm.start(prewarm.workers_in(beam_args))
    options = pipeline_options(beam_args)
    LOG.info("run %s: %s -> %s", config.run_id, logs.counted(len(config.inputs), "input file"),
             config.output_dir)
    started_at = datetime.now(timezone.utc)
    t0 = time.monotonic()
    from pipeline.memory import BATCH_ADVICE, DIRECT_ADVICE, MemoryWatch, warning_ratio
    from pipeline.progress import TallyProgress, progress_total
    from pipeline.runners import (
        beam_scratch,
        direct_engine,
        leaner_beam,
        quiet_harness_teardown,
    )
    from transforms.read import dump_pieces

    engine = direct_engine(beam_args)
    if engine is None:  # a portable runner: its LOOPBACK worker runs in this process
        quiet_harness_teardown()
    # the DirectRunner holds every stage in this machine's memory: warn before it runs out
    watch = MemoryWatch(warning_ratio() if engine is not None else None,
                        advice=DIRECT_ADVICE if config.batch is None else BATCH_ADVICE,
                        limit=config.max_memory)
    with beam_scratch() as scratch, leaner_beam(), watch, ExitStack() as local:
        local.callback(prewarm.release)  # the workers the runner did not take
        if workers == "multi_processing":  # they print their own records
            local.enter_context(logs.workers_print_their_own(
                _given(list(config.beam_args), BEAM_WORKER_LEVEL_FLAG)))
        if tallied_progress(beam_args):  # the workers count into files, this process
            # writes the one progress line
            tally_dir = tempfile.mkdtemp(prefix="progress-", dir=scratch)
            pieces = dump_pieces(config.inputs, config.max_bytes, slices=config.dump_slices)
            total, unit = progress_total(config.inputs, pieces)
            local.enter_context(TallyProgress(tally_dir, total, config.progress, unit=unit))
            config = dataclasses.replace(config, progress_tally=tally_dir, dump_pieces=pieces)
        pipeline = beam.Pipeline(runner=engine, options=options)
        graph.build(pipeline, config)
        # Modules, Beam's graph and their tables live as long as the run: freezing them keeps
        # the garbage collector from walking them again on every full collection (the
        # DirectRunner runs the work in this process; 0.12-0.18 s of collections per run on
        # the AEB pages fell to 0.06 s). Unfrozen after, for a caller that runs again.
        gc.freeze()
        try:
            result = pipeline.run()
            result.wait_until_finish()
        finally:
            gc.unfreeze()
    LOG.info("pipeline finished in %.1fs", time.monotonic() - t0)
    counters = _counters(result)
    files = read_report(config, graph.report_path(config))
    tally = tally_files(files)  # from the staged files
    finished = datetime.now(timezone.utc)
    manifest = build_manifest(config, finished, units_in(counters), counters, files, tally,
                              _runner_name(config.beam_args), started_at, watch.summary())
    # data, then the index, then the manifest; journaled, so a run killed in the middle of
    # its commit is finished by the next start (pipeline/commit.py)
    commit_journaled(config.output_dir, config.run_id, files, {}, manifest,
                     remove_parent=True)
    LOG.info("manifest: %s", join_path(config.output_dir, "_runs", f"{config.run_id}.json"))
    code = EXIT_OK if manifest["accounting"]["balanced"] else EXIT_ACCOUNTING
    return code, manifest


def print_summary(manifest: dict[str, Any], stream: Any = sys.stdout) -> None:
    c = manifest["counts"]
    acc = manifest["accounting"]
    files = manifest["inputs"]["files"]
    lines = [
        f"newsbeam run {manifest['run_id']}: {files} file{'' if files == 1 else 's'}, "
        f"{c['in']} input unit{'' if c['in'] == 1 else 's'} in {manifest['duration_s']:.1f}s",
        f"  articles   {c['articles']:>8}",
        f"  duplicates {c['duplicates']:>8}  {_fmt(manifest['duplicates_by_method'])}",
        f"  rejects    {c['rejects']:>8}  {_fmt(manifest['rejects_by_reason'])}",
        f"  accounting in={acc['in']} out={acc['out']} "
        + ("balanced" if acc["balanced"] else "DOES NOT BALANCE"),
        f"  time       {_stage_times(manifest)}",
        f"  output     {manifest['output']} ({manifest['bytes_written']:,} bytes written)",
    ]
    feeds = manifest.get("feeds") or {}
    if feeds.get("requested"):
        lines.insert(-2, f"  feeds      {feeds_line(feeds)}")
    pages = manifest.get("pages") or {}
    if pages.get("follow_links"):
        kept = pages.get("failed_kept_feed_text", 0)
        lines.insert(-2, f"  pages      fetched {pages['fetched']}, failed "
                     f"{pages['failed'] + kept}"
                     + (f" ({pages['failed']} rejected, {kept} kept the feed's whole text)"
                        if kept else ""))
    memory = manifest.get("memory") or {}
    if memory.get("peak_rss_bytes"):
        lines.append(f"  memory     peak {memory['peak_rss_bytes'] / 2**20:,.0f} MiB"
                     + (" (past the warning: see above)" if memory.get("warning") else ""))
    stream.write("\n".join(line.rstrip() for line in lines) + "\n")


def feeds_line(feeds: dict[str, Any]) -> str:
    """The summary's account of the feeds a run asked for."""
    line = (f"{feeds['requested']} requested: fetched {feeds['fetched']}, unchanged (304) "
            f"{feeds['not_modified']}, failed {feeds['failed']}")
    if feeds["not_modified"] and feeds["not_modified"] == feeds["requested"]:
        line += "; every feed unchanged since the last run"
    return line


def _stage_times(manifest: dict[str, Any]) -> str:
    """Time per stage from the stage timers (seconds of work, summed over workers)."""
    stages = manifest.get("stages", {})
    parts = [f"{name} {stages[name + '.us'] / 1e6:.2f}s" for name in STAGE_TIMERS
             if stages.get(name + ".us")]
    measured = sum(stages.get(name + ".us", 0) for name in STAGE_TIMERS) / 1e6
    rest = max(0.0, manifest["duration_s"] - measured)
    parts.append(f"dedupe+runner {rest:.2f}s")
    return ", ".join(parts)


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items())


def _error(message: str, code: int) -> int:
    """A one-line error on stderr; returns the exit code."""
    logs.end_open_line()
    sys.stderr.write(f"newsbeam: error: {message}\n")
    return code


def _failure(what: str, exc: Exception, after: str = "") -> int:
    """A run that failed: its first line on stderr (the traceback at DEBUG)."""
    LOG.debug("%s failure", what, exc_info=True)
    first = error_line(exc)
    kind = getattr(exc, "kind", type(exc).__name__)  # a batch's, raised in its own process
    if kind == "RuntimeError" and re.match(r"[A-Z]\w*(Error|Exception): ", first):
        # Beam's wrapper of an error it could not raise again as itself (an OSError with its
        # errno): "RuntimeError: OSError: [Errno 28] ..." says the same thing twice
        kind, first = first.split(": ", 1)
    if kind == UsageError.__name__:  # found once the runner ran: a flag its job server lacks
        return _error(f"{first}{after}", EXIT_USAGE)
    return _error(f"the {what} failed: {kind}: {first}{after}", EXIT_FAILED)


def _acquire(config: Config) -> Any:
    """The lock on OUT, or None after a one-line error (the caller exits EXIT_LOCKED)."""
    # a command in batches writes manifests under its batches' ids, not under its own: the
    # lock says so, or a refused run would be told of a run no manifest names
    batched = bool(config.batch_files or config.batch_lines)
    holder = f"{config.run_id} (in batches)" if batched else config.run_id
    try:
        return acquire(config.output_dir, holder, config.break_lock)
    except LockBusy as exc:
        _error(str(exc), EXIT_LOCKED)
        return None


class _Terminated(BaseException):
    """SIGTERM during a batch run (a scheduler's timeout, a stopped container)."""


_terminated = False
_interrupted = False


def _terminate_cleanly() -> None:
    """SIGTERM ends a batch run like Ctrl-C does: the exception unwinds the run (the lock on
    OUT is released; staged files are cleaned by the next run) and the interpreter exits
    normally, so Beam's exit handlers stop the job server of a Flink, Spark or Prism run.
    Killed by the default action, the process would leave that server (a JVM) running."""
    import signal

    def handler(_signum: int, _frame: Any) -> None:
        global _terminated
        _terminated = True  # Beam may wrap the exception (raised inside a DoFn) in its own
        raise _Terminated()

    signal.signal(signal.SIGTERM, handler)

    def interrupt(_signum: int, _frame: Any) -> None:
        global _interrupted
        _interrupted = True  # Beam may wrap the KeyboardInterrupt (raised inside a DoFn)
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # nohup, a background job
        signal.signal(signal.SIGINT, interrupt)


DURATION_FLAGS = ("--window", "--poll", "--stop-after", "--settle", "--dedupe-horizon",
                  "--drain-timeout")


def _negative_durations_joined(argv: list[str]) -> list[str]:
    """``--poll -1s`` -> ``--poll=-1s``: argparse takes "-1s" for an option and answers
    "expected one argument"; joined, the duration's own check says it must be positive."""
    joined: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in DURATION_FLAGS and i + 1 < len(argv) and re.match(r"-\.?\d", argv[i + 1]):
            joined.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
            continue
        joined.append(argv[i])
        i += 1
    return joined


def _own_flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of newsbeam's parser and its commands' parsers."""
    flags: set[str] = set()
    stack = [parser]
    while stack:
        current = stack.pop()
        for action in current._actions:
            flags.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    return flags


def beam_values_joined(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """``--runner FlinkRunner`` -> ``--runner=FlinkRunner`` for the Beam options that take a
    value. newsbeam passes the options it does not know on to Beam, so its parser sees
    ``--runner`` as unknown and would take ``FlinkRunner`` for an INPUT (``newsbeam run -o
    out --runner FlinkRunner news/`` failed with "--runner: expected one argument"). Beam's
    own parser says which flags take a value; it is built only when such a flag is there."""
    ours = _own_flags(parser)
    candidates = [i for i, arg in enumerate(argv[:-1])
                  if arg.startswith("--") and "=" not in arg and arg not in ours
                  and not argv[i + 1].startswith("-")]
    if not candidates:
        return argv
    from pipeline.beam_options import beam_probe

    actions = beam_probe()._option_string_actions
    joined, skip = [], -1
    for i, arg in enumerate(argv):
        if i == skip:
            continue
        action = actions.get(arg) if i in candidates else None
        if action is not None and action.nargs is None:
            joined.append(f"{arg}={argv[i + 1]}")
            skip = i + 1
        else:
            joined.append(arg)
    return joined


def stray_inputs_moved(args: argparse.Namespace, extra: list[str]) -> list[str]:
    """INPUTs written after an option (``newsbeam run news/ -o out more/``): argparse takes
    one run of positionals and leaves the rest among the unknown options, which go to Beam,
    which ignored them, so ``more/`` was silently not read. They are moved to
    ``args.inputs``; a word after a ``--flag`` Beam does not know (a Flink or Spark job
    server's own option) stays with that flag as its value. Returns the options left."""
    if not hasattr(args, "inputs") or not any(not a.startswith("-") for a in extra):
        return extra
    from pipeline.beam_options import beam_probe

    known = beam_probe()._option_string_actions
    rest: list[str] = []
    for i, arg in enumerate(extra):
        before = extra[i - 1] if i else ""
        value_of_unknown = (before.startswith("--") and "=" not in before
                            and before not in known)
        if arg.startswith("-") or value_of_unknown:
            rest.append(arg)
        else:
            args.inputs = [*args.inputs, arg]  # a new list: never argparse's default object
    return rest


def main(argv: list[str] | None = None) -> int:
    global _interrupted, _terminated
    _interrupted = _terminated = False  # a caller may run several commands in one process
    parser = make_parser()
    argv = _negative_durations_joined(sys.argv[1:] if argv is None else list(argv))
    argv = beam_values_joined(argv, parser)
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "config", None):
        try:
            defaults = load_config_file(args.config)
        except UsageError as exc:
            sys.stderr.write(f"newsbeam: error: {exc}\n")
            return EXIT_USAGE
        known = {action.dest for action in args._run_parser._actions}
        switches = {action.dest for action in args._run_parser._actions
                    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))}
        for key in sorted(switches & set(defaults)):
            # argparse checks a string default against its type, but a switch has none:
            # "false" would switch it on
            if not isinstance(defaults[key], bool):
                return _error(f"--config {args.config}: {key.replace('_', '-')} must be true "
                              f"or false, not {defaults[key]!r}", EXIT_USAGE)
        for key in sorted(set(defaults) - known):  # a file shared by run and stream
            sys.stderr.write(f"newsbeam: warning: --config {args.config}: {key} does not "
                             f"apply to {args.command} (ignored)\n")
            del defaults[key]
        args._run_parser.set_defaults(**defaults)
        args, extra = parser.parse_known_args(argv)
    extra = stray_inputs_moved(args, extra)
    if args.version:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"newsbeam {version('newsbeam')}")
        except PackageNotFoundError:
            print("newsbeam (not installed)")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    logs.setup(args.log_level, getattr(args, "quiet", False), args.log_format)
    if args.command == "stream":
        return main_stream(args, extra)
    if args.command == "compact":
        return main_compact(args, extra)
    if args.command == "report":
        if extra:
            return _error(f"unknown option {extra[0]} for report", EXIT_USAGE)
        from pipeline.report import main_report

        return int(main_report(args))
    try:
        check_beam_args(extra)
        config = config_from_args(args, extra)
    except UsageError as exc:
        return _error(str(exc), EXIT_USAGE)
    from pipeline.batches import describe, plan_memory, run_batch, split

    # planned before the lock, which says whether the command runs in batches; said after it
    config, planned = plan_memory(config)
    lock = _acquire(config)  # the try below starts at once: a signal then still unlocks OUT
    if lock is None:
        return EXIT_LOCKED
    _terminate_cleanly()
    done: list[dict[str, Any]] = []  # the manifests of the batches finished
    runs: list[Config] = []
    log = (args.log_level, config.quiet, args.log_format)
    try:
        if planned:
            LOG.warning(planned)
        clean_leftovers(config.output_dir)
        upgrade_index(config.output_dir, config.signature)
        check_signature_settings(config.output_dir, config.signature)
        suggest_compaction(config.output_dir)
        runs = split(config)
        if runs[0].batch is not None:  # batches planned from memory: each starts its own
            from pipeline import prewarm

            prewarm.release()
        for run in runs:
            if run.batch is None:
                _code, manifest = execute(run)
            else:  # each in a process of its own (pipeline/batches.py)
                LOG.info("batch %d/%d: %s", *run.batch, describe(run))
                _code, manifest = run_batch(run, log)
            done.append(manifest)
            _summarize(args, manifest)
    except KeyboardInterrupt:
        return _interrupted_run(runs)
    except (_Terminated, Exception) as exc:
        if isinstance(exc, Exception) and _interrupted and not _terminated:
            return _interrupted_run(runs)  # Ctrl-C, wrapped by Beam in a RuntimeError
        if isinstance(exc, Exception) and not _terminated:
            return _failure("pipeline", exc, _batches_done(runs))
        logs.end_open_line()
        sys.stderr.write("newsbeam: terminated (SIGTERM) before the run finished; the next "
                         "run into OUT completes or removes what it left"
                         f"{_batches_done(runs)}\n")
        sys.stderr.flush()
        # the in-process worker's threads print tracebacks as the interpreter shuts down under
        # them: expected now, and not news to the operator who sent the signal
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (the process is exiting)
        logging.disable(logging.CRITICAL)
        return EXIT_TERMINATED
    finally:
        lock.release()
    if len(runs) > 1:
        _to_stdout(print_batches, done, len(runs), args.log_format == "json")
    return _judge(config, done)


def _interrupted_run(runs: list[Config]) -> int:
    """Ctrl-C during a run: one line (the batches committed before it) and exit code 130."""
    from pipeline.cli import EXIT_INTERRUPTED

    logs.end_open_line()
    sys.stderr.write(f"newsbeam: interrupted{_batches_done(runs)}\n")
    return EXIT_INTERRUPTED


def _batches_done(runs: list[Config]) -> str:
    """For a message on a command run in batches (``runs``; one run: none): those committed
    before it stopped, as OUT shows them (a batch can commit just before a signal stops it,
    before this process hears back from it)."""
    if len(runs) < 2:
        return ""
    from apache_beam.io.filesystems import FileSystems

    ids = [run.run_id for run in runs if FileSystems.exists(
        join_path(run.output_dir, "_runs", f"{run.run_id}.json"))]
    listed = f": {', '.join(ids)}" if ids else ""
    return f" ({len(ids)} of {len(runs)} batches were committed{listed})"


def print_batches(done: list[dict[str, Any]], count: int, as_record: bool = False,
                  stream: Any = None) -> None:
    """The totals of a command run in batches (also a log record with --log-format json)."""
    stream = stream or sys.stdout
    totals = {key: sum(m["counts"][key] for m in done)
              for key in ("in", "articles", "duplicates", "rejects")}
    # distinct paths: the slices of one dump (--batch-lines) are one file
    files = len({path for m in done for path in m["inputs"]["paths"]})
    print(f"newsbeam: {len(done)} of {count} batches, {files:,} file{'s' * (files != 1)}, "
          f"{totals['in']:,} input units: articles {totals['articles']:,}, duplicates "
          f"{totals['duplicates']:,}, rejects {totals['rejects']:,}", file=stream)
    if as_record:
        LOG.info("batches summary", extra={"data": {
            "batches": count, "run_ids": [m["run_id"] for m in done], "files": files,
            "counts": totals}})


def _to_stdout(write: Callable[..., None], *args: Any) -> None:
    """``write(*args)`` to stdout, whose reader may have gone (``newsbeam run ... | head``):
    the run is committed all the same, so what it prints is dropped (stdout then goes to the
    null device, or the interpreter's last flush would fail too) and the exit code still
    judges the run, not the pipe."""
    try:
        write(*args)
        sys.stdout.flush()
    except BrokenPipeError:
        logs.drop_closed(sys.stdout)


def _summarize(args: argparse.Namespace, manifest: dict[str, Any]) -> None:
    """A finished run's summary on stdout (and as a record with --log-format json), after a
    warning on stderr for each feed that failed."""
    logs.end_open_line()
    warn_failed_feeds(manifest)
    _to_stdout(print_summary, manifest)
    if args.log_format == "json":  # the summary as a record; in text it is printed above
        LOG.info("run summary", extra={"data": {
            k: manifest[k] for k in ("run_id", "status", "duration_s", "counts",
                                     "rejects_by_reason", "duplicates_by_method",
                                     "bytes_written")
        }})


def _judge(config: Config, done: list[dict[str, Any]]) -> int:
    """The exit code of a command whose runs (one, or its batches) all finished: accounting
    first, then the reject ratio over all of them."""
    code = EXIT_OK
    for manifest in done:
        if not manifest["accounting"]["balanced"]:
            which = f" in run {manifest['run_id']}" if len(done) > 1 else ""
            sys.stderr.write(
                f"newsbeam: error: accounting does not balance{which}: "
                f"in={manifest['accounting']['in']} but articles+duplicates+rejects="
                f"{manifest['accounting']['out']}\n")
            code = EXIT_ACCOUNTING
    units = sum(m["counts"]["in"] for m in done)
    rejects = sum(m["counts"]["rejects"] for m in done)
    ratio = rejects / units if units else 0.0
    if code == EXIT_OK and config.max_reject_ratio is not None \
            and ratio > config.max_reject_ratio:
        sys.stderr.write(f"newsbeam: error: {rejects} of {units} input units were rejected "
                         f"({ratio:.1%}), above --max-reject-ratio "
                         f"{config.max_reject_ratio:g}\n")
        code = EXIT_REJECTS
    return code


def main_compact(args: argparse.Namespace, extra: list[str]) -> int:
    import os
    import shutil
    from datetime import datetime, timezone

    from pipeline.commit import STAGING, remove_empty_staging
    from pipeline.compact import (
        COMPACT_PREFIX,
        FLAT_DATASETS,
        Compacted,
        PartitionBusy,
        compact_dataset,
        compact_partition,
        compaction_alive,
        partitions,
        write_record,
    )

    out = args.output
    if extra:
        sys.stderr.write(f"newsbeam: error: unknown option {extra[0]} for compact\n")
        return EXIT_USAGE
    if not os.path.isdir(out):
        sys.stderr.write(f"newsbeam: error: {out} does not exist"
                         f"{'' if not os.path.exists(out) else ' as a folder'}\n")
        return EXIT_USAGE
    flat_found = [d for d in FLAT_DATASETS if os.path.isdir(os.path.join(out, d))]
    if not os.path.isdir(os.path.join(out, "articles")) and (args.partition or not flat_found):
        sys.stderr.write(f"newsbeam: error: nothing to compact in {out} (no articles/, "
                         "_index/, duplicates/ or rejects/: not a newsbeam output)\n")
        return EXIT_USAGE
    existing = partitions(out)
    wanted = args.partition or existing
    missing = [p for p in wanted if p not in existing]
    if missing:
        hint = f" (partitions are named like {existing[0]})" if existing and "=" not in \
            missing[0] else ""
        sys.stderr.write(f"newsbeam: error: no such partition in {out}/articles: "
                         f"{missing[0]}{hint}\n")
        return EXIT_USAGE
    min_files = max(1, args.min_files)
    staging = os.path.join(out, STAGING)
    if os.path.isdir(staging):  # what a killed compaction left (a run's own are the run's)
        for name in os.listdir(staging):
            if name.startswith(COMPACT_PREFIX) and not compaction_alive(name):
                shutil.rmtree(os.path.join(staging, name), ignore_errors=True)
    failed: list[str] = []
    merges: list[dict[str, object]] = []
    started = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"

    def recorded(code: int) -> int:
        """The command's exit code, after the record of what was merged (if anything)."""
        if merges:
            write_record(out, started, merges)
        remove_empty_staging(out)
        return code

    def attempt(name: str, dataset: str, merge: Any) -> bool:
        """Merge one partition or dataset; a damaged one is left as it is, and said so."""
        try:
            done: Compacted | None = merge()
        except PartitionBusy:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad partition must not stop the rest
            failed.append(name)
            sys.stderr.write(f"newsbeam: cannot compact {name} ({type(exc).__name__}: "
                             f"{error_line(exc)}); left as it is\n")
            return False
        if done is None:
            return False
        merges.append(done.record(dataset))
        _to_stdout(print, f"  {name}: {done.files_before} files -> {done.files_after} "
                   f"({done.rows} rows)"
                   + ("" if done.swapped_atomically else " [swapped by two renames]"))
        return True

    merged = 0
    try:
        for part in wanted:
            merged += attempt(part, "articles", lambda part=part: compact_partition(
                out, part, min_files=min_files))
    except PartitionBusy as exc:
        sys.stderr.write(f"newsbeam: error: {exc}\n")
        return recorded(EXIT_LOCKED)
    summary = f"newsbeam compact {out}: {merged} of {len(wanted)} partitions merged"
    if args.partition:  # only the partitions asked for
        _to_stdout(print, summary)
        return recorded(EXIT_FAILED if failed else EXIT_OK)
    # the index, duplicates, rejects and state: runs and streams use them under the OUT lock
    try:
        lock = acquire(out, f"compact-{uuid.uuid4().hex[:8]}")
    except LockBusy as exc:
        _to_stdout(print, summary)
        holder = str(exc).split(";")[0]
        sys.stderr.write(f"newsbeam: {holder}: only article partitions were compacted; "
                         f"{', '.join(flat_found) or 'the other datasets'} are left for a "
                         "compact while no run or stream holds it\n")
        return recorded(EXIT_FAILED if failed else EXIT_OK)
    flat = 0
    try:
        for dataset in flat_found:
            flat += attempt(dataset, dataset, lambda dataset=dataset: compact_dataset(
                out, dataset, min_files=min_files))
        _to_stdout(print, f"{summary}; {flat} of {len(FLAT_DATASETS)} other datasets")
        return recorded(EXIT_FAILED if failed else EXIT_OK)
    finally:
        lock.release()


def main_stream(args: argparse.Namespace, extra: list[str]) -> int:
    from pipeline.stream import StopFlag, stream_sources

    runner = runner_name(extra)
    micro_batches = runner == "direct"
    try:
        check_beam_args(extra)
        folders, urls = stream_sources(list(args.inputs))
        stream_args = argparse.Namespace(**vars(args))
        stream_args.inputs = urls
        if runner is None:
            extra = ["--runner=PrismRunner", *extra]  # Beam's local runner for streaming
        for folder in folders:  # before config_from_args, which makes the folder
            remote = "://" in folder or "://" in (args.output or "")
            if args.output and (inside(args.output, folder) if not remote else (
                    args.output.rstrip("/") + "/").startswith(folder.rstrip("/") + "/")):
                raise UsageError(f"--output {args.output} is inside the watched folder "
                                 f"{folder}: the stream would read its own output")
        # before config_from_args, which creates OUT: exit 2 means nothing was done
        if not folders and not urls and not (args.feeds and read_feed_list(args.feeds)):
            raise UsageError("no SOURCE given: name a folder to watch or a feed URL (or "
                             "--feeds FILE)")
        config = config_from_args(stream_args, extra, files=False)
    except UsageError as exc:
        return _error(str(exc), EXIT_USAGE)
    # the stream's id, from its start: the lock names it (a run refused while the stream
    # holds OUT is told which stream), and so do its manifest and its windows' run ids
    started = datetime.now(timezone.utc).replace(microsecond=0)
    config = dataclasses.replace(config, run_id=f"{started:%Y%m%dT%H%M%SZ}-stream")
    lock = _acquire(config)
    if lock is None:
        return EXIT_LOCKED
    prism: list[Any] = []

    def abort() -> None:
        for server in prism:
            server.process.kill()
        lock.release()

    stop = StopFlag(on_abort=abort)
    stop.install()
    try:
        clean_leftovers(config.output_dir)
        upgrade_index(config.output_dir, config.signature)
        check_signature_settings(config.output_dir, config.signature)
        suggest_compaction(config.output_dir)
        LOG.info("streaming: watching %s and %s into %s (window %gs, poll %gs, %s)",
                 logs.counted(len(folders), "folder"), logs.counted(len(config.feeds), "feed"),
                 config.output_dir, args.window,
                 args.poll, "micro-batches on the DirectRunner" if micro_batches
                 else f"{_runner_name(config.beam_args)}, streaming")
        assembled = _assembled_job_server(config.beam_args) if runner == "flink" else None
        if assembled:
            LOG.warning("the Flink job server assembled here (Beam %s) does not advance the "
                        "watermark of the stream's Watch step (Beam issue #19637): its windows "
                        "commit only when the stream stops. Use Prism (the default) or the "
                        "official job-server jar of a Beam release with the fix "
                        "(--flink_job_server_jar)", assembled)
        if micro_batches:
            from pipeline.stream import run_stream

            code, manifest = run_stream(config, folders, args.window, args.poll,
                                        args.stop_after, args.settle, execute, stop,
                                        drain_timeout=args.drain_timeout)
        else:
            code, manifest = _stream_graph(config, folders, args, prism, stop)
    except Exception as exc:
        return _failure("stream", exc)
    finally:
        for server in prism:
            server.stop()
        lock.release()
    _to_stdout(print, f"newsbeam stream {manifest['stream_id']}: stopped by "
               f"{manifest['stopped_by']} after {logs.counted(manifest['windows'], 'window')}: "
               f"{manifest['articles']} articles, {manifest['duplicates']} duplicates, "
               f"{manifest['rejects']} rejects")
    if code == EXIT_ACCOUNTING:
        _error("a window's accounting did not balance (see its manifest in OUT/_runs)", code)
    return code  # the worst window's exit code: 0, 1 or 3


def _assembled_job_server(beam_args: Any) -> str | None:
    """The Beam version of a Flink job-server jar that scripts/get_jobserver.sh assembled
    (``...-job-server-2.62.0-assembled.jar``), or None for any other jar."""
    for arg in beam_args:
        found = re.search(r"--flink_job_server_jar=.*-job-server-([\d.]+)-assembled\.jar$",
                          str(arg))
        if found:
            return found.group(1)
    return None


def _stream_graph(config: Any, folders: list[str], args: argparse.Namespace,
                  prism: list[Any], stop: Any) -> tuple[int, dict[str, Any]]:
    """The unbounded graph; on Prism, with a Prism server newsbeam starts in its own session."""
    from pipeline.runners import (
        _value,
        beam_scratch,
        leaner_beam,
        quiet_harness_teardown,
        runner_name,
    )
    from pipeline.stream import PrismServer, run_stream_graph
    from pipeline.stream_graph import StreamSpec

    beam_args = [a for a in config.beam_args if a != "--streaming"] + ["--streaming"]
    runner = _runner_name(config.beam_args)
    if runner_name(beam_args) == "prism" and _value(beam_args, "--job_endpoint") is None:
        binary = _value(beam_args, "--prism_location")
        assert binary is not None  # runner_defaults set it, or stopped the run (runners.py)
        # OUT/_state/prism.log; a remote OUT cannot take an appended log: the temp folder
        log_path = (os.path.join(config.output_dir, "_state", "prism.log")
                    if "://" not in config.output_dir else
                    os.path.join(tempfile.gettempdir(), f"newsbeam-{config.run_id}-prism.log"))
        LOG.debug("Prism's log: %s", log_path)
        server = PrismServer(binary, log_path)
        prism.append(server)
        beam_args = [a for a in beam_args if not a.startswith(("--prism_location",
                                                                "--prism_log_level"))]
        beam_args += [f"--job_endpoint={server.endpoint}"]
        if _value(beam_args, "--environment_type") is None:
            beam_args.append("--environment_type=LOOPBACK")
    stream_id = config.run_id  # main_stream's, from the stream's start
    spec = StreamSpec(
        stream_id=stream_id, folders=tuple(folders), feeds=tuple(config.feeds),
        window=args.window, poll=args.poll, settle=args.settle, horizon=args.dedupe_horizon,
        stop_file=join_path(config.output_dir, "_state", f"{stream_id}.stop"),
        runner=runner)
    config = dataclasses.replace(config, beam_args=tuple(beam_args), run_id=stream_id)
    quiet_harness_teardown()
    with beam_scratch(), leaner_beam():
        return run_stream_graph(config, spec, args.stop_after, stop,
                                drain_timeout=args.drain_timeout)


def entrypoint() -> None:
    """``pipeline.cli.entrypoint`` (the command's) once this module is loaded."""
    sys.exit(main())
