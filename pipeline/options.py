"""The only place flags are read: command line -> frozen Config.

Every user mistake found here (missing input, empty glob, output that is not a directory, a
bad flag value) raises UsageError with a one-line message naming the problem; the CLI prints it
and exits 2 before any work starts.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import logging
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from apache_beam.io.filesystems import FileSystems

from pipeline.progress import progress_mode
from pipeline.runners import RunnerSetupError, runner_defaults
from transforms.errors import error_line
from transforms.http import FetchPolicy, redact
from transforms.neardup import NearConfig
from transforms.read import DEFAULT_MAX_BYTES
from transforms.steps import DEFAULT_STEPS, Step, StepSpecError, resolve_steps
from transforms.write import is_dataset

LOG = logging.getLogger("newsbeam")

DEFAULT_RUNNER = "DirectRunner"
_GLOB_CHARS = set("*?[")


class UsageError(Exception):
    """A mistake in how newsbeam was called (exit code 2)."""


@dataclass(frozen=True)
class Config:
    """Everything a run needs, fixed before the pipeline is built."""

    inputs: tuple[str, ...]
    output_dir: str
    run_id: str
    ingested_at: datetime
    max_bytes: int = DEFAULT_MAX_BYTES
    beam_args: tuple[str, ...] = field(default_factory=tuple)
    requested_inputs: tuple[str, ...] = field(default_factory=tuple)
    quiet: bool = False
    steps: dict[str, tuple[Step, ...]] = field(default_factory=dict)
    config_file: str | None = None
    # the near-duplicate settings; the signatures OUT/_index keeps are taken with them also
    # under --no-dedupe (near_detection False), so later runs find near copies of its articles
    signature: NearConfig = field(default_factory=NearConfig)
    near_detection: bool = True
    break_lock: bool = False
    feeds: tuple[str, ...] = ()
    follow_links: bool = False
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    progress: str = "off"  # "tty", "plain" or "off" (pipeline/progress.py)
    # where worker processes on this machine count their progress (pipeline/progress.py)
    progress_tally: str | None = None
    # the local JSONL dumps the read cuts into pieces, path -> pieces (transforms/read.py
    # dump_pieces); None: not looked for yet (pipeline/graph.py then does)
    dump_pieces: dict[str, int] | None = None
    max_reject_ratio: float | None = None
    # options runner_defaults added for a local Flink/Spark run (recorded in the manifest)
    runner_setup: dict[str, str] = field(default_factory=dict)
    # spread the input files over workers (a Reshuffle); pointless on one local worker
    spread_inputs: bool = True
    # --batch-files: at most this many input files a run (pipeline/batches.py); 0: one run,
    # never planned in batches; None: batches when memory requires them (``batch_auto``)
    batch_files: int | None = None
    # the batch size was planned from the memory the machine can give (--max-memory)
    batch_auto: bool = False
    # --max-memory: what a DirectRunner run may hold in all (None: what the machine can give)
    max_memory: int | None = None
    # --batch-lines: at most this many lines of a JSONL dump a run (pipeline/batches.py)
    batch_lines: int | None = None
    # the part of a dump this run reads, path -> transforms.read.DumpSlice (a batch's)
    dump_slices: dict[str, Any] | None = None
    # this run's place among the batches of one command: (1-based number, how many)
    batch: tuple[int, int] | None = None


    @property
    def near(self) -> NearConfig | None:
        """The settings of near-duplicate detection; None under --no-dedupe."""
        return self.signature if self.near_detection else None

    def step_names(self) -> dict[str, list[str]]:
        return {chain: [s.name for s in steps] for chain, steps in self.steps.items()}


def _is_remote(path: str) -> bool:
    return "://" in path


def store_error(exc: BaseException) -> str:
    """One line for a failure of Beam's FileSystems: a BeamIOError holds the real error per
    path (a missing boto3, refused credentials); its own text repeats every path."""
    details = getattr(exc, "exception_details", None)
    if isinstance(details, dict) and details:
        exc = next(iter(details.values()))
    text = error_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


STORE_EXTRAS = "install apache-beam[gcp] for gs://, [aws] for s3://, [hadoop] for hdfs://"


def check_filesystem(path: str, role: str) -> None:
    """Beam has a filesystem for a remote path's scheme (its extra is installed)."""
    try:
        FileSystems.get_filesystem(path)
    except Exception:  # noqa: BLE001 - ValueError, or BeamIOError when the extra is missing
        raise UsageError(f"no filesystem for this {role} (feeds are read over http and "
                         f"https; {STORE_EXTRAS}): {path}") from None


