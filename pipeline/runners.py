"""Defaults that let ``--runner FlinkRunner`` or ``--runner SparkRunner`` run with no other flag.

Beam's portable runners start a Java job server (a jar) that runs the job on an embedded
Flink or Spark cluster, and the Python code runs in an SDK harness. Locally the harness is
this very process (``--environment_type=LOOPBACK``), so the pipeline's modules are already
imported there and ``save_main_session`` is not needed. ``runner_defaults`` adds what such a
local run needs and the user did not give; a flag the user gives always wins.

Added when missing:

* FlinkRunner: ``--flink_master=[local]``; with a local master ``--parallelism=2`` and
  ``--environment_type=LOOPBACK``; ``--flink_job_server_jar`` (scripts/get_jobserver.sh flink).
* SparkRunner: ``--spark_master_url=local[2]``; with a local master
  ``--environment_cache_millis=60000`` and ``--environment_type=LOOPBACK``;
  ``--spark_job_server_jar`` (scripts/get_jobserver.sh spark).

Why each one (measured with Beam 2.77, see docs/runners.md): Beam's own default master for
Flink is ``[auto]``, which also starts an embedded cluster, but ``[local]`` says so; Spark's
default ``local[4]`` oversubscribes a 2-core machine. Without a jar Beam downloads
``beam-runners-flink-2.2-job-server-2.77.0.jar`` itself at run time, with no Maven settings
and no cache of ours (where that jar is not served: a 404 and a failed run).
``--environment_cache_millis`` keeps the loopback
harness between Spark stages instead of tearing it down and starting it again for each task
(faster, and without the "call already closed" stack traces on teardown).

A remote master (``--flink_master=host:8081``, ``--spark_master_url=spark://host:7077``) only
gets the jar: the SDK harness must then run beside the cluster's workers (``--environment_type``
DOCKER or PROCESS, or EXTERNAL), and the package must reach them (docs/runners.md).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LOG = logging.getLogger("newsbeam")

# in a checkout, pipeline/scripts is a link to the top-level scripts/; in an installed wheel,
# a copy of it (package data)
SCRIPT = Path(__file__).resolve().parent / "scripts" / "get_jobserver.sh"
PRISM_SCRIPT = SCRIPT.with_name("get_prism.sh")
LOCAL_PARALLELISM = 2
FLINK_LOCAL_MASTERS = ("[local]", "[auto]")
SPARK_LOCAL_MASTER = re.compile(r"^local(\[.+\])?$")  # as apache_beam's spark_runner
FETCH_TIMEOUT_S = 1200  # the script's own deadline is 900 s; this only guards against a hang
SPARK_ENVIRONMENT_CACHE_MS = 60_000


# apache_beam.runners.portability.job_server.SubprocessJobServer's temporary folder
JOB_SERVER_TEMP_PREFIX = "beam-temp"


class RunnerSetupError(Exception):
    """The portable runner cannot be set up (no java, no job-server jar); one line, with the
    fix."""


@contextmanager
def beam_scratch() -> Iterator[str]:
    """A temporary folder for what Beam makes while it builds and runs a pipeline in this
    process, removed afterwards. Beam's portable runners (Prism, Flink, Spark) make two
    temporary folders per run with ``tempfile.mkdtemp`` and never remove them, so an hourly
    job would fill the temp folder with them. For the duration, ``tempfile``'s default
    folder points into this one (this process only: workers and job servers keep theirs)."""
    scratch = tempfile.mkdtemp(prefix="newsbeam-beam-")
    # A portable runner's job server (the Flink or Spark JVM, the Prism binary) keeps running
    # until the interpreter exits; Beam stops it in an atexit handler that first removes the
    # server's temporary folder, made in here. Removing that folder before would make the
    # handler fail before it stops the server, and leave the JVM running for good (about 1 GB
    # per run). So the removal is registered now, before Beam registers its handler: atexit
    # runs last-in first-out, so the server is stopped first and its folder removed after.
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    previous = tempfile.tempdir
    tempfile.tempdir = scratch
    try:
        yield scratch
    finally:
        tempfile.tempdir = previous
        if not any(name.startswith(JOB_SERVER_TEMP_PREFIX) for name in os.listdir(scratch)):
            shutil.rmtree(scratch, ignore_errors=True)  # no server waits for its folder


# Threads of Beam's LOOPBACK worker (the SDK harness running in this process) whose gRPC
# streams the engine closes at the end of a job: Flink hangs up with CANCELLED ("Multiplexer
# hanging up"), Spark with UNAVAILABLE ("Stream removed"). Python prints a thread traceback
# for each, after a run that succeeded.
# the SDK harness's threads: run_worker_<n>-<m> under a job server, run_worker_<worker id> under
# Prism (e.g. run_worker_job-001[job]_ref_Environment_default_environment_1)
_HARNESS_THREADS = re.compile(r"(read_grpc_client_inputs|read_state|run_worker_\S+)")
_quiet_installed = False


def quiet_harness_teardown() -> None:
    """Log at debug level, instead of printing a traceback each, the gRPC errors with which
    the LOOPBACK worker's threads end when the engine hangs up after a job. Any other thread
    exception is printed as before; a job that really failed is reported by its result."""
    global _quiet_installed
    if _quiet_installed:
        return
    import grpc

    previous = threading.excepthook
    ended = (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)

    def hook(args: Any) -> None:
        exc, thread = args.exc_value, args.thread
        code = getattr(exc, "code", None)  # grpc.RpcError itself has none; its calls do
        if (isinstance(exc, grpc.RpcError) and callable(code) and thread is not None
                and _HARNESS_THREADS.fullmatch(thread.name) and code() in ended):
            LOG.debug("worker thread %s ended: %s %s", thread.name, code().name,
                      exc.details())
            return
        previous(args)

    threading.excepthook = hook
    _quiet_installed = True


# Beam's bundle state sampler (apache_beam/runners/worker/statesampler_fast.pyx) sleeps between
# samples, its period growing from 2 ms to 200 ms, and stopping it joins that thread ("may have
# to wait up to sampling_period_ms"): every bundle ends with a wait of up to 200 ms, about half
# the period on average. A run has some 50 stages. With 20 ms the AEB benchmark's 181-page run
# went from a median 1.145x trafilatura alone to 1.056x (6 rounds, the two settings' order
# alternated; faster in 5 of 6; docs/benchmarks.md, Extraction, Speed). The sampler thread
# holds no GIL while it sleeps; waking every 20 ms costs nothing measurable. The samplers
# created in this process are the DirectRunner's in-process worker's and a LOOPBACK worker's;
# the worker processes of the multi_processing mode set it at their start (pipeline/worker.py).
SAMPLING_PERIOD_MS = 20


def set_sampling_period(period_ms: int) -> int | None:
    """Make ``period_ms`` the maximum period of Beam's bundle state samplers created from now
    on, in this process. Returns the period it replaced, or None (and changes nothing) on a
    Beam whose ``StateSampler`` no longer takes ``sampling_period_ms`` as its one default
    argument."""
    from apache_beam.runners.worker import statesampler

    init = statesampler.StateSampler.__init__
    defaults = getattr(init, "__defaults__", None)
    if not (isinstance(defaults, tuple) and len(defaults) == 1 and isinstance(defaults[0], int)):
        return None
    init.__defaults__ = (period_ms,)
    return int(defaults[0])


@contextmanager
def short_sampling_period(period_ms: int = SAMPLING_PERIOD_MS) -> Iterator[None]:
    """Create Beam's bundle state samplers with a shorter maximum period while the block
    runs; the period before it comes back after it (a no-op where ``set_sampling_period``
    is)."""
    previous = set_sampling_period(period_ms)
    try:
        yield
    finally:
        if previous is not None:
            set_sampling_period(previous)


@contextmanager
def remembered_dofn_specs() -> Iterator[None]:
    """Compute Beam's ``userstate.get_dofn_specs`` once per DoFn while the block runs.

    Building and translating the pipeline asks for each DoFn's state and timer specs some
    ten times (``is_stateful_dofn``, ``validate_stateful_dofn``, ``to_runner_api``), and
    each call inspects the signature of every method of the DoFn: 938 calls and 0.38 s of a
    one-article run's 0.93 s (measured with a counting wrapper, 2026-11-27). The specs are
    read from the methods' default arguments, which do not change during a run. The cache
    holds each DoFn it saw, so an id is never reused while the block runs. A no-op on a Beam
    without that function."""
    from apache_beam.transforms import userstate

    original = getattr(userstate, "get_dofn_specs", None)
    if original is None:
        yield
        return
    seen: dict[int, tuple[Any, Any]] = {}

    def get_dofn_specs(dofn: Any) -> Any:
        hit = seen.get(id(dofn))
        if hit is None or hit[0] is not dofn:
            hit = seen[id(dofn)] = (dofn, original(dofn))
        return hit[1]

    userstate.get_dofn_specs = get_dofn_specs
    try:
        yield
    finally:
        userstate.get_dofn_specs = original


@contextmanager
def leaner_beam() -> Iterator[None]:
    """Both of the above, for the span of a run."""
    with short_sampling_period(), remembered_dofn_specs():
        yield


def runner_name(beam_args: list[str]) -> str | None:
    """The runner the args select, as Beam resolves it ('flink', 'spark', 'direct'...), or None.

    Beam accepts any case and an optional 'Runner' suffix (``--runner flink``) or a dotted
    class path; the last ``--runner`` wins, as with argparse.
    """
    value = _value(beam_args, "--runner")
    if value is None:
        return None
    name = value.rsplit(".", 1)[-1].lower()
    return name[: -len("runner")] if name.endswith("runner") and name != "runner" else name


def direct_engine(beam_args: list[str] | tuple[str, ...]) -> Any:
    """For the DirectRunner: its in-process engine (the FnApiRunner), built the way the
    DirectRunner builds it; None for any other runner.

    Beam 2.77's DirectRunner first tries Prism for every pipeline Prism supports. On a
    machine with internet it downloads Prism from GitHub and runs the job there, so a
    "DirectRunner" run would silently be a Prism run. Here, where the download fails, each run
    loses 0.3 s and leaves an empty /tmp/beam-temp* folder. Choosing the engine directly does
    what the user asked for."""
    if runner_name(list(beam_args)) not in (None, "direct"):
        return None
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    options = PipelineOptions(list(beam_args)).get_all_options()
    provision_info = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(
        pipeline_options=JobServiceHandle.encode_pipeline_options(options)))
    return _engine_class()(provision_info=provision_info)


BEAM_WORKER_MAIN = "apache_beam.runners.worker.sdk_worker_main"
WORKER_MAIN = "pipeline.worker_main"


@functools.cache
def _engine_class() -> type:
    """Beam's FnApiRunner, except that the worker processes of its ``multi_processing`` mode
    start from ``pipeline.worker_main`` (logging set up before Beam's imports) instead of
    Beam's entry point. The runner picks that command inside ``run_pipeline``, with no option
    to change it, by assigning ``_default_environment``: the assignment is where it is
    replaced."""
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.transforms import environments

    class DirectEngine(fn_runner.FnApiRunner):  # type: ignore[misc]
        @property  # type: ignore[override]
        def _default_environment(self) -> Any:
            return self.__dict__.get("_newsbeam_environment")

        @_default_environment.setter
        def _default_environment(self, environment: Any) -> None:
            if isinstance(environment, environments.SubprocessSDKEnvironment) and \
                    environment.command_string.endswith(f"-m {BEAM_WORKER_MAIN}"):
                environment = environments.SubprocessSDKEnvironment.from_command_string(
                    f"{shlex.quote(sys.executable)} -m {WORKER_MAIN}")
            self.__dict__["_newsbeam_environment"] = environment

    _register_prewarmed_workers()
    return DirectEngine


def _register_prewarmed_workers() -> None:
    """The FnApiRunner's handler for subprocess workers, in this process: Beam's, except that
    a worker of newsbeam's own command takes a process ``pipeline.prewarm`` started ahead
    (when one waits) instead of starting one. Beam registers its handler by the environment's
    URN; registering this one under the same URN replaces it."""
    from apache_beam.portability import python_urns
    from apache_beam.runners.portability import local_job_service
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    from pipeline import prewarm

    class PrewarmedSdkWorker(local_job_service.SubprocessSdkWorker):  # type: ignore[misc]
        def run(self) -> None:
            proc = None
            if self._worker_command_line.endswith(f"-m {WORKER_MAIN}"):
                proc = prewarm.take()
            if proc is None:
                super().run()
                return
            self._run_prewarmed(proc)

        def _run_prewarmed(self, proc: subprocess.Popen[bytes]) -> None:
            """Beam's ``SubprocessSdkWorker.run`` (apache-beam 2.77), with ``proc`` given its
            environment instead of a new process started with it (and the logging server on
            loopback, where Beam's listens on every interface)."""
            import grpc
            from apache_beam.portability.api import beam_fn_api_pb2_grpc, endpoints_pb2
            from apache_beam.utils import thread_pool_executor
            from google.protobuf import json_format, text_format

            logging_server = grpc.server(
                thread_pool_executor.shared_unbounded_instance(),
                options=[("grpc.http2.max_pings_without_data", 0),
                         ("grpc.http2.max_ping_strikes", 0)])
            logging_port = logging_server.add_insecure_port("localhost:0")
            logging_server.start()
            beam_fn_api_pb2_grpc.add_BeamFnLoggingServicer_to_server(
                local_job_service.BeamFnLoggingServicer(), logging_server)
            environment = dict(
                os.environ,
                CONTROL_API_SERVICE_DESCRIPTOR=text_format.MessageToString(
                    endpoints_pb2.ApiServiceDescriptor(url=self._control_address)),
                LOGGING_API_SERVICE_DESCRIPTOR=text_format.MessageToString(
                    endpoints_pb2.ApiServiceDescriptor(url=f"localhost:{logging_port}")),
                PIPELINE_OPTIONS=json_format.MessageToJson(
                    self._provision_info.provision_info.pipeline_options))
            if self._worker_id:
                environment["WORKER_ID"] = self._worker_id
            try:
                prewarm.hand_over(proc, environment)
            except OSError:  # it ended since it was taken: a new process, as Beam starts one
                logging_server.stop(0)
                proc.wait()
                super().run()
                return
            try:
                proc.wait()
                if proc.returncode:
                    raise RuntimeError(
                        f"Worker subprocess exited with return code {proc.returncode}")
            finally:
                if proc.poll() is None:
                    proc.kill()
                logging_server.stop(0)

    @worker_handlers.WorkerHandler.register_environment(python_urns.SUBPROCESS_SDK, bytes)
    class PrewarmedWorkerHandler(worker_handlers.SubprocessSdkWorkerHandler):  # type: ignore[misc]
        def start_worker(self) -> None:
            self.worker = PrewarmedSdkWorker(self._worker_command_line, self.control_address,
                                             self.provision_info, self.worker_id)
            self.worker_thread = threading.Thread(name="run_worker", target=self.worker.run)
            self.worker_thread.start()


WORKER_PLUGIN = "pipeline.worker"


def local_workers(beam_args: list[str] | tuple[str, ...]) -> str | None:
    """The DirectRunner's running mode when it runs several workers on this machine:
    ``multi_processing`` (worker processes it starts) or ``multi_threading``; else None."""
    if runner_name(list(beam_args)) not in (None, "direct"):
        return None
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

    mode = PipelineOptions(list(beam_args)).view_as(DirectOptions).direct_running_mode
    return mode if mode in ("multi_processing", "multi_threading") else None


def tallied_progress(beam_args: list[str] | tuple[str, ...]) -> bool:
    """Whether several workers on this machine each count a share of the inputs, so the
    progress line must add up their counts (pipeline/progress.py): the DirectRunner's
    multi-worker modes, and a portable runner's LOOPBACK environment (Flink's and Spark's
    embedded clusters and Prism run bundles side by side in this process, each with its own
    ShowProgress; a 16,000-page Flink run's own line ended at 7,953/16,000)."""
    args = list(beam_args)
    if local_workers(args):
        return True
    runner = runner_name(args)
    environment = _value(args, "--environment_type")
    if runner == "prism" and environment is None:
        return True  # Beam's PrismRunner runs LOOPBACK unless told otherwise
    return runner not in (None, "direct") and (environment or "").upper() == "LOOPBACK"


# Beam's own log levels for its worker processes: when the user gives one, Beam sets it in the
# worker before newsbeam's plugin runs, and the plugin keeps it (pipeline/logs.py)
# Beam's worker log level; its per-logger overrides (--sdk_harness_log_level_overrides) are
# applied on top of newsbeam's levels in the worker (pipeline/worker.py)
BEAM_WORKER_LEVEL_FLAG = "--default_sdk_harness_log_level"


def worker_plugin_args(beam_args: list[str] | tuple[str, ...]) -> list[str]:
    """``beam_args``, plus ``--beam_plugins=pipeline.worker`` for the DirectRunner's
    ``multi_processing`` mode, whose worker processes then set themselves up as the CLI's
    process is (pipeline/worker.py). Other runs are unchanged: their workers are this process
    (in_memory, LOOPBACK) or a cluster's, whose set-up is the cluster's."""
    args = list(beam_args)
    if local_workers(args) != "multi_processing":
        return args
    from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

    options = PipelineOptions(args)
    if WORKER_PLUGIN not in (options.view_as(SetupOptions).beam_plugins or []):
        args.append(f"--beam_plugins={WORKER_PLUGIN}")
    # Until the plugin runs, a worker logs its start-up at INFO (its options, twice over);
    # from Beam's own level on, only errors. The plugin then sets the CLI's levels.
    if not _given(args, BEAM_WORKER_LEVEL_FLAG):
        args.append(f"{BEAM_WORKER_LEVEL_FLAG}=ERROR")
    return args


def cache_root(cache_dir: str | None = None) -> Path:
    """newsbeam's cache (as scripts/get_jobserver.sh): ``cache_dir``, ``$NEWSBEAM_CACHE`` or
    ``~/.cache/newsbeam``."""
    return Path(cache_dir or os.environ.get("NEWSBEAM_CACHE")
                or Path.home() / ".cache" / "newsbeam")


def tied_launcher(target: str, cache_dir: str | None = None) -> str | None:
    """A launcher for ``target`` (java, the Prism binary) that the kernel kills when the
    process that started it dies.

    Beam stops the job server it started when newsbeam exits, even on SIGTERM, but a SIGKILL
    (the OOM killer, ``kill -9``, a scheduler's hard timeout) runs nothing: the job server, a
    JVM of about 1 GB for Flink or Spark, stayed behind. The launcher is a two-line shell
    script: ``exec setpriv --pdeathsig KILL -- TARGET "$@"`` (util-linux; the parent-death
    signal survives the exec). Beam starts the job server from the thread that runs the
    pipeline (newsbeam's main thread), which lives as long as the run. One gap remains: a
    newsbeam killed in the milliseconds between starting the launcher and ``setpriv`` taking
    effect. Returns None where ``setpriv`` is missing (not Linux): the target is then
    started as before."""
    setpriv = shutil.which("setpriv")
    found = shutil.which(target)
    if setpriv is None or found is None or not sys.platform.startswith("linux"):
        return None
    found = os.path.realpath(found)
    body = ("#!/bin/sh\n# newsbeam: the job server dies with the newsbeam process that "
            f"started it\nexec {shlex.quote(setpriv)} --pdeathsig KILL -- "
            f'{shlex.quote(found)} "$@"\n')
    name = f"{Path(found).name}-{hashlib.sha256(body.encode()).hexdigest()[:12]}.sh"
    folder = cache_root(cache_dir) / "launchers"
    path = folder / name
    if not path.is_file():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            with os.fdopen(fd, "w") as f:
                f.write(body)
            os.chmod(tmp, 0o755)
            os.replace(tmp, path)
        except OSError as exc:
            LOG.warning("cannot write a job-server launcher in %s (%s): a killed run may "
                        "leave its job server running", folder, exc)
            return None
    return str(path)


def runner_defaults(
    beam_args: list[str],
    cache_dir: str | None = None,
    *,
    fetch_jar: Callable[[str, str | None], str] | None = None,
    java: Callable[[str], str | None] = shutil.which,
    tie: Callable[[str, str | None], str | None] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Args for a working local FlinkRunner or SparkRunner run, and what was added.

    Returns ``(args, added)``: ``args`` is ``beam_args`` with the missing defaults appended
    (unchanged for any other runner), ``added`` maps each added option (without dashes) to
    its value, for the run manifest. ``cache_dir`` is where job-server jars are kept
    (default: the script's, ``$NEWSBEAM_CACHE`` or ``~/.cache/newsbeam``); ``fetch_jar``
    replaces the script (tests), ``tie`` replaces ``tied_launcher`` (tests). Raises
    ``RunnerSetupError`` when the job server cannot be had.
    """
    tie = tie or tied_launcher
    runner = runner_name(beam_args)
    if runner == "prism":
        return prism_defaults(beam_args, cache_dir, tie=tie)
    if runner not in ("flink", "spark"):
        return list(beam_args), {}
    label = "FlinkRunner" if runner == "flink" else "SparkRunner"
    added: dict[str, str] = {}

    if runner == "flink":
        master = _value(beam_args, "--flink_master")
        if master is None:
            master = added["flink_master"] = "[local]"
        local = master.strip() in FLINK_LOCAL_MASTERS
        if local and not _given(beam_args, "--parallelism"):
            added["parallelism"] = str(LOCAL_PARALLELISM)
    else:
        master = _value(beam_args, "--spark_master_url")
        if master is None:
            master = added["spark_master_url"] = f"local[{LOCAL_PARALLELISM}]"
        local = bool(SPARK_LOCAL_MASTER.match(master.strip()))
        if local and not _given(beam_args, "--environment_cache_millis"):
            added["environment_cache_millis"] = str(SPARK_ENVIRONMENT_CACHE_MS)
    if local and not _given(beam_args, "--environment_type"):
        added["environment_type"] = "LOOPBACK"

    jar_flag = f"--{runner}_job_server_jar"
    # A running job server (--job_endpoint) needs no jar, and no java here.
    if not _given(beam_args, "--job_endpoint"):
        launcher = _value(beam_args, "--job_server_java_launcher") or "java"
        if java(launcher) is None:
            raise RunnerSetupError(
                f"{label} starts a Java job server, but '{launcher}' is not on PATH: install "
                "Java 11 or newer (apt-get install openjdk-17-jre-headless), or pass "
                "--job_endpoint=HOST:PORT of a running job server")
        if not _given(beam_args, jar_flag):
            added[jar_flag[2:]] = (fetch_jar or fetch_job_server_jar)(runner, cache_dir)
        if not _given(beam_args, "--job_server_java_launcher"):
            tied = tie(launcher, cache_dir)
            if tied is not None:
                added["job_server_java_launcher"] = tied

    return [*beam_args, *(f"--{name}={value}" for name, value in added.items())], added


def prism_defaults(beam_args: list[str], cache_dir: str | None = None,
                   fetch: Callable[[str | None], str] | None = None,
                   tie: Callable[[str, str | None], str | None] | None = None,
                   ) -> tuple[list[str], dict[str, str]]:
    """PrismRunner: the binary built from Beam's Go module (scripts/get_prism.sh, cached), so
    Beam never tries GitHub (where it cannot reach it, its download has no timeout)."""
    added: dict[str, str] = {}
    if not _given(beam_args, "--prism_location") and not _given(beam_args, "--job_endpoint"):
        binary = (fetch or fetch_prism)(cache_dir)
        added["prism_location"] = (tie or tied_launcher)(binary, cache_dir) or binary
    if not _given(beam_args, "--prism_log_level"):
        added["prism_log_level"] = "warn"
    return [*beam_args, *(f"--{name}={value}" for name, value in added.items())], added


def fetch_prism(cache_dir: str | None = None) -> str:
    """The cached Prism binary's path, from scripts/get_prism.sh (builds it once with Go)."""
    return _script_output(PRISM_SCRIPT, [], cache_dir, "--prism_location",
                          "Prism runner binary")


def fetch_job_server_jar(runner: str, cache_dir: str | None = None) -> str:
    """The cached job-server jar's path, from scripts/get_jobserver.sh (downloads it once)."""
    return _script_output(SCRIPT, [runner], cache_dir, f"--{runner}_job_server_jar",
                          f"{runner} job-server jar")


def _script_output(script: Path, args: list[str], cache_dir: str | None, flag: str,
                   what: str) -> str:
    """Run one of newsbeam's fetch scripts: it prints a cached file's path on stdout and its
    progress on stderr (logged as it comes: a first download or build takes a while)."""
    if not script.is_file():
        raise RunnerSetupError(f"{script} is missing (newsbeam installed without its scripts): "
                               f"pass {flag}=PATH")
    env = dict(os.environ, NEWSBEAM_PYTHON=sys.executable)
    if cache_dir is not None:
        env["NEWSBEAM_CACHE"] = cache_dir
    proc = subprocess.Popen(["bash", str(script), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env=env)
    last_error: list[str] = []

    def relay() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip()
            if line:
                LOG.info("%s", line)
                last_error[:] = [line]

    relay_thread = threading.Thread(target=relay, daemon=True)
    relay_thread.start()
    watchdog = threading.Timer(FETCH_TIMEOUT_S, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        out = proc.stdout.read()
        code = proc.wait()
    finally:
        watchdog.cancel()
    relay_thread.join(timeout=5)
    path = out.strip().splitlines()[-1] if out.strip() else ""
    if code != 0 or not path or not os.path.isfile(path):
        why = last_error[0] if last_error else f"exit code {code}"
        why = why.split(": error: ", 1)[-1]
        raise RunnerSetupError(f"no {what} ({why}); pass {flag}=PATH to one")
    return path


def _given(args: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def _value(args: list[str], flag: str) -> str | None:
    """The last value given to ``flag`` (``--flag=v`` or ``--flag v``), or None."""
    value = None
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            value = arg[len(flag) + 1:]
        elif arg == flag and i + 1 < len(args):
            value = args[i + 1]
    return value
