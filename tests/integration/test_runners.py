"""The same pipeline on other runners gives the same dataset (integration tier).

The CLI runs samples/ on the portable FlinkRunner and SparkRunner (embedded cluster, LOOPBACK
harness, job-server jars from scripts/get_jobserver.sh, cached) and on the DirectRunner with
two worker processes; each dataset must equal a single-process DirectRunner run's: the same
article ids, the same duplicate decisions (article_id, duplicate_of, method) and the same
reject reasons (input_path, reason), with balanced accounting.

Times on the 2-core dev machine (Beam 2.77, Java 17; docs/runners.md): DirectRunner 4 s,
multi-processing 6 s, Flink 12 s, Spark 12 s with the JVM flags below (19 s and 16 s without);
the first run also fetches the jars (about 25 s each through Maven).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline.runners import RunnerSetupError, runner_defaults, tied_launcher
from tests.conftest import REPO

# one xdist worker takes the whole tier (`.ci/run` runs the suite with `-n 2 --dist loadgroup`):
# its module fixture (the single-process reference run) runs once, and two JVM clusters never
# start at once
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("runners")]

INGESTED_AT = "2026-01-15T12:00:00Z"
RUN_TIMEOUT_S = 300
# A short local job is mostly JVM start-up: the C1 compiler alone and the serial collector
# take the Flink run from 19 s to 12 s and the Spark run from 16 s to 12 s.
FAST_JVM = ["--job_server_jvm_property=-XX:TieredStopAtLevel=1",
            "--job_server_jvm_property=-XX:+UseSerialGC"]
TIMINGS: dict[str, float] = {}


def job_servers() -> set[int]:
    """Process ids of the job servers Beam starts (a Flink or Spark job-server JVM, Prism) for
    this test session: their environment holds the session's TMPDIR (tests/conftest.py), which
    every process the tests start inherits, so job servers of other work on the machine do
    not count."""
    mine = f"TMPDIR={os.environ.get('TMPDIR', '')}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            if not (b"job-server" in cmdline or b"/prism " in cmdline
                    or cmdline.endswith(b"/prism")):
                continue
            if mine not in (entry / "environ").read_bytes().split(b"\0"):
                continue
        except OSError:
            continue
        found.add(int(entry.name))
    return found


def no_new_job_server(before: set[int], grace_s: float = 10.0) -> set[int]:
    """The job servers started since ``before`` still alive after ``grace_s`` (none, if the
    run stopped what it started)."""
    deadline = time.monotonic() + grace_s
    while (left := job_servers() - before) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def newsbeam_run(out: Path, beam_args: list[str]) -> float:
    """Run the CLI on samples/ into ``out``; returns the wall time in seconds. The run must
    stop any job server it started (a JVM left behind per run would fill the machine)."""
    cmd = [sys.executable, "-m", "pipeline", "run", "samples", "--output", str(out),
           "--ingested-at", INGESTED_AT, "-q", *beam_args]
    servers_before = job_servers()
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, (
        f"newsbeam run {' '.join(beam_args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    assert not no_new_job_server(servers_before), "the run left its job server running"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return elapsed


def dataset(out: Path) -> dict[str, Any]:
    """What must not depend on the runner."""
    import pandas as pd

    articles = pd.read_parquet(out / "articles")
    duplicates = pd.read_parquet(out / "duplicates")
    rejects = pd.read_parquet(out / "rejects")
    manifest = json.loads(next((out / "_runs").glob("*.json")).read_text())
    return {
        "article_ids": sorted(articles["article_id"]),
        "duplicates": sorted(duplicates[["article_id", "duplicate_of", "method"]]
                             .itertuples(index=False, name=None)),
        "rejects": sorted(rejects[["input_path", "reason"]].itertuples(index=False, name=None)),
        "counts": manifest["counts"],
        "balanced": manifest["accounting"]["balanced"],
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("direct")
    TIMINGS["DirectRunner"] = newsbeam_run(out, ["--runner", "DirectRunner"])
    ref = dataset(out)
    assert ref["balanced"] and ref["article_ids"] and ref["duplicates"] and ref["rejects"]
    return ref


def portable_args(runner: str) -> list[str]:
    """The flags runner_defaults adds, with the jar from scripts/get_jobserver.sh (cached)."""
    if runner == "PrismRunner":
        try:
            args, added = runner_defaults(["--runner", runner])
        except RunnerSetupError as exc:
            pytest.skip(f"no Prism binary and it cannot be built here: {exc}")
        assert Path(added["prism_location"]).is_file()
        return args
    if shutil.which("java") is None:
        pytest.skip(f"{runner} needs Java 11+ on PATH for its job server (java not found)")
    t0 = time.monotonic()
    try:
        args, added = runner_defaults(["--runner", runner])
    except RunnerSetupError as exc:
        if shutil.which("mvn") is None:
            pytest.skip(f"no cached {runner} job-server jar and no Maven to fetch one: {exc}")
        raise
    TIMINGS[f"{runner} jar"] = time.monotonic() - t0
    assert Path(added[f"{runner.removesuffix('Runner').lower()}_job_server_jar"]).is_file()
    return [*args, *FAST_JVM]


@pytest.mark.parametrize("runner_args", [
    pytest.param(["FlinkRunner"], id="flink"),
    pytest.param(["SparkRunner"], id="spark"),
    pytest.param(["PrismRunner"], id="prism"),
    pytest.param(["--runner", "DirectRunner", "--direct_num_workers", "2",
                  "--direct_running_mode", "multi_processing"], id="direct-multiprocessing"),
])
def test_same_dataset_as_the_direct_runner(runner_args: list[str], reference: dict[str, Any],
                                           tmp_path: Path) -> None:
    args = portable_args(runner_args[0]) if len(runner_args) == 1 else runner_args
    if runner_args == ["FlinkRunner"]:
        # an option only Java's FlinkPipelineOptions declares reaches the job server (a
        # misspelt one is refused: test_a_misspelt_flink_job_server_option_is_refused)
        args = [*args, "--max_bundle_size=50"]
    name = runner_args[0] if len(runner_args) == 1 else "DirectRunner multi_processing x2"
    # the run inherits TMPDIR (a folder of this test session, tests/conftest.py)
    temp_before = set(Path(tempfile.gettempdir()).iterdir())
    TIMINGS[name] = newsbeam_run(tmp_path / "out", args)
    # Beam's portable runners leave two temporary folders per run; newsbeam removes them
    assert set(Path(tempfile.gettempdir()).iterdir()) == temp_before
    got = dataset(tmp_path / "out")
    assert got["article_ids"] == reference["article_ids"]
    assert got["duplicates"] == reference["duplicates"]
    assert got["rejects"] == reference["rejects"]
    assert got["counts"] == reference["counts"]
    assert got["balanced"], "the run's accounting does not balance (Beam metrics lost?)"
    print(f"{name}: {TIMINGS[name]:.1f}s; timings so far: "
          + ", ".join(f"{k} {v:.1f}s" for k, v in TIMINGS.items()))


def test_a_misspelt_flink_job_server_option_is_refused(tmp_path: Path) -> None:
    """An option neither Python's Beam nor Flink's job server declares ends the command with
    one line and exit 2 once the job server has said what it takes, before any job runs,
    and leaves no job server (one it declares passes: the Flink run of
    test_same_dataset_as_the_direct_runner gives --max_bundle_size)."""
    args = portable_args("FlinkRunner")
    servers_before = job_servers()
    bad = subprocess.run([sys.executable, "-m", "pipeline", "run", "samples", "-q", *args,
                          "--output", str(tmp_path / "bad"), "--max_bundel_size=50"],
                         cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                         stdin=subprocess.DEVNULL)
    assert bad.returncode == 2, bad.stderr[-3000:]
    assert bad.stderr.strip().splitlines() == [
        "newsbeam: error: unknown option --max_bundel_size (not a newsbeam or Beam option, "
        "nor one the runner's job server takes)"]
    assert not (tmp_path / "bad" / "_runs").exists()
    assert not no_new_job_server(servers_before), "the run left its job server running"


@pytest.mark.parametrize("runner", ["FlinkRunner", "SparkRunner"])
def test_a_jsonl_dump_in_pieces_on_a_cluster_runner(runner: str, tmp_path: Path) -> None:
    """The pieces of a dump (``--max-bytes 900``: four pieces of the samples' dump, its
    815-byte line the longest, plus a copy of its first record at another URL) are read,
    counted and numbered on the engine as on the DirectRunner, and give the dataset of a
    whole read."""
    lines = (REPO / "samples" / "dumps" / "crawl-2024-03.jsonl").read_text().split("\n")
    copy = json.loads(lines[0])
    copy["url"] += "?copy"
    dump = tmp_path / "dump.jsonl"
    dump.write_text("\n".join([*lines, json.dumps(copy)]) + "\n", encoding="utf-8")

    def run(out: Path, *args: str) -> dict[str, Any]:
        cmd = [sys.executable, "-m", "pipeline", "run", str(dump), "--output", str(out),
               "--ingested-at", INGESTED_AT, "-q", *args]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return dataset(out)

    whole = run(tmp_path / "whole", "--runner", "DirectRunner")
    got = run(tmp_path / "pieces", "--max-bytes", "900", *portable_args(runner))
    assert got == whole and got["article_ids"] and got["duplicates"] and got["rejects"]


@pytest.mark.parametrize("runner", [
    pytest.param("PrismRunner", id="prism"),
    pytest.param("FlinkRunner", id="flink"),
])
def test_a_stream_writes_what_a_batch_run_writes(runner: str, reference: dict[str, Any],
                                                 tmp_path: Path) -> None:
    """`newsbeam stream samples` (all files already there, so all arrive in the first window,
    whose dedupe is the batch dedupe) gives the batch run's dataset: streamed articles cannot
    be told from batch ones. On Flink the unbounded graph runs in the embedded cluster."""
    args = portable_args(runner)
    if runner == "FlinkRunner":
        args = [a for a in args if not a.startswith("--prism")]
    out = tmp_path / "out"
    # Flink: the job server assembled here (Beam 2.62) does not advance the watermark of the
    # stream's Watch step (Beam issue #19637), so its windows commit when the stream stops.
    # The stop can come at once: a folder poll that finds the stop file still emits the files
    # it lists (transforms/streaming.py), so the samples arrive whenever the job starts.
    stop = [] if runner == "PrismRunner" else ["--stop-after", "3s"]
    cmd = [sys.executable, "-m", "pipeline", "stream", "samples", "--output", str(out),
           "--window", "2s", "--poll", "1s", *stop, *([] if runner == "PrismRunner" else args)]
    servers_before = job_servers()
    t0 = time.monotonic()
    log = tmp_path / "stderr"
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err,
                                stdin=subprocess.DEVNULL)
    # every file is there from the start, so the first window holds them all: stopped once
    # it has committed (a fixed --stop-after would have to allow for a slow start)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not stop and " committed: " not in log.read_text() and time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    if not stop:
        proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=RUN_TIMEOUT_S)
    TIMINGS[f"{runner} stream"] = time.monotonic() - t0
    assert proc.returncode == 0, log.read_text()[-3000:]
    # the assembled job server's limit is said at the start, not found out by the user
    assembled = any(a.endswith("-assembled.jar") for a in args) and runner == "FlinkRunner"
    assert ("Beam issue #19637" in log.read_text()) == assembled
    assert not no_new_job_server(servers_before), "the stream left its job server running"
    import pandas as pd

    assert sorted(pd.read_parquet(out / "articles")["article_id"]) == reference["article_ids"]
    dups = pd.read_parquet(out / "duplicates")
    assert sorted(dups[["article_id", "duplicate_of", "method"]]
                  .itertuples(index=False, name=None)) == reference["duplicates"]
    rejects = pd.read_parquet(out / "rejects")
    assert sorted(rejects[["input_path", "reason"]].itertuples(index=False, name=None)) \
        == reference["rejects"]
    windows = [json.loads(p.read_text()) for p in (out / "_runs").glob("*.json")
               if not p.name.endswith("-stream.json")]
    assert windows and all(w["accounting"]["balanced"] for w in windows)
    assert {w["options"]["runner"] for w in windows} == {runner}


# runner_defaults without Java or a download: what it adds, and that the user's flags win.

def fake_jar(runner: str, cache_dir: str | None) -> str:
    return f"/cache/{runner}.jar"


def has_java(name: str) -> str | None:
    return f"/usr/bin/{name}"


def fake_tie(target: str, cache_dir: str | None) -> str:
    return f"/cache/tied-{target}"


TIED = {"job_server_java_launcher": "/cache/tied-java"}


@pytest.mark.parametrize("given, expected_added", [
    (["--runner", "FlinkRunner"],
     {"flink_master": "[local]", "parallelism": "2", "environment_type": "LOOPBACK",
      "flink_job_server_jar": "/cache/flink.jar", **TIED}),
    (["--runner=sparkrunner"],
     {"spark_master_url": "local[2]", "environment_cache_millis": "60000",
      "environment_type": "LOOPBACK", "spark_job_server_jar": "/cache/spark.jar", **TIED}),
    (["--runner=flink", "--flink_master", "host:8081"],  # a cluster: the jar, its launcher
     {"flink_job_server_jar": "/cache/flink.jar", **TIED}),
    (["--runner=SparkRunner", "--spark_master_url=spark://h:7077", "--spark_job_server_jar=x"],
     TIED),
    (["--runner=SparkRunner", "--spark_master_url=spark://h:7077", "--spark_job_server_jar=x",
      "--job_server_java_launcher=/opt/java"], {}),  # the user's launcher wins
    (["--runner=FlinkRunner", "--environment_type=PROCESS", "--parallelism=1",
      "--flink_job_server_jar=/j.jar"],
     {"flink_master": "[local]", **TIED}),
    (["--runner=FlinkRunner", "--job_endpoint=localhost:8099"],  # a running job server
     {"flink_master": "[local]", "parallelism": "2", "environment_type": "LOOPBACK"}),
    (["--runner=DirectRunner", "--direct_num_workers", "2"], {}),
    ([], {}),
])
def test_runner_defaults(given: list[str], expected_added: dict[str, str]) -> None:
    args, added = runner_defaults(given, fetch_jar=fake_jar, java=has_java, tie=fake_tie)
    assert added == expected_added
    assert args == [*given, *(f"--{k}={v}" for k, v in expected_added.items())]


_PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.argv[1], "300"])
print(child.pid, flush=True)
time.sleep(300)
"""


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) not on PATH")
def test_a_tied_launcher_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    """What keeps a SIGKILLed run from leaving its job server: the launcher's process is
    killed by the kernel when its parent dies, a plain child is not."""
    tied = tied_launcher("sleep", str(tmp_path / "cache"))
    assert tied is not None and Path(tied).parent == tmp_path / "cache" / "launchers"
    assert tied_launcher("sleep", str(tmp_path / "cache")) == tied  # written once
    plain = shutil.which("sleep")
    assert plain is not None
    alive = {}
    for name, launcher in (("tied", tied), ("plain", plain)):
        parent = subprocess.Popen([sys.executable, "-c", _PARENT, launcher],
                                  stdout=subprocess.PIPE, text=True)
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        deadline = time.monotonic() + 5  # the launcher has become sleep (after setpriv)
        while not _cmdline(child).startswith(os.path.realpath(plain)) \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 5
        while Path(f"/proc/{child}").exists() and _state(child) != "Z" \
                and time.monotonic() < deadline and name == "tied":
            time.sleep(0.05)
        alive[name] = Path(f"/proc/{child}").exists() and _state(child) != "Z"
        if alive[name]:
            os.kill(child, signal.SIGKILL)
    assert alive == {"tied": False, "plain": True}


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