def check_store(path: str, role: str) -> None:
    """A remote INPUT or OUT's filesystem is there and answers (its Beam extra installed,
    its settings given): one line now, instead of a traceback from the first call."""
    check_filesystem(path, role)
    try:
        FileSystems.exists(path)
    except Exception as exc:  # noqa: BLE001 - whatever the store's client raises
        raise UsageError(f"cannot reach {role} {path}: {store_error(exc)} ({STORE_EXTRAS}; "
                         "credentials and settings as Beam options, docs/runners.md)") from None


def is_url(spec: str) -> bool:
    return spec.lower().startswith(("http://", "https://"))


def check_feed_url(url: str, where: str) -> str:
    """A feed URL as the user gave it, checked for what can be checked before the run."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise UsageError(f"{where}: not a valid URL: {redact(url)} ({exc})") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise UsageError(f"{where}: only http and https feeds can be fetched: {redact(url)}")
    if not parts.hostname or any(ch.isspace() for ch in url):
        raise UsageError(f"{where}: not a valid URL: {redact(url)}")
    return url


def read_feed_list(path: str) -> list[str]:
    """--feeds FILE: one URL per line; blank lines and '#' comments ignored."""
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read --feeds {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"--feeds {path} is not UTF-8 text: {exc}") from exc
    urls = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if text:
            urls.append(check_feed_url(text, f"--feeds {path} line {number}"))
    if not urls:
        raise UsageError(f"--feeds {path} lists no URL")
    return urls


def _walk(directory: str, skip: set[str]) -> list[str]:
    """Files under ``directory``, without hidden ones, temporary names a writer uses while a
    file is not complete (``.part``, ``.tmp``, ``.crdownload``...: a download still under way
    would be read half-done; ``newsbeam stream`` skips them too), newsbeam outputs (the run's
    own ``--output`` among them, in ``skip``) and what is under them. Linked folders are
    followed, each real folder once (a link back up the tree is no loop); a folder that
    cannot be listed is named in a warning."""
    from transforms.streaming import is_temporary

    found: list[str] = []
    temporary = 0
    visited = {os.path.realpath(directory)}

    def unlistable(error: OSError) -> None:
        LOG.warning("cannot list %s (%s): its files are not read", error.filename,
                    error.strerror or type(error).__name__)

    for root, dirs, files in os.walk(directory, onerror=unlistable, followlinks=True):
        kept = []
        for d in sorted(d for d in dirs if not d.startswith(".")):
            path = os.path.join(root, d)
            real = os.path.realpath(path)
            if real in skip:  # --output itself, inside the input: expected, said quietly
                LOG.info("not reading %s: the --output folder", path)
                continue
            if is_dataset(path):  # another run's output: not news, but say it
                LOG.warning("not reading %s: a newsbeam output folder", path)
                continue
            if real in visited:  # a link to a folder read already (or to an ancestor)
                continue
            visited.add(real)
            kept.append(d)
        dirs[:] = kept
        for name in files:
            path = os.path.join(root, name)
            if is_temporary(name):
                temporary += not name.startswith(".")
            elif _readable_kind(path):
                found.append(path)
    if temporary:
        LOG.warning("not reading %d file%s of %s with a temporary name (.part, .tmp, ...): "
                    "name them as INPUT to read them", temporary, "" if temporary == 1 else "s",
                    directory)
    return found


def _readable_kind(path: str) -> bool:
    """A regular file (or a link to one), or a broken link, whose read then makes a reject
    row. A named pipe, a socket or a device is not news and its read could block forever:
    skipped, with a warning."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return True
    if stat.S_ISREG(mode):
        return True
    LOG.warning("not reading %s: not a regular file (a pipe, socket or device)", path)
    return False


def _in_output(folder: str, skip: set[str], seen: dict[str, bool]) -> bool:
    """Whether a (real) folder is or lies in ``skip`` (the run's --output) or a newsbeam
    output folder; ``seen`` caches the answer per folder."""
    if folder not in seen:
        parent = os.path.dirname(folder)
        seen[folder] = (folder in skip or is_dataset(folder)
                        or (parent != folder and _in_output(parent, skip, seen)))
    return seen[folder]


def expand_inputs(specs: list[str], output: str | None = None) -> tuple[str, ...]:
    """Files, directories (recursive) and globs -> sorted, unique file paths. A folder that
    holds a newsbeam output (``_runs/``), and ``output`` itself, are not read: a run into a
    folder inside its input would otherwise read its own Parquet files and manifests."""
    if not specs:
        raise UsageError("no INPUT given: name at least one file, directory, glob or feed "
                         "URL (or --feeds FILE)")
    skip = {os.path.realpath(output)} if output and not _is_remote(output) else set()
    paths: set[str] = set()
    for spec in specs:
        if _is_remote(spec):
            check_store(spec, "INPUT")
            try:
                matches = FileSystems.match([spec])[0].metadata_list
            except Exception as exc:  # noqa: BLE001 - the store's own error, in one line
                raise UsageError(f"cannot list input {spec}: {store_error(exc)}") from None
            if not matches:
                raise UsageError(f"input matches no file: {spec}")
            paths.update(m.path for m in matches)
        elif os.path.isdir(spec):
            if os.path.realpath(spec) in skip:
                raise UsageError(f"input {spec} is the --output folder")
            if is_dataset(spec):
                raise UsageError(f"input {spec} is a newsbeam output folder, not news to read")
            if _in_output(os.path.realpath(spec), skip, {}):
                raise UsageError(f"input {spec} lies inside a newsbeam output folder, not "
                                 "news to read")
            try:
                os.listdir(spec)
            except OSError as exc:
                raise UsageError(f"cannot list input directory {spec}: "
                                 f"{exc.strerror or exc}") from None
            files = _walk(spec, skip)
            if not files:
                raise UsageError(f"input directory holds no file: {spec}")
            paths.update(os.path.abspath(f) for f in files)
        elif os.path.isfile(spec):
            if _in_output(os.path.dirname(os.path.realpath(spec)), skip, {}):
                raise UsageError(f"input {spec} lies inside a newsbeam output folder, not "
                                 "news to read")
            paths.add(os.path.abspath(spec))
        elif _GLOB_CHARS & set(spec):
            seen: dict[str, bool] = {}
            matched = [m for m in glob.glob(spec, recursive=True)
                       if os.path.isfile(m) and not _in_output(
                           os.path.dirname(os.path.realpath(m)), skip, seen)]
            if not matched:
                raise UsageError(f"glob matches no file: {spec}")
            paths.update(os.path.abspath(m) for m in matched)
        elif os.path.exists(spec):
            raise UsageError(f"input is neither a file nor a directory: {spec}")
        else:
            raise UsageError(f"input path does not exist: {spec}")
    return tuple(sorted(paths))


# FetchPolicy's fields named as the flags that set them (the others have the same name)
_POLICY_FLAGS = {"read_timeout": "timeout", "allow_networks": "allow-network",
                 "allow_private": "allow-private-network"}


def _policy_message(message: str) -> str:
    """FetchPolicy.validate's message in the flags' words: --timeout, not read_timeout."""
    def flag(match: re.Match[str]) -> str:
        field = match.group(1)
        return "--" + _POLICY_FLAGS.get(field, field).replace("_", "-")

    return re.sub(r"FetchPolicy\.(\w+)", flag, message)


def free_run_id(output: str, run_id: str) -> str:
    """``run_id``, or, when OUT already holds a run of that id (the same inputs run again
    with the same --ingested-at, as a backfill or a reproduction does), the first of
    ``run_id-2``, ``run_id-3``, ... that it does not hold: each run keeps its own manifest."""
    from transforms.write import join_path

    candidate, n = run_id, 1
    while FileSystems.exists(join_path(output, "_runs", f"{candidate}.json")):
        n += 1
        candidate = f"{run_id}-{n}"
    return candidate