def test_runner_defaults_without_java() -> None:
    with pytest.raises(RunnerSetupError, match="java.*not on PATH.*install Java"):
        runner_defaults(["--runner", "SparkRunner"], fetch_jar=fake_jar, java=lambda _: None)


@pytest.mark.parametrize("command", [["run", "samples", "--runner", "PrismRunner"],
                                     ["stream", "samples"]],  # stream: Prism by default
                         ids=["run-prism", "stream-default"])
def test_prism_without_go_is_one_clear_error(tmp_path: Path, command: list[str]) -> None:
    env = dict(__import__("os").environ, NEWSBEAM_CACHE=str(tmp_path / "cache"),
               NEWSBEAM_GO=str(tmp_path / "no-go"), PATH="/usr/bin:/bin")
    proc = subprocess.run([sys.executable, "-m", "pipeline", *command, "--output",
                           str(tmp_path / "out")], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("newsbeam: error")]
    assert len(lines) == 1 and "--prism_location" in lines[0] and "Go" in lines[0]
    assert not (tmp_path / "out" / "_runs").exists()


def test_sigterm_stops_the_job_server_too(tmp_path: Path) -> None:
    """A run on Prism stopped with SIGTERM exits 143 and takes its Prism process with it
    (killed by the default action, it would leave it running)."""
    args = portable_args("PrismRunner")
    cmd = [sys.executable, "-m", "pipeline", "run", "samples", "--output",
           str(tmp_path / "out"), "-q", *args]
    # a step marks the moment the job runs on Prism and then waits: the signal lands mid-run
    marker = tmp_path / "in-the-pipeline"
    cmd += ["--steps", "+tests.fixtures.custom_steps:mark_and_wait"]
    servers_before = job_servers()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL,
                            env={**os.environ, "NEWSBEAM_TEST_MARKER": str(marker)})
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None and not marker.exists():
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the signal"
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 143, err[-3000:]
    assert "Traceback" not in err
    assert not no_new_job_server(servers_before), "SIGTERM left the job server running"


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) not on PATH")
def test_sigkill_takes_the_job_server_too(tmp_path: Path) -> None:
    """A run killed outright (the OOM killer, kill -9) runs no exit handler; its Prism job
    server, started through newsbeam's tied launcher, dies with it all the same."""
    args = portable_args("PrismRunner")
    cmd = [sys.executable, "-m", "pipeline", "run", "samples", "--output",
           str(tmp_path / "out"), "-q", *args]
    servers_before = job_servers()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    # the job server is Prism itself, not setpriv before its exec (which ties it to the run)
    while time.monotonic() < deadline and proc.poll() is None \
            and not any(_exe(pid).endswith("prism") for pid in job_servers() - servers_before):
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be killed")
    started = job_servers() - servers_before
    proc.kill()
    proc.wait()
    assert started and not no_new_job_server(servers_before), \
        "SIGKILL left the job server running"