def prepare_output(output: str) -> str:
    """Check (and create) the output directory."""
    if _is_remote(output):
        check_store(output, "--output")
        return output.rstrip("/")
    if os.path.exists(output) and not os.path.isdir(output):
        raise UsageError(f"--output is not a directory: {output}")
    try:
        os.makedirs(output, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --output directory {output}: {exc.strerror}") from exc
    try:  # os.access says yes to root in /sys or on a read-only mount: try a real file
        with tempfile.NamedTemporaryFile(dir=output, prefix=".newsbeam-probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"--output directory is not writable: {output}: "
                         f"{exc.strerror or exc}") from exc
    return os.path.abspath(output)


def _size(text: str) -> int:
    units = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2,
             "mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gib": 1024**3}
    t = text.strip().lower()
    num = t.rstrip("kmgib")
    unit = t[len(num):]
    try:
        value = int(float(num) * units[unit])
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 50MB)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive: {text!r}")
    return value


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a ratio: {text!r} (use e.g. 0.05)") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a ratio is between 0 and 1: {text!r}")
    return value


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {least} or more: {text!r}")
    return value


def _count(text: str) -> int:
    return _whole(text, 0)


def _positive(text: str) -> int:
    return _whole(text, 1)


class _StepsAction(argparse.Action):
    """--steps: the first flag on the command line replaces the default (a --config file's
    list), each further one adds to it (--steps=-quotes --steps=-countries drops both)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        given = getattr(namespace, "_steps_given", False)
        before = list(getattr(namespace, self.dest) or []) if given else []
        setattr(namespace, self.dest, before + list(values))
        namespace._steps_given = True


def _comma_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


CONFIG_KEYS = {"output", "max_bytes", "ingested_at", "steps", "quiet", "no_dedupe",
               "near_threshold", "containment", "shingle_size", "num_perm", "bands",
               "boilerplate_df", "feeds", "follow_links", "allow_private_network",
               "allow_network", "ignore_robots", "rate_per_host", "timeout", "retries",
               "contact", "max_reject_ratio", "batch_files", "batch_lines", "max_memory"}


def _kind(path: str) -> str:
    return "YAML" if path.endswith((".yaml", ".yml")) else "TOML"


def _one_line(exc: Exception) -> str:
    """A parser's error on one line: PyYAML's spans several (the problem, then where, with a
    caret under the line): its problem and the line and column it names."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


def load_config_file(path: str) -> dict[str, object]:
    """A TOML or YAML file -> option defaults (validated keys)."""
    try:
        raw = open(path, "rb").read()
    except OSError as exc:
        raise UsageError(f"cannot read --config {path}: {exc.strerror}") from exc
    try:
        if path.endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(raw.decode("utf-8")) or {}
        else:
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
                import tomli as tomllib

            data = tomllib.loads(raw.decode("utf-8"))
    except Exception as exc:
        raise UsageError(f"--config {path} is not valid {_kind(path)}: {_one_line(exc)}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"--config {path} must hold a table of options")
    values: dict[str, object] = {}
    for key, value in data.items():
        dest = str(key).replace("-", "_")
        if dest not in CONFIG_KEYS:
            allowed = ", ".join(sorted(k.replace("_", "-") for k in CONFIG_KEYS))
            raise UsageError(f"--config {path}: unknown option {key!r} (allowed: {allowed})")
        if dest == "steps" and isinstance(value, str):
            value = _comma_list(value)
        if dest in ("max_bytes", "max_memory", "ingested_at") and not isinstance(value, str):
            value = str(value)
        values[dest] = value
    return values


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def add_run_arguments(parser: argparse.ArgumentParser, stream: bool = False) -> None:
    if stream:
        parser.add_argument(
            "inputs", nargs="*", metavar="SOURCE",
            help="a folder to watch (recursively; hidden and temporary names such as .part "
                 "and .tmp are skipped) or an http(s):// feed URL to poll",
        )
    else:
        parser.add_argument(
            "inputs", nargs="*", metavar="INPUT",
            help="an http(s):// feed URL, a file, a directory (read recursively, hidden files "
                 "and .part/.tmp names skipped) or a glob (quote it, e.g. 'data/**/*.xml'). "
                 "Kinds are detected from content: RSS, Atom, RDF, JSON Feed, HTML pages, "
                 "plain-text articles, JSONL; .gz/.bz2 are decompressed.",
        )
    parser.add_argument(
        "-o", "--output", metavar="OUT",
        help="output directory; created if missing. Receives articles/, duplicates/, "
             "rejects/ and _runs/.",
    )
    parser.add_argument(
        "--max-bytes", type=_size, default=DEFAULT_MAX_BYTES, metavar="SIZE",
        help="per-document size cap, after decompression (default 50MB); larger files "
             "become 'too_large' rejects.",
    )
    if not stream:  # a stream records each document's arrival
        parser.add_argument(
            "--ingested-at", type=_timestamp, default=None, metavar="TIME",
            help="ingestion time to record (ISO 8601, UTC if no zone); default now. Set it "
                 "to reproduce a run exactly or to backfill.",
        )
    parser.add_argument(
        "--steps", type=_comma_list, action=_StepsAction, default=None, metavar="LIST",
        help="cleaning and field steps, comma-separated (repeatable: the lists add up, and "
             "replace a --config file's). A full "
             "list replaces the default chain; '-name' removes a default step and "
             "'+module:function' adds your own, e.g. --steps=-quotes,+mypkg.steps:tag_paywall "
             "('clean:module:function' adds to the cleaning chain). Default: "
             f"{','.join(DEFAULT_STEPS)}",
    )
    parser.add_argument(
        "--config", metavar="FILE",
        help="a TOML or YAML file with defaults for these options (keys as the long option "
             "names, e.g. steps = [\"-quotes\"], max-bytes = \"20MB\"); flags given on the "
             "command line win.",
    )
    dedupe = parser.add_argument_group("near-duplicate detection")
    defaults = NearConfig()
    dedupe.add_argument("--no-dedupe", action="store_true",
                        help="switch near-duplicate detection off (exact duplicates by URL, "
                             "id and content hash are still removed)")
    dedupe.add_argument("--near-threshold", type=float, default=defaults.jaccard, metavar="J",
                        help=f"Jaccard similarity of shingle sets that makes a near copy "
                             f"(default {defaults.jaccard})")
    dedupe.add_argument("--containment", type=float, default=defaults.containment, metavar="C",
                        help="share of the shorter article found in the longer one that makes "
                             f"a near copy: truncated or extended copies (default "
                             f"{defaults.containment})")
    dedupe.add_argument("--shingle-size", type=int, default=defaults.shingle_size, metavar="N",
                        help=f"words per shingle (default {defaults.shingle_size})")
    dedupe.add_argument("--num-perm", type=int, default=defaults.num_perm, metavar="N",
                        help=f"MinHash permutations, a power of two, at least 8 (default "
                             f"{defaults.num_perm})")
    dedupe.add_argument("--bands", type=int, default=defaults.bands, metavar="N",
                        help=f"LSH bands; num-perm must be a multiple (default {defaults.bands})")
    dedupe.add_argument("--boilerplate-df", type=int, default=defaults.boilerplate_df,
                        metavar="N",
                        help="a paragraph found in this many articles is boilerplate and not "
                             f"compared (default {defaults.boilerplate_df})")
    web = parser.add_argument_group("feeds over HTTP")
    web.add_argument("--feeds", metavar="FILE",
                     help="a file listing feed URLs, one per line ('#' starts a comment); an "
                          "http(s):// INPUT is a feed URL too")
    web.add_argument("--follow-links", action="store_true",
                     help="fetch each new entry's linked page and extract the full article; "
                          "feed and page metadata are merged field by field (the richer "
                          "wins, recorded in field_sources). Pages already in OUT are not "
                          "fetched again.")
    web.add_argument("--allow-private-network", action="store_true",
                     help="allow loopback, private, link-local and other non-public "
                          "addresses (refused by default, redirects included, after DNS)")
    web.add_argument("--allow-network", action="append", default=[], metavar="CIDR",
                     help="allow one non-public network only, e.g. 10.1.0.0/16 (repeatable)")
    web.add_argument("--ignore-robots", action="store_true",
                     help="fetch linked pages even where robots.txt disallows it")
    policy = FetchPolicy()
    web.add_argument("--rate-per-host", type=float, default=policy.rate_per_host,
                     metavar="N", help="requests per second to one host (default "
                     f"{policy.rate_per_host:g})")
    web.add_argument("--timeout", type=float, default=policy.read_timeout, metavar="SECONDS",
                     help=f"read timeout of a request (default {policy.read_timeout:g}); "
                          f"connect timeout {policy.connect_timeout:g}, whole response "
                          f"{policy.total_timeout:g}")
    web.add_argument("--retries", type=int, default=policy.retries, metavar="N",
                     help="retries on connection errors, timeouts, 429 and 5xx, with "
                          f"exponential backoff and Retry-After (default {policy.retries})")
    web.add_argument("--contact", default=policy.contact, metavar="URL",
                     help="your URL or e-mail address, sent in the User-Agent so the sites "
                          "you fetch from can reach you (default: none, with a warning)")
    if not stream:  # a stream has no end of run to judge it at
        parser.add_argument("--max-reject-ratio", type=_ratio, default=None, metavar="R",
                            help="exit with code 5 when rejects / input units exceeds R (e.g. "
                                 "0.05), so a scheduler can alert; the data is still written")
    if not stream:
        parser.add_argument(
            "--batch-files", type=_count, default=None, metavar="N",
            help="run the input files in batches of at most N, one after another, each a run "
                 "of its own into OUT (with its own manifest). The DirectRunner holds a whole "
                 "run in memory; in batches it holds N files' worth. Batches are formed by "
                 "file content, so the same files make the same batches whatever their names; "
                 "a copy of an article an earlier batch stored is a duplicate of it, as across "
                 "scheduled runs. Feed URLs go with the first batch. Default: one run, or "
                 "batches as large as memory allows when one DirectRunner run of the input "
                 "would need more than half of this machine's memory (or of --max-memory); "
                 "0: one run whatever it needs.")
        parser.add_argument(
            "--max-memory", type=_size, default=None, metavar="SIZE",
            help="the memory a DirectRunner run may hold (e.g. 4GB; a bare number is bytes; "
                 "default: this machine's memory, or a container's limit, read on Linux). "
                 "Without --batch-files, an input whose one run would need more than half of "
                 "it runs in batches (see --batch-files); the memory warning of a run uses it "
                 "too. It cannot raise the machine's own limit.")
        parser.add_argument(
            "--batch-lines", type=_positive, default=None, metavar="M",
            help="cut each JSONL dump that is read in pieces (uncompressed, larger than 8 MB or "
                 "--max-bytes) into runs of at most M lines, one after another, each a run "
                 "of its own into OUT as with --batch-files (which counts a dump as one "
                 "file). Its lines keep the numbers of a whole read. The dumps' runs come "
                 "first, the other files after them.")
    parser.add_argument("--break-lock", action="store_true",
                        help="remove a lock left on OUT by a run that was killed")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and the "
                        "final summary.")


def single_local_worker(beam_args: list[str] | tuple[str, ...]) -> bool:
    """The DirectRunner with one worker (the default): nothing to spread work over."""
    from apache_beam.options.pipeline_options import PipelineOptions

    opts = PipelineOptions(list(beam_args)).get_all_options()
    runner = str(opts.get("runner") or DEFAULT_RUNNER)
    return runner in ("DirectRunner", "direct") and int(opts.get("direct_num_workers") or 1) == 1


def config_from_args(args: argparse.Namespace, beam_args: list[str],
                     now: datetime | None = None, files: bool = True) -> Config:
    if not args.output:
        raise UsageError("the following arguments are required: -o/--output")
    # Beam's filesystems of gs://, s3://, hdfs:// take their settings (credentials, region,
    # --hdfs_host...) from the pipeline options; every FileSystems call made here, before the
    # pipeline exists, needs them too (an s3:// OUT failed with "Must provide one of client
    # or options", found by review)
    from apache_beam.options.pipeline_options import PipelineOptions

    FileSystems.set_options(PipelineOptions(list(beam_args)))
    if args.steps is not None and not any(s.strip() for s in args.steps):
        raise UsageError("--steps is empty: name steps, or leave it out for the default chain")
    try:
        steps = resolve_steps(args.steps)
    except StepSpecError as exc:
        raise UsageError(f"--steps: {exc}") from exc
    signature = NearConfig(
        shingle_size=args.shingle_size, num_perm=args.num_perm, bands=args.bands,
        jaccard=args.near_threshold, containment=args.containment,
        boilerplate_df=args.boilerplate_df,
    )
    try:
        signature.validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    feeds = [check_feed_url(spec, "INPUT") for spec in args.inputs if is_url(spec)]
    if getattr(args, "feeds", None):
        feeds.extend(read_feed_list(args.feeds))
    # the flags first: a bad value is said before a large input folder is walked (and before
    # the walk's warnings)
    policy = FetchPolicy(
        read_timeout=args.timeout, retries=args.retries, rate_per_host=args.rate_per_host,
        contact=args.contact, allow_private=args.allow_private_network,
        allow_networks=tuple(args.allow_network), ignore_robots=args.ignore_robots,
        max_bytes=args.max_bytes,
    )
    try:
        policy.validate()
    except ValueError as exc:
        raise UsageError(_policy_message(str(exc))) from exc
    batch_files = getattr(args, "batch_files", None)
    batch_lines = getattr(args, "batch_lines", None)
    for flag, value, least in (("--batch-files", batch_files, 0),
                               ("--batch-lines", batch_lines, 1)):
        if value is not None and (type(value) is not int or value < least):
            # a config file's value, which argparse did not check
            raise UsageError(f"{flag} must be a whole number, {least} or more: {value!r}")
    file_specs = [spec for spec in args.inputs if not is_url(spec)] if files else []
    inputs = (expand_inputs(file_specs, args.output)
              if files and (file_specs or not feeds) else ())
    if (feeds or getattr(args, "follow_links", False)) and not policy.contact:
        LOG.warning("fetching without --contact: set it to your URL or e-mail address so the "
                    "sites you fetch from can reach you (it goes in the User-Agent)")
    output = prepare_output(args.output)
    started = (now or getattr(args, "ingested_at", None)
               or datetime.now(timezone.utc)).astimezone(timezone.utc)
    started = started.replace(microsecond=0)
    feeds = sorted(set(feeds))
    # surrogateescape: a file name that is not UTF-8 (an old archive) must not stop the run
    digest = hashlib.sha256("\n".join([*inputs, *feeds]).encode(
        "utf-8", "surrogateescape")).hexdigest()[:8]
    run_id = free_run_id(output, f"{started:%Y%m%dT%H%M%SZ}-{digest}")
    if not any(a == "--runner" or a.startswith("--runner=") for a in beam_args):
        # Chosen explicitly: Beam's default may try to download the Prism runner (offline hang).
        beam_args = [f"--runner={DEFAULT_RUNNER}", *beam_args]
    try:
        # FlinkRunner / SparkRunner: job-server jar, local master, LOOPBACK (pipeline/runners.py)
        beam_args, runner_setup = runner_defaults(list(beam_args))
    except RunnerSetupError as exc:
        raise UsageError(str(exc)) from exc
    return Config(
        inputs=inputs,
        output_dir=output,
        run_id=run_id,
        ingested_at=started,
        max_bytes=args.max_bytes,
        beam_args=tuple(beam_args),
        runner_setup=runner_setup,
        spread_inputs=not single_local_worker(beam_args),
        requested_inputs=tuple(redact(spec) for spec in args.inputs),
        quiet=args.quiet,
        progress=progress_mode(args.quiet),
        max_reject_ratio=getattr(args, "max_reject_ratio", None),
        batch_files=batch_files,
        batch_lines=batch_lines,
        max_memory=getattr(args, "max_memory", None),
        steps=steps,
        config_file=getattr(args, "config", None),
        signature=signature,
        near_detection=not args.no_dedupe,
        break_lock=args.break_lock,
        feeds=tuple(feeds),
        follow_links=args.follow_links,
        fetch=policy,
    )
