"""The command line end to end: usage errors, help, a run on samples/ against golden rows,
reading the dataset back, and determinism across reruns and renamed inputs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tests.conftest import GOLDEN, REPO, SAMPLES, check_golden

INGESTED_AT = "2026-01-15T12:00:00Z"


def newsbeam(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def run_samples(out: Path, inputs: Path = SAMPLES, *extra: str) -> dict:
    """One run into ``out``; its manifest (a rerun with the same --ingested-at adds its own,
    RUNID-2, beside the first's)."""
    before = set((out / "_runs").glob("*.json"))
    proc = newsbeam("run", str(inputs), "--output", str(out), "--ingested-at", INGESTED_AT,
                    *extra)
    assert proc.returncode == 0, proc.stderr
    manifests = list(set((out / "_runs").glob("*.json")) - before)
    assert len(manifests) == 1
    return json.loads(manifests[0].read_text())


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("out")
    return out, run_samples(out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "no/such/file.xml", "--output", "{tmp}/o"], "input path does not exist"),
        # Beam's own answer advised `pip install apache-beam[gcp]` for any unknown scheme
        (["run", "ftp://example.org/feed.xml", "--output", "{tmp}/o"],
         "no filesystem for this INPUT (feeds are read over http and https; install "
         "apache-beam[gcp] for gs://, [aws] for s3://, [hadoop] for hdfs://): "
         "ftp://example.org/feed.xml"),
        # Beam's hdfs:// without its extra raised BeamIOError: a traceback
        (["run", "hdfs:///raw/2026-01-15", "--output", "{tmp}/o"],
         "no filesystem for this INPUT"),
        (["run", "samples/*.nothing", "--output", "{tmp}/o"], "glob matches no file"),
        (["run", "samples", "--output", "samples/kazakhstan_peacemaker.txt"],
         "--output is not a directory"),
        (["run", "samples"], "the following arguments are required: -o/--output"),
        (["run", "samples", "--output", "{tmp}/o", "--no-such-flag"], "unknown option"),
        # a Flink job server's own option means nothing to the DirectRunner
        (["run", "samples", "--output", "{tmp}/o", "--checkpointing_interval=5"],
         "unknown option --checkpointing_interval (not a newsbeam or Beam option)"),
        (["run", "samples", "--output", "{tmp}/o", "--runner", "FlinkRunner",
          "--checkpointing-interval=5"], "unknown option --checkpointing-interval"),
        (["run", "samples", "--output", "{tmp}/o", "--max-bytes", "lots"], "not a size"),
        (["run", "samples", "--output", "{tmp}/o", "--runner", "Nonsense"],
         "unknown --runner 'Nonsense'"),
        (["stream", "samples", "--output", "{tmp}/o", "--runner=Nonsense"], "unknown --runner"),
        (["run", "samples", "--output", "{tmp}/o", "--num-perm", "96", "--bands", "32"],
         "--num-perm must be a power of two"),
        (["frobnicate"], "invalid choice"),
        # a Beam option's bad value (Beam itself printed its whole usage: 129 lines)
        (["run", "samples", "--output", "{tmp}/o", "--direct_num_workers", "abc"],
         "argument --direct_num_workers: invalid int value: 'abc'"),
        (["run", "samples", "--output", "{tmp}/o", "--direct_running_mode=bogus"],
         "invalid choice: 'bogus'"),
        # FetchPolicy's checks name the flags the user typed, not its fields
        (["run", "samples", "--output", "{tmp}/o", "--timeout", "0"], "--timeout must be"),
        (["run", "samples", "--output", "{tmp}/o", "--allow-network", "10.0.0.300/8"],
         "--allow-network holds '10.0.0.300/8'"),
        (["run", "samples", "--output", "{tmp}/o", "--steps="], "--steps is empty"),
        (["run", "samples", "--output", "{tmp}/o", "--boilerplate-df", "0"],
         "--boilerplate-df must be at least 2"),
        # root may write in /sys by os.access, not by open
        (["run", "samples", "--output", "/proc/self"], "--output directory is not writable"),
        # argparse took "-1s" for an option ("expected one argument")
        (["stream", "samples", "--output", "{tmp}/o", "--poll", "-1s"],
         "argument --poll: a duration must be positive: '-1s'"),
        # a path that is not there is said so (not "no newsbeam dataset in ...")
        (["report", "{tmp}/nothing-here"], "nothing-here does not exist"),
        (["compact", "{tmp}/nothing-here"], "nothing-here does not exist"),
        (["compact", "samples"], "nothing to compact in samples"),
    ],
)
def test_user_mistakes_give_one_line_and_exit_2(tmp_path: Path, args: list[str],
                                                message: str) -> None:
    proc = newsbeam(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()  # nothing made


def test_help_documents_every_option() -> None:
    top = newsbeam("--help")
    assert top.returncode == 0 and "run" in top.stdout
    run = newsbeam("run", "--help")
    for flag in ("--output", "--max-bytes", "--ingested-at", "--quiet", "--runner",
                 "--direct_num_workers", "exit codes"):
        assert flag in run.stdout, flag


def _v(value: object) -> object:
    """A pandas cell as JSON: missing values are null."""
    if isinstance(value, str) or value is None:
        return value
    return None if pd.isna(value) else value


def _rel(path: str) -> str:
    return str(Path(path).relative_to(SAMPLES))


def golden_rows(out: Path) -> str:
    arts = pd.read_parquet(out / "articles")
    dups = pd.read_parquet(out / "duplicates")
    rejs = pd.read_parquet(out / "rejects")
    lines = []
    for r in arts.sort_values("article_id").itertuples():
        lines.append(json.dumps({
            "dataset": "articles", "article_id": r.article_id, "date": str(r.date),
            "date_source": r.date_source, "title": _v(r.title), "authors": list(r.authors),
            "url": _v(r.url), "input": _rel(r.input_path), "kind": r.input_kind,
            "published_at": None if pd.isna(r.published_at) else r.published_at.isoformat(),
            "language": _v(r.language), "words": int(r.word_count),
            "countries": list(r.countries), "quotes": len(r.quotes),
            "dateline": _v(r.dateline),
            "rights": None if r.rights is None else {k: _v(v) for k, v in r.rights.items()},
        }, ensure_ascii=False))
    for r in dups.sort_values(["article_id", "input_path"]).itertuples():
        lines.append(json.dumps({
            "dataset": "duplicates", "article_id": r.article_id, "duplicate_of": r.duplicate_of,
            "method": r.method, "input": _rel(r.input_path), "url": _v(r.url),
        }, ensure_ascii=False))
    for r in rejs.sort_values(["input_path", "reason"]).itertuples():
        lines.append(json.dumps({
            "dataset": "rejects", "input": _rel(r.input_path), "stage": r.stage,
            "reason": r.reason,
        }, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def test_samples_match_golden_rows(sample_run: tuple[Path, dict], update_golden: bool) -> None:
    out, _ = sample_run
    check_golden(GOLDEN / "samples_rows.jsonl", golden_rows(out), update_golden)


def test_manifest_accounts_for_every_unit(sample_run: tuple[Path, dict]) -> None:
    _, manifest = sample_run
    counts = manifest["counts"]
    assert counts["in"] == counts["articles"] + counts["duplicates"] + counts["rejects"]
    assert manifest["accounting"]["balanced"] is True
    assert manifest["status"] == "ok"
    assert manifest["inputs"]["files"] == len([p for p in SAMPLES.rglob("*") if p.is_file()])
    assert set(manifest["versions"]) >= {"apache-beam", "feedparser", "trafilatura", "pyarrow"}
    assert sum(manifest["rejects_by_reason"].values()) == counts["rejects"]
    assert manifest["options"]["runner"] == "DirectRunner"
    assert all(Path(f["path"]).exists() for f in manifest["files"])
    # a small run: its peak is recorded, and it is far from the memory warning
    assert 50 * 2**20 < manifest["memory"]["peak_rss_bytes"] < 8 * 2**30
    assert manifest["memory"]["warning"] is None


def test_output_layout_has_no_temporary_files(sample_run: tuple[Path, dict]) -> None:
    out, _ = sample_run
    visible = [p for p in out.rglob("*") if p.is_file()]
    assert not [p for p in visible if p.name.startswith(".") or "temp" in p.name.lower()]
    assert {p.relative_to(out).parts[0] for p in visible} == {
        "articles", "duplicates", "rejects", "_runs", "_index"}
    for p in (out / "articles").rglob("*.parquet"):
        assert p.parent.name.startswith("date=")
        assert p.stat().st_size > 0


def test_read_back_with_pandas_and_pyarrow(sample_run: tuple[Path, dict]) -> None:
    out, manifest = sample_run
    df = pd.read_parquet(out / "articles")
    assert len(df) == manifest["counts"]["articles"]
    for col in ("published_at", "updated_at", "ingested_at"):
        assert isinstance(df[col].dtype, pd.DatetimeTZDtype) and str(df[col].dt.tz) == "UTC"
    row = df[df.title == "Seal colony counted from the air for the first time"].iloc[0]
    assert list(row.authors) == ["Ida Lund", "Petter Vik"]
    assert list(row.categories) == ["Wildlife"]
    assert row.published_at.isoformat() == "2024-03-14T06:20:00+00:00"
    assert str(row.date) == "2024-03-14"
    assert df.word_count.dtype == "int32"
    table = ds.dataset(out / "articles", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == len(df)
    assert table.schema.field("published_at").type == pa.timestamp("us", tz="UTC")
    assert pa.types.is_list(table.schema.field("authors").type)
    assert pa.types.is_struct(table.schema.field("quotes").type.value_type)


def _decisions(out: Path) -> tuple[list[str], list[tuple[str, str, str]], list[str]]:
    arts = pd.read_parquet(out / "articles")
    dups = pd.read_parquet(out / "duplicates")
    rejs = pd.read_parquet(out / "rejects")
    return (
        sorted(arts.article_id),
        sorted(zip(dups.article_id, dups.duplicate_of, dups.method, strict=False)),
        sorted(rejs.reason),
    )


def test_same_input_same_ids_whatever_names_and_reruns(tmp_path: Path,
                                                       sample_run: tuple[Path, dict]) -> None:
    first, _ = sample_run
    # the same files under other names, in another directory order
    renamed = tmp_path / "renamed"
    for i, src in enumerate(sorted(p for p in SAMPLES.rglob("*") if p.is_file())):
        dest = renamed / f"z{99 - i:02d}" / f"copy-{i}-{src.name}"
        dest.parent.mkdir(parents=True)
        shutil.copy(src, dest)
    second = tmp_path / "second"
    # ... ingested at another time too: an id never depends on when it was read
    run_samples(second, renamed, "--direct_num_workers", "2",
                "--ingested-at", "2026-03-02T07:30:00Z")
    assert _decisions(first) == _decisions(second)
    # a rerun into the same output rewrites the same files: no row appears twice (into a
    # copy: the module's other tests read `first` as one run wrote it)
    again = tmp_path / "again"
    shutil.copytree(first, again)
    run_samples(again)
    assert _decisions(again)[0] == _decisions(second)[0]


def test_sample_article_end_to_end(sample_run: tuple[Path, dict]) -> None:
    """Issue 3's acceptance: the real plain-text article from ../shared/samples."""
    out, _ = sample_run
    df = pd.read_parquet(out / "articles")
    row = df[df.input_path.str.endswith("kazakhstan_peacemaker.txt")].iloc[0]
    assert row.title == "Kazakhstan Offers To Play Peacemaker For U.S., Russia & China"
    assert list(row.authors) == ["Azamat Batyrov"]
    assert row.published_at.date().isoformat() == "2018-11-26"
    assert row.updated_at.isoformat() == "2024-04-16T01:19:00+00:00"
    assert row.date_source == "text"
    for gone in ("Newsroom logo", "Last update", "\nNone\n", row.title, "By Azamat Batyrov"):
        assert gone not in row.text
    lead = "The 78-year-old leader, who has led Kazakhstan since its independence"
    assert row.text.count(lead) == 1
    assert row.language == "en"
    assert {"KZ", "US", "RU", "CN", "SY", "AF", "IR", "TR"} <= set(row.countries)
    by_him = [q for q in row.quotes if q["speaker"] and "Nazarbayev" in q["speaker"]]
    assert len(by_him) >= 5
    assert any(q["text"].startswith("Kazakhstan is ready to provide its platform") for q in by_him)


def test_steps_and_config_file_change_the_chain(tmp_path: Path) -> None:
    config = tmp_path / "newsbeam.toml"
    config.write_text('steps = ["-quotes", "+tests.fixtures.custom_steps:tag_ferries"]\n'
                      'max-bytes = "10MB"\n', encoding="utf-8")
    out = tmp_path / "out"
    manifest = run_samples(out, SAMPLES, "--config", str(config))
    assert "quotes" not in manifest["options"]["steps"]["fields"]
    assert manifest["options"]["max_bytes"] == 10 * 1024 * 1024
    df = pd.read_parquet(out / "articles")
    assert all(len(q) == 0 for q in df.quotes)
    ferry = df[df.title.str.contains("Ferry", na=False)]
    assert len(ferry) and all("ferry" in list(c) for c in ferry.categories)
    # a flag on the command line wins over the file; a bad step is a usage error
    proc = newsbeam("run", str(SAMPLES), "--output", str(tmp_path / "o2"), "--config",
                    str(config), "--steps", "nosuchstep")
    assert proc.returncode == 2 and "unknown step 'nosuchstep'" in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("stepz: [language]\n", encoding="utf-8")
    proc = newsbeam("run", str(SAMPLES), "--output", str(tmp_path / "o3"), "--config", str(bad))
    assert proc.returncode == 2 and "unknown option 'stepz'" in proc.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("steps: [a, b\nfoo: : :\n", encoding="utf-8")
    proc = newsbeam("run", str(SAMPLES), "--output", str(tmp_path / "o4"), "--config",
                    str(broken))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "is not valid YAML" in proc.stderr and "(line 2, column 4)" in proc.stderr
    # a switch given as a string: "false" is not false (argparse has no type to check it by)
    quoted = tmp_path / "quoted.toml"
    quoted.write_text('follow-links = "false"\n', encoding="utf-8")
    proc = newsbeam("run", str(SAMPLES), "--output", str(tmp_path / "o5"), "--config",
                    str(quoted))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "follow-links must be true or false, not 'false'" in proc.stderr
    assert not (tmp_path / "o5" / "_runs").exists()


def test_second_run_into_the_same_output_adds_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = newsbeam("run", str(SAMPLES), "--output", str(out), "--ingested-at", INGESTED_AT)
    assert first.returncode == 0, first.stderr
    before = {p: p.stat().st_mtime_ns for p in (out / "articles").rglob("*.parquet")}
    second = newsbeam("run", str(SAMPLES), "--output", str(out),
                      "--ingested-at", "2026-01-16T12:00:00Z")
    assert second.returncode == 0, second.stderr
    manifests = sorted((out / "_runs").glob("*.json"))
    assert len(manifests) == 2
    rerun = json.loads(manifests[-1].read_text())
    assert rerun["counts"]["articles"] == 0
    first_counts = json.loads(manifests[0].read_text())["counts"]
    assert rerun["counts"]["duplicates"] == first_counts["articles"] + first_counts["duplicates"]
    # earlier partitions are neither rewritten nor deleted
    assert {p: p.stat().st_mtime_ns for p in (out / "articles").rglob("*.parquet")} == before
    dups = pd.read_parquet(out / "duplicates")
    stored_ids = set(pd.read_parquet(out / "articles").article_id)
    assert set(dups.duplicate_of) <= stored_ids
    # each duplicate and reject row names the run that wrote it: its manifest's counts
    rejs = pd.read_parquet(out / "rejects")
    for run in (json.loads(m.read_text()) for m in manifests):
        assert (dups.run_id == run["run_id"]).sum() == run["counts"]["duplicates"]
        assert (rejs.run_id == run["run_id"]).sum() == run["counts"]["rejects"] > 0


def test_a_reader_that_leaves_stdout_does_not_fail_a_committed_run(tmp_path: Path) -> None:
    """``newsbeam run ... | head -0``: the summary meets a closed pipe after the commit. The run
    stands, its exit code judges the run (0), and no error is reported."""
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(SAMPLES), "--output", str(out),
         "--ingested-at", INGESTED_AT], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before anything was printed
    _out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "error" not in err.lower() and "Traceback" not in err, err
    manifest = json.loads(next((out / "_runs").glob("*.json")).read_text())
    assert manifest["status"] == "ok" and manifest["counts"]["articles"] > 0
    assert len(pd.read_parquet(out / "articles")) == manifest["counts"]["articles"]


def test_a_beam_option_before_the_inputs_keeps_its_value() -> None:
    """Beam's options pass through newsbeam's parser as unknown ones: written as
    ``--runner FlinkRunner`` before INPUT, the value was taken for an input. Values of
    Beam's flags are joined to them; newsbeam's own flags, Beam's switches and flags
    already written with '=' are left as they are."""
    from pipeline.main import beam_values_joined, make_parser, stray_inputs_moved

    parser = make_parser()
    argv = ["run", "-o", "out", "--runner", "FlinkRunner", "--direct_num_workers", "2",
            "--save_main_session", "news/", "--ingested-at", "2026-01-15T12:00:00Z",
            "--flink_master=[local]", "--streaming", "feeds/"]
    joined = beam_values_joined(argv, parser)
    assert joined == ["run", "-o", "out", "--runner=FlinkRunner", "--direct_num_workers=2",
                      "--save_main_session", "news/", "--ingested-at",
                      "2026-01-15T12:00:00Z", "--flink_master=[local]", "--streaming",
                      "feeds/"]
    args, extra = parser.parse_known_args(joined)
    # argparse leaves INPUTs after an option among the unknown ones (they went to Beam,
    # and feeds/ was silently not read): moved back; a job server's own flag keeps its value
    rest = stray_inputs_moved(args, [*extra, "--checkpointing_interval", "5", "later/"])
    assert args.inputs == ["news/", "feeds/", "later/"]
    assert rest == ["--runner=FlinkRunner", "--direct_num_workers=2", "--save_main_session",
                    "--flink_master=[local]", "--streaming", "--checkpointing_interval", "5"]
    assert beam_values_joined(["run", "news/", "-o", "out"], parser) == [
        "run", "news/", "-o", "out"]


def test_an_s3_output_without_its_extra_is_one_line(tmp_path: Path) -> None:
    """--output s3://... crashed with a traceback before anything ran: Beam's S3 filesystem
    was built without the pipeline options ("Must provide one of client or options"). With
    the options given, what is missing (boto3, from apache-beam[aws]) is said in one line."""
    try:
        import boto3  # noqa: F401
        pytest.skip("boto3 is installed: the store would be reached over the network")
    except ImportError:
        pass
    proc = newsbeam("run", str(SAMPLES / "pages"), "--output", "s3://bucket/newsbeam",
                    "--ingested-at", "2026-01-15T12:00:00Z")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "newsbeam: error: cannot reach --output s3://bucket/newsbeam: AssertionError: Missing "
        "boto3 requirement (install apache-beam[gcp] for gs://, [aws] for s3://, [hadoop] for "
        "hdfs://; credentials and settings as Beam options, docs/runners.md)"], proc.stderr


def test_a_run_needs_no_pandas(tmp_path: Path) -> None:
    """pandas comes with the test extras, not with newsbeam: the index's list columns asked
    pyarrow for a pandas dtype, so `pip install newsbeam` failed every run that wrote an
    index (found on a plain Python 3.10 install). Here pandas cannot be imported."""
    out = tmp_path / "out"
    code = (
        "import sys\n"
        "class NoPandas:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pandas':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoPandas())\n"
        "from pipeline.main import main\n"
        f"sys.exit(main(['run', {str(SAMPLES)!r}, '--output', {str(out)!r}, "
        f"'--ingested-at', {INGESTED_AT!r}, '-q']))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "accounting in=33 out=33 balanced" in proc.stdout
    assert list((out / "_index").glob("*.parquet"))


def test_a_concurrent_run_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / "_lock").write_text(json.dumps({
            "run_id": "other", "pid": holder.pid, "host": __import__("socket").gethostname(),
            "started": "2026-01-15T12:00:00+00:00"}))
        proc = newsbeam("run", str(SAMPLES), "--output", str(out))
        assert proc.returncode == 4
        assert "is in use by run other" in proc.stderr
        assert not (out / "_runs").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: the lock is stale, newsbeam says so, and --break-lock clears it
    proc = newsbeam("run", str(SAMPLES), "--output", str(out))
    assert proc.returncode == 4 and "--break-lock" in proc.stderr
    proc = newsbeam("run", str(SAMPLES), "--output", str(out), "--break-lock")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "_lock").exists()


def test_a_lock_taken_on_another_host_names_break_lock(tmp_path: Path) -> None:
    """Its pid means nothing here, so it may be alive or gone: the message says both ways
    out (it said only "wait", for ever if that run died), and --break-lock takes it."""
    from pipeline.lock import LockBusy, acquire

    (tmp_path / "_lock").write_text(json.dumps({
        "run_id": "old", "pid": 1, "host": "otherhost.invalid",
        "started": "2026-01-01T00:00:00+00:00"}))
    with pytest.raises(LockBusy) as refused:
        acquire(str(tmp_path), "new")
    assert "taken on another host" in str(refused.value)
    assert "rerun with --break-lock" in str(refused.value)
    acquire(str(tmp_path), "new", break_lock=True).release()
    assert not (tmp_path / "_lock").exists()


def test_a_lock_that_proves_its_holder_gone_is_removed_by_the_next_run(tmp_path: Path) -> None:
    """A lock names its process by host, boot, pid namespace and start time: while that
    process runs, a run is refused; once it is gone, or its pid belongs to another process,
    the next run removes the lock with a warning and runs (no --break-lock)."""
    import socket

    from pipeline.lock import identity

    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    def lock_of(pid: int, **fields: object) -> None:
        (out / "_lock").write_text(json.dumps({
            "run_id": "other", "pid": pid, "host": socket.gethostname(),
            "started": "2026-01-15T12:00:00+00:00", **identity(pid), **fields}))

    try:
        lock_of(holder.pid)
        proc = newsbeam("run", str(SAMPLES / "pages"), "--output", str(out))
        assert proc.returncode == 4 and "is in use by run other" in proc.stderr, proc.stderr
        # the same pid number, started at another time: another process, the lock is stale
        lock_of(holder.pid, start_ticks=1)
        proc = newsbeam("run", str(SAMPLES / "pages"), "--output", str(out))
        assert proc.returncode == 0, proc.stderr
        assert "removed the stale lock of run other" in proc.stderr
        lock_of(holder.pid)
    finally:
        holder.kill()
        holder.wait()
    proc = newsbeam("run", str(SAMPLES / "pages"), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "removed the stale lock of run other" in proc.stderr
    assert not (out / "_lock").exists()


STORY = (
    "The city council voted on Tuesday to expand the tram network to the northern districts, "
    "after two years of debate over its cost and route.\n\n"
    "The new line will run for eleven kilometres and serve about forty thousand residents, "
    "according to the transport department, which expects works to start next spring.\n\n"
    "Opponents argued that the money would be better spent on buses, which can be rerouted "
    "as the city grows, while supporters pointed to lower emissions and quieter streets."
)


def test_a_near_copy_in_a_later_run_is_a_duplicate_of_the_stored_story(tmp_path: Path
                                                                       ) -> None:
    out = tmp_path / "out"
    first = tmp_path / "run1.jsonl"
    first.write_text(json.dumps({"url": "https://a.example/tram", "title": "Tram vote",
                                 "text": STORY}) + "\n", encoding="utf-8")
    proc = newsbeam("run", str(first), "--output", str(out), "--ingested-at", INGESTED_AT)
    assert proc.returncode == 0, proc.stderr
    stored_id = pd.read_parquet(out / "articles").article_id.item()
    # a republished copy (new headline, new URL, a few words changed) and an unrelated story
    copy = STORY.replace("Tuesday", "Wednesday").replace("about forty", "some forty")
    second = tmp_path / "run2.jsonl"
    second.write_text(
        json.dumps({"url": "https://b.example/news/1", "title": "Council backs trams",
                    "text": copy + "\n\nRead the full story on our website."}) + "\n"
        + json.dumps({"url": "https://b.example/news/2", "title": "Harbour",
                      "text": STORY.replace("tram", "ferry").replace("council", "port")[::-1]})
        + "\n", encoding="utf-8")
    proc = newsbeam("run", str(second), "--output", str(out),
                    "--ingested-at", "2026-01-16T12:00:00Z")
    assert proc.returncode == 0, proc.stderr
    dups = pd.read_parquet(out / "duplicates")
    assert list(dups.method) == ["near"]
    assert dups.duplicate_of.item() == stored_id
    assert dups.url.item() == "https://b.example/news/1"
    assert len(pd.read_parquet(out / "articles")) == 2  # the stored story and the new one


def test_a_chain_of_copies_longer_than_the_label_rounds_joins_the_stored_story(
        tmp_path: Path) -> None:
    """A story stored by a first run, then 13 versions, each shifted by two paragraphs from
    the one before it: each is a near copy of its neighbours only, so the last is 13 hops from
    the stored story, more than label propagation's rounds. All 13 are duplicates of it."""
    paragraphs = [" ".join(f"w{i}x{j}" for j in range(7)) for i in range(40)]

    def version(k: int) -> str:
        return json.dumps({"url": f"https://chain.example/{k}", "title": f"Version {k}",
                           "published": f"2026-01-{k + 1:02d}T08:00:00Z",
                           "text": "\n\n".join(paragraphs[2 * k:2 * k + 10])}) + "\n"

    out = tmp_path / "out"
    first = tmp_path / "run1.jsonl"
    first.write_text(version(0), encoding="utf-8")
    proc = newsbeam("run", str(first), "--output", str(out), "--ingested-at", INGESTED_AT)
    assert proc.returncode == 0, proc.stderr
    stored_id = pd.read_parquet(out / "articles").article_id.item()
    second = tmp_path / "run2.jsonl"
    second.write_text("".join(version(k) for k in (7, 3, 12, 1, 9, 5, 13, 2, 11, 4, 8, 6, 10)),
                      encoding="utf-8")
    proc = newsbeam("run", str(second), "--output", str(out),
                    "--ingested-at", "2026-01-16T12:00:00Z")
    assert proc.returncode == 0, proc.stderr
    dups = pd.read_parquet(out / "duplicates")
    assert sorted(dups.url) == sorted(f"https://chain.example/{k}" for k in range(1, 14))
    assert set(dups.method) == {"near"} and set(dups.duplicate_of) == {stored_id}
    assert pd.read_parquet(out / "articles").article_id.tolist() == [stored_id]


FOOTER = ("This report is provided for information only and does not constitute advice. "
          "Copyright the Valley Press Association, all rights reserved; republication without "
          "written permission is prohibited under the terms of our syndication agreement, and "
          "subscribers may share one copy inside their own organisation only. Corrections and "
          "complaints go to the readers' editor, who answers every letter within ten working "
          "days and publishes a summary of the corrections made at the end of each month.")
BRIEFS = [
    "The morning ferry to the islands was delayed by two hours after an engine fault.",
    "The harbour board raised mooring fees by four percent for the summer season.",
    "A new bakery opened on the market square with a queue that reached the church.",
    "The school choir won the regional contest with a programme of folk songs from the coast.",
]


def _brief(i: int) -> str:
    return json.dumps({"url": f"https://valley.example/brief/{i}", "title": f"Brief {i}",
                       "text": f"{BRIEFS[i]}\n\n{FOOTER}"}) + "\n"


def test_a_footer_known_from_earlier_runs_is_boilerplate_in_a_later_one(tmp_path: Path
                                                                       ) -> None:
    """Three short stories with one long footer are kept (the footer is boilerplate in their
    run). A fourth with the same footer, alone in a later run, is kept too: the boilerplate
    count takes the paragraphs OUT holds into account (the index keeps their digests). Counted
    within the run only, the footer was ordinary text there, and the story a near copy of a
    stored one."""
    out = tmp_path / "out"
    first = tmp_path / "run1.jsonl"
    first.write_text("".join(_brief(i) for i in range(3)), encoding="utf-8")
    proc = newsbeam("run", str(first), "--output", str(out), "--ingested-at", INGESTED_AT)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_parquet(out / "articles")) == 3
    index = pd.read_parquet(out / "_index")
    assert all(len(p) == 2 for p in index.paragraphs)  # brief and footer, 8 words or more
    second = tmp_path / "run2.jsonl"
    second.write_text(_brief(3), encoding="utf-8")
    proc = newsbeam("run", str(second), "--output", str(out),
                    "--ingested-at", "2026-01-16T12:00:00Z")
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_parquet(out / "articles")) == 4
    assert not (out / "duplicates").exists() or pd.read_parquet(out / "duplicates").empty


def test_later_copies_of_a_stored_story_with_their_own_footers_are_duplicates(
        tmp_path: Path) -> None:
    """A story stored with one site's footer; a later run brings two other sites' copies,
    each with its own footer. The story's paragraphs are then in three articles (common), but
    they are most of each: all three are compared on their full text and both copies are
    duplicates of the stored story."""
    paragraphs = STORY.split("\n\n")
    footer = "Published by the {} under licence from the wire service; all rights reserved."

    def site(i: int, name: str) -> str:
        return json.dumps({"url": f"https://site{i}.example/trams", "title": f"Trams {i}",
                           "text": "\n\n".join([*paragraphs, footer.format(name)])}) + "\n"

    out = tmp_path / "out"
    first = tmp_path / "run1.jsonl"
    first.write_text(site(0, "Harbour Times"), encoding="utf-8")
    proc = newsbeam("run", str(first), "--output", str(out), "--ingested-at", INGESTED_AT)
    assert proc.returncode == 0, proc.stderr
    stored_id = pd.read_parquet(out / "articles").article_id.item()
    second = tmp_path / "run2.jsonl"
    second.write_text(site(1, "Valley Courier") + site(2, "Coast Daily"), encoding="utf-8")
    proc = newsbeam("run", str(second), "--output", str(out),
                    "--ingested-at", "2026-01-16T12:00:00Z")
    assert proc.returncode == 0, proc.stderr
    dups = pd.read_parquet(out / "duplicates")
    assert sorted(dups.url) == ["https://site1.example/trams", "https://site2.example/trams"]
    assert set(dups.method) == {"near"} and set(dups.duplicate_of) == {stored_id}
    assert len(pd.read_parquet(out / "articles")) == 1


def test_json_logs_reject_ratio_exit_code_and_stage_times(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = newsbeam("--log-format", "json", "run", str(SAMPLES), "--output", str(out),
                    "--max-reject-ratio", "0.1")
    assert proc.returncode == 5, proc.stderr  # 8 of 33 units are rejects in samples/
    assert "above --max-reject-ratio 0.1" in proc.stderr
    records = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    summary = next(r for r in records if r["message"] == "run summary")
    assert summary["data"]["counts"]["rejects"] == 8 and summary["level"] == "INFO"
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert "time       setup" in proc.stdout and "extract" in proc.stdout
    # the data is written all the same, the manifest says why the run failed, and a looser
    # ratio passes
    assert (out / "articles").exists()
    manifest = json.loads(next((out / "_runs").glob("*.json")).read_text())
    assert manifest["status"] == "rejects_over_limit"
    assert manifest["options"]["max_reject_ratio"] == 0.1
    again = newsbeam("run", str(SAMPLES), "--output", str(tmp_path / "o2"),
                     "--max-reject-ratio", "0.5")
    assert again.returncode == 0, again.stderr
    assert json.loads(next((tmp_path / "o2" / "_runs").glob("*.json")).read_text())[
        "status"] == "ok"


def test_progress_lines() -> None:
    import io

    from pipeline.progress import Reporter

    now = [0.0]
    stream = io.StringIO()
    rep = Reporter(100, "plain", stream, clock=lambda: now[0])
    for _ in range(50):
        now[0] += 0.5
        rep.tick()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("newsbeam: 20/100 inputs (20%), 2.0/s, ETA 40s")
    assert len(lines) == 2  # one plain line every 10 s
    tty = io.StringIO()
    rep = Reporter(3, "tty", tty, clock=lambda: now[0])
    for _ in range(3):
        now[0] += 1
        rep.tick()
    assert tty.getvalue().startswith("\r\x1b[K") and tty.getvalue().endswith("ETA 0s\n")


def test_an_open_progress_line_is_ended_before_a_log_record_or_an_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the line is redrawn without a newline until the run is done; a warning
    logged meanwhile, or the one-line error of a run that fails, starts a line of its own."""
    import io
    import logging

    from pipeline import logs
    from pipeline.main import EXIT_FAILED, _failure
    from pipeline.progress import Reporter

    now = [0.0]
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    rep = Reporter(3, "tty", clock=lambda: now[0])
    now[0] += 1
    rep.tick()
    assert not err.getvalue().endswith("\n")
    handler = logs._LineHandler(err)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.emit(logging.makeLogRecord({"levelname": "WARNING", "msg": "a warning"}))
    now[0] += 1
    rep.tick()
    assert _failure("pipeline", RuntimeError("boom")) == EXIT_FAILED
    lines = err.getvalue().split("\n")
    assert lines[0].endswith("newsbeam: 1/3 inputs (33%), 1.0/s, ETA 2s")
    assert lines[1] == "WARNING a warning"
    assert lines[2].endswith("ETA 1s")
    assert lines[3] == "newsbeam: error: the pipeline failed: RuntimeError: boom"
    logs.end_open_line()  # nothing left open
    assert err.getvalue().endswith("boom\n")


def test_worker_processes_count_into_one_progress_line(tmp_path: Path) -> None:
    """Two worker processes' ShowProgress count their shares into the tally folder; the
    launching process writes one line for the whole run."""
    import io
    import multiprocessing

    from pipeline.progress import TallyProgress, tally

    tally_dir = tmp_path / "tally"
    tally_dir.mkdir()
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_count_share, args=(str(tally_dir), n)) for n in (3, 4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    assert tally(str(tally_dir)) == 7
    tty = io.StringIO()
    with TallyProgress(str(tally_dir), 7, "tty", tty) as watch:
        pass
    assert watch.reporter.done == 7
    assert tty.getvalue().startswith("\r\x1b[Knewsbeam: 7/7 inputs (100%)")
    assert tty.getvalue().endswith("\n")
    (tally_dir / "junk.part").write_text("9")  # a count being written is not read
    (tally_dir / "torn").write_text("")
    assert tally(str(tally_dir)) == 7


@pytest.mark.parametrize("beam_args, tallied", [
    ([], False),
    (["--runner", "DirectRunner"], False),
    (["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"], True),
    (["--direct_running_mode=multi_threading"], True),
    (["--runner=FlinkRunner", "--environment_type=LOOPBACK", "--flink_master=[local]"], True),
    (["--runner", "SparkRunner", "--environment_type", "loopback"], True),
    (["--runner=PrismRunner", "--environment_type=LOOPBACK"], True),
    (["--runner", "PrismRunner"], True),  # Beam's default environment for Prism
    (["--runner=PrismRunner", "--environment_type=DOCKER"], False),
    (["--runner=FlinkRunner", "--environment_type=PROCESS"], False),  # a cluster's workers
    (["--runner=DataflowRunner"], False),
])
def test_progress_adds_up_the_workers_that_share_this_machine(beam_args: list[str],
                                                              tallied: bool) -> None:
    """Runs whose workers run side by side on this machine (worker processes, or a portable
    runner's LOOPBACK threads, each with its own ShowProgress) count into the tally folder;
    one worker, or a cluster's, writes its own line."""
    from pipeline.runners import tallied_progress

    assert tallied_progress(beam_args) is tallied


def _count_share(tally_dir: str, n: int) -> None:
    from pipeline.progress import ShowProgress

    fn = ShowProgress(7, "tty", tally_dir)
    fn.setup()
    for i in range(n):
        assert list(fn.process(f"p{i}")) == [f"p{i}"]
    fn.finish_bundle()


def test_a_kept_near_original_is_indexed_with_its_signature(tmp_path: Path) -> None:
    """An original with a near copy in its own run goes through the candidate joins; its
    index row must still carry its shingles and band keys, so that a copy in a later run is
    found against it."""
    out = tmp_path / "out"
    copy = STORY.replace("Tuesday", "Wednesday").replace("about forty", "some forty")
    first = tmp_path / "run1.jsonl"
    first.write_text(
        json.dumps({"url": "https://a.example/tram", "title": "Tram vote", "text": STORY,
                    "published": "2026-01-10T08:00:00Z"}) + "\n"
        + json.dumps({"url": "https://b.example/tram", "title": "Trams", "text": copy,
                      "published": "2026-01-11T08:00:00Z"}) + "\n", encoding="utf-8")
    proc = newsbeam("run", str(first), "--output", str(out), "--ingested-at", INGESTED_AT)
    assert proc.returncode == 0, proc.stderr
    kept = pd.read_parquet(out / "articles")
    assert list(kept.url) == ["https://a.example/tram"]
    index = pd.read_parquet(out / "_index")
    row = index[index.article_id == kept.article_id.item()]
    assert len(row) == 1 and len(row.shingles.item()) > 20 and len(row.bands.item()) == 32
    again = tmp_path / "run2.jsonl"
    again.write_text(json.dumps({"url": "https://c.example/t", "title": "Tram plan",
                                 "text": copy.replace("forty", "40")}) + "\n", encoding="utf-8")
    proc = newsbeam("run", str(again), "--output", str(out),
                    "--ingested-at", "2026-01-16T12:00:00Z")
    assert proc.returncode == 0, proc.stderr
    dups = pd.read_parquet(out / "duplicates")
    assert sorted(dups.method) == ["near", "near"]
    assert set(dups.duplicate_of) == {kept.article_id.item()}


def test_beam_scratch_scopes_temporary_folders_to_the_run() -> None:
    import tempfile

    from pipeline.runners import beam_scratch

    before = tempfile.gettempdir()
    with beam_scratch() as scratch:
        made = tempfile.mkdtemp()  # what Beam does, and never undoes, on a portable runner
        assert Path(made).parent == Path(scratch)
    assert not Path(scratch).exists() and not Path(made).exists()
    assert tempfile.gettempdir() == before


def test_bundles_run_with_a_short_state_sampling_period(tmp_path: Path) -> None:
    """Beam's state sampler makes each bundle wait up to its period (200 ms) when it ends;
    newsbeam's runs use 20 ms (pipeline/runners.py) and leave Beam's default as it was."""
    from apache_beam.runners.worker import statesampler

    from pipeline.runners import SAMPLING_PERIOD_MS, short_sampling_period

    out = tmp_path / "out"
    run_samples(out, SAMPLES, "--steps", "+tests.fixtures.custom_steps:record_sampling_period")
    tags = {c for cats in pd.read_parquet(out / "articles").categories for c in cats
            if c.startswith("sampling-period-")}
    assert tags == {f"sampling-period-{SAMPLING_PERIOD_MS}"}
    default = statesampler.DEFAULT_SAMPLING_PERIOD_MS
    with short_sampling_period(7):
        assert statesampler.StateSampler("s", None).sampling_period_ms == 7
    assert statesampler.StateSampler("s", None).sampling_period_ms == default


MULTI = ("--direct_num_workers", "2", "--direct_running_mode", "multi_processing")


def _worker_run(out: Path, *extra: str, beam: tuple[str, ...] = ()
                ) -> subprocess.CompletedProcess[str]:
    steps = "+tests.fixtures.custom_steps:record_sampling_period," \
        "+tests.fixtures.custom_steps:warn_once"
    proc = newsbeam(*extra, "run", str(SAMPLES), "--output", str(out), "--ingested-at",
                    INGESTED_AT, *MULTI, "--steps", steps, *beam)
    assert proc.returncode == 0, proc.stderr
    return proc


def _step_lines(proc: subprocess.CompletedProcess[str], out: Path) -> list[str]:
    """The step's warning lines, checked to be one per article."""
    lines = [line for line in proc.stderr.splitlines() if "step saw" in line]
    articles = len(pd.read_parquet(out / "articles"))
    seen = [line.rsplit("step saw ", 1)[1].rstrip('"}') for line in lines]
    assert len(seen) >= articles and len(seen) == len(set(seen))  # each unit once
    return lines


def test_two_worker_processes_are_set_up_as_the_cli_process(tmp_path: Path) -> None:
    """The multi_processing mode's worker processes start from pipeline/worker_main.py and
    load pipeline/worker.py (Beam's --beam_plugins hook): their bundles run with newsbeam's
    sampling period; a record logged in a worker (here: a step's warning for each article)
    reaches stderr once, in the CLI's format, without Beam's relayed copy; and stderr carries
    no Beam start-up chatter, no per-page notes."""
    from pipeline.runners import SAMPLING_PERIOD_MS

    out = tmp_path / "out"
    proc = _worker_run(out)
    tags = {c for cats in pd.read_parquet(out / "articles").categories for c in cats
            if c.startswith("sampling-period-")}
    assert tags == {f"sampling-period-{SAMPLING_PERIOD_MS}"}
    assert all(" WARNING newsbeam.teststep: step saw " in line
               for line in _step_lines(proc, out))
    for noise in ("Worker: severity", "Pipeline_options", "semi_persistent_directory",
                  "Discarding unparseable args", "sdk harness", "discarding data"):
        assert noise not in proc.stderr, proc.stderr
    # nothing of a worker's start-up either: the workers start from pipeline/worker_main.py,
    # which sets up logging before Beam's imports (Beam's own entry point printed two lines
    # a worker in Python's default format: the GCP client notice and "Logging handler created")
    foreign = [line for line in proc.stderr.splitlines() if " newsbeam: " not in line
               and "step saw" not in line and not line.startswith(("newsbeam", "  "))]
    assert foreign == [], proc.stderr


def test_worker_records_in_json_and_beam_levels_given_by_the_user(tmp_path: Path) -> None:
    """--log-format json reaches the workers; Beam's own worker log levels, when the user
    gives them, win over newsbeam's."""
    out = tmp_path / "out"
    proc = _worker_run(out, "--log-format", "json")
    assert all(json.loads(line)["logger"] == "newsbeam.teststep"
               for line in _step_lines(proc, out))
    assert "Worker: severity" not in proc.stderr
    quiet = _worker_run(tmp_path / "out2", beam=(
        "--sdk_harness_log_level_overrides", '{"newsbeam.teststep": "ERROR"}'))
    assert "step saw" not in quiet.stderr
    # overrides alone leave newsbeam's levels for everything else: no Beam start-up chatter
    for noise in ("Pipeline_options", "semi_persistent_directory", "sdk harness"):
        assert noise not in quiet.stderr, quiet.stderr


def _tty_run(*args: str) -> str:
    """`python -m pipeline ARGS` with its stderr on a terminal (a pty): what it showed."""
    import os
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(timeout=600) == 0, seen.decode(errors="replace")
    return seen.decode(errors="replace")


@pytest.mark.parametrize("mode", ["multi_processing", "multi_threading"])
def test_several_local_workers_write_one_progress_line(tmp_path: Path, mode: str) -> None:
    """On a terminal, a run on two workers ends with one progress line for all inputs (each
    worker alone sees part of them)."""
    text = _tty_run("run", str(SAMPLES), "--output", str(tmp_path / "out"),
                    "--direct_num_workers", "2", "--direct_running_mode", mode)
    manifest = json.loads(next((tmp_path / "out" / "_runs").glob("*.json")).read_text())
    inputs = manifest["inputs"]["files"]
    assert f"newsbeam: {inputs}/{inputs} inputs (100%)" in text, text


@pytest.mark.parametrize("workers", [(), ("--direct_num_workers", "2",
                                          "--direct_running_mode", "multi_processing")])
def test_the_pieces_of_a_jsonl_dump_move_the_progress_line(tmp_path: Path,
                                                           workers: tuple[str, ...]) -> None:
    """A dump read in pieces counts one part per piece, so a run of one big dump is not
    shown done (1/1) as soon as its path enters: with an article and a dump of 3 pieces the
    line counts 4 parts, on one worker and on two."""
    dump = SAMPLES / "dumps" / "crawl-2024-03.jsonl"  # 2,251 bytes: 3 pieces of 900
    page = SAMPLES / "kazakhstan_peacemaker.txt"
    text = _tty_run("run", str(dump), str(page), "--output", str(tmp_path / "out"),
                    "--max-bytes", "900", *workers)
    lines = re.findall(r"newsbeam: \d+/\d+ \w+ \(", text)
    assert lines and lines[-1] == "newsbeam: 4/4 parts (", text
    assert all(line.endswith("/4 parts (") for line in lines), text


def test_worker_plugin_args_only_for_the_multi_processing_mode() -> None:
    from pipeline.runners import worker_plugin_args

    multi = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
    assert worker_plugin_args(multi) == [*multi, "--beam_plugins=pipeline.worker",
                                         "--default_sdk_harness_log_level=ERROR"]
    # the user's own plugins and level stay; the plugin is not added twice
    mine = [*multi, "--beam_plugins=pipeline.worker", "--default_sdk_harness_log_level=INFO"]
    assert worker_plugin_args(mine) == mine
    theirs = [*multi, "--beam_plugins=mypkg.setup"]
    assert worker_plugin_args(theirs)[:len(theirs)] == theirs
    assert "--beam_plugins=pipeline.worker" in worker_plugin_args(theirs)
    # per-logger overrides alone: Beam's default worker level is still lowered
    overrides = [*multi, "--sdk_harness_log_level_overrides", '{"x": "INFO"}']
    assert worker_plugin_args(overrides)[-1] == "--default_sdk_harness_log_level=ERROR"
    for other in ([], ["--direct_running_mode", "multi_threading"],
                  ["--runner", "FlinkRunner", "--direct_running_mode", "multi_processing"]):
        assert worker_plugin_args(other) == other


def test_worker_plugin_in_a_worker_like_process() -> None:
    """Imported where Beam's control service is set (as in a worker process), the plugin
    takes the CLI's logging choice from the environment and the short sampling period;
    imported anywhere else it changes nothing."""
    code = (
        "import logging, sys\n"
        "from apache_beam.runners.worker import statesampler\n"
        "logging.basicConfig(level=logging.INFO)  # as Beam's worker has it\n"
        "import pipeline.worker\n"
        "print(statesampler.StateSampler('s', None).sampling_period_ms)\n"
        "logging.getLogger('trafilatura.core').warning('discarding data: x')\n"
        "logging.getLogger('__main__').info('Python sdk harness starting.')\n"
        "logging.getLogger('newsbeam').warning('kept')\n"
    )

    def worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        import os

        return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                              text=True, timeout=120, env={**os.environ, **env})

    proc = worker({"CONTROL_API_SERVICE_DESCRIPTOR": "url: 'localhost:1'",
                   "NEWSBEAM_WORKER_LOGGING": "INFO,0,json,0"})
    assert proc.returncode == 0, proc.stderr
    from pipeline.runners import SAMPLING_PERIOD_MS

    assert proc.stdout.split() == [str(SAMPLING_PERIOD_MS)]
    records = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert [(r["logger"], r["message"]) for r in records] == [("newsbeam", "kept")]
    # Beam's per-logger overrides win over newsbeam's levels (set again after them)
    options = {"options": {"sdk_harness_log_level_overrides": {"trafilatura.core": "WARNING"}}}
    proc = worker({"CONTROL_API_SERVICE_DESCRIPTOR": "url: 'localhost:1'",
                   "NEWSBEAM_WORKER_LOGGING": "INFO,0,json,0",
                   "PIPELINE_OPTIONS": json.dumps(options)})
    records = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert [r["logger"] for r in records] == ["trafilatura.core", "newsbeam"], proc.stderr
    proc = worker({})  # not a worker: nothing changes
    from apache_beam.runners.worker import statesampler

    assert proc.stdout.split() == [str(statesampler.DEFAULT_SAMPLING_PERIOD_MS)]
    assert "discarding data" in proc.stderr


def test_dofn_specs_are_computed_once_per_dofn_within_a_run() -> None:
    import apache_beam as beam
    from apache_beam.transforms import userstate
    from apache_beam.transforms.userstate import BagStateSpec

    from pipeline.runners import remembered_dofn_specs

    bag_param = beam.DoFn.StateParam(BagStateSpec("b", beam.coders.StrUtf8Coder()))

    class Stateful(beam.DoFn):
        def process(self, element, bag=bag_param):
            yield element

    plain, stateful = beam.Map(str).fn, Stateful()
    original = userstate.get_dofn_specs
    with remembered_dofn_specs():
        assert userstate.get_dofn_specs is not original
        first = userstate.get_dofn_specs(stateful)
        assert userstate.get_dofn_specs(stateful) is first  # remembered
        assert first == original(stateful) and [s.name for s in first[0]] == ["b"]
        assert userstate.is_stateful_dofn(stateful)
        assert not userstate.is_stateful_dofn(plain)
    assert userstate.get_dofn_specs is original


@pytest.mark.parametrize("value", ["DirectRunner", "direct", "flink", "FlinkRunner",
                                   "SparkRunner", "prism", "DataflowRunner",
                                   "apache_beam.runners.direct.direct_runner.DirectRunner"])
def test_known_runner_names_pass_the_check(value: str) -> None:
    from pipeline.main import check_runner

    check_runner(["--runner", value])
    check_runner([f"--runner={value}"])


def test_worker_teardown_errors_are_quiet_and_others_are_not() -> None:
    """The gRPC errors with which Beam's LOOPBACK worker threads end when Flink or Spark
    hangs up after a job are logged at debug level; any other thread exception still reaches
    Python's hook."""
    import threading

    import grpc

    from pipeline.runners import quiet_harness_teardown

    class HungUp(grpc.RpcError):
        def __init__(self, code: grpc.StatusCode) -> None:
            self._code = code

        def code(self) -> grpc.StatusCode:
            return self._code

        def details(self) -> str:
            return "Multiplexer hanging up"

    seen: list[str] = []
    original = threading.excepthook
    threading.excepthook = lambda args: seen.append(f"{args.thread.name}: {args.exc_value!r}")
    try:
        import pipeline.runners as runners

        runners._quiet_installed = False
        quiet_harness_teardown()

        def fail(exc: BaseException) -> None:
            raise exc

        for name, exc in [("run_worker_2-1", HungUp(grpc.StatusCode.CANCELLED)),
                          ("read_grpc_client_inputs", HungUp(grpc.StatusCode.UNAVAILABLE)),
                          ("run_worker_job-001[job]_ref_Environment_default_environment_1",
                           HungUp(grpc.StatusCode.UNAVAILABLE)),  # Prism's name, seen in CI
                          ("run_worker_3-1", HungUp(grpc.StatusCode.INTERNAL)),
                          ("my-thread", HungUp(grpc.StatusCode.CANCELLED)),
                          ("read_state", ValueError("real bug"))]:
            t = threading.Thread(target=fail, args=(exc,), name=name)
            t.start()
            t.join()
    finally:
        threading.excepthook = original
        runners._quiet_installed = False
    assert [s.split(":")[0] for s in seen] == ["run_worker_3-1", "my-thread", "read_state"]


def test_an_output_inside_the_input_folder_is_not_read_back(tmp_path: Path) -> None:
    """`newsbeam run . -o out`: the second run reads the same news, not the first run's
    Parquet files and manifests; an older output beside the news is skipped too, a folder that
    is an output is refused as input, and a stream refuses to watch its own output."""
    news = tmp_path / "news"
    news.mkdir()
    shutil.copy(SAMPLES / "kazakhstan_peacemaker.txt", news)
    first = newsbeam("run", ".", "-o", "out", "-q", cwd=news)
    assert first.returncode == 0, first.stderr
    second = newsbeam("run", ".", "-o", "out2", "-q", cwd=news)  # out/ is beside the news
    third = newsbeam("run", ".", "-o", "out", "-q", cwd=news)
    for proc in (second, third):
        assert proc.returncode == 0, proc.stderr
        assert "1 file, 1 input unit in" in proc.stdout, proc.stdout
        assert "rejects           0" in proc.stdout
    # another output is skipped with a warning (seen under -q); --output itself quietly
    assert "not reading ./out: a newsbeam output folder" in second.stderr, second.stderr
    assert "./out:" not in third.stderr and "not reading ./out2: a newsbeam output folder" \
        in third.stderr, third.stderr
    globbed = newsbeam("run", "**/*", "-o", "out3", "-q", cwd=news)  # out/, out2/ skipped
    assert globbed.returncode == 0 and "1 file, 1 input unit in" in globbed.stdout, \
        globbed.stdout + globbed.stderr
    refused = newsbeam("run", "out", "-o", "elsewhere", cwd=news)
    assert refused.returncode == 2 and "is a newsbeam output folder" in refused.stderr
    itself = newsbeam("run", ".", "-o", ".", cwd=news)
    assert itself.returncode == 2 and "is the --output folder" in itself.stderr
    stream = newsbeam("stream", ".", "-o", "watched-out", "--stop-after", "1s", cwd=news)
    assert stream.returncode == 2 and "would read its own output" in stream.stderr
    assert not (news / "watched-out").exists()  # refused before anything was made


def test_a_config_shared_with_run_works_for_stream(tmp_path: Path) -> None:
    """Keys only `run` has (ingested_at, max_reject_ratio) are ignored by `stream`, with a
    warning, instead of breaking it."""
    config = tmp_path / "shared.toml"
    config.write_text('ingested_at = "2024-01-01T00:00:00Z"\nmax_reject_ratio = 0.5\n',
                      encoding="utf-8")
    (tmp_path / "watch").mkdir()
    proc = newsbeam("stream", str(tmp_path / "watch"), "-o", str(tmp_path / "out"), "--config",
                    str(config), "--stop-after", "1s", "--runner", "DirectRunner", "-q")
    assert proc.returncode == 0, proc.stderr
    assert "ingested_at does not apply to stream (ignored)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_job_server_lines_show_trouble_only_below_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Flink and Spark job servers' JVM lines (relayed by Beam as INFO records, about 950
    for a 1,000-page Flink run): below DEBUG only those reporting trouble pass, as warnings
    (also with --quiet); with DEBUG every line does."""
    import logging

    from pipeline import logs

    monkeypatch.setenv(logs.WORKER_ENV, "")  # setup() records its choice there
    root = logging.getLogger()
    touched = [root, *(logging.getLogger(n) for n in (
        "apache_beam", "trafilatura", "htmldate", "urllib3", "charset_normalizer",
        "apache_beam.utils.subprocess_server", "apache_beam.runners.common",
        "apache_beam.runners.worker", *logs.JOB_SERVER_LOGGERS))]
    saved = [(lg, lg.level, list(lg.filters), list(lg.handlers)) for lg in touched]
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    noise = ("[MapPartition (2/2)#0] WARN org.apache.flink.metrics.MetricGroup - The operator "
             "name exceeded the 80 characters length limit and was truncated.")
    trace = "java.lang.IllegalStateException: call already closed"
    trouble = "Error: Could not find or load main class org.apache.beam.runners.flink.Main"
    try:
        for level, quiet, shown in (("INFO", False, [trouble]), ("INFO", True, [trouble]),
                                    ("DEBUG", False, [noise, trace, trouble])):
            logs.setup(level, quiet)
            root.addHandler(Keep())
            seen.clear()
            for name in logs.JOB_SERVER_LOGGERS:
                for line in (noise, trace, trouble):
                    logging.getLogger(name).info(line)
            assert [r.getMessage() for r in seen] == shown * len(logs.JOB_SERVER_LOGGERS)
            if level == "INFO":
                assert {r.levelname for r in seen} == {"WARNING"}
            # a job service's state messages, which Beam logs on the root logger at INFO
            # (Prism: "starting job-001[job]"): shown with DEBUG only; a warning always
            seen.clear()
            logging.info("starting job-001[job]")
            logging.warning("failed job-001[job]")
            logging.info("a root record of another kind")
            expected = ["failed job-001[job]"] if quiet else \
                ["failed job-001[job]", "a root record of another kind"]
            if level == "DEBUG":
                expected = ["starting job-001[job]", *expected]
            assert [r.getMessage() for r in seen] == expected
    finally:
        for lg, lvl, filters, handlers in saved:
            lg.setLevel(lvl)
            lg.filters[:] = filters
            lg.handlers[:] = handlers


def test_a_jsonl_dump_over_max_bytes_is_read_in_pieces(tmp_path: Path) -> None:
    """--max-bytes caps what one worker holds: a JSONL dump over it is read in pieces, line
    by line (each piece by any worker), not rejected whole, and gives the dataset of a whole
    read; a line over the cap is one reject that names it."""
    dump = SAMPLES / "dumps" / "crawl-2024-03.jsonl"  # 2,251 bytes, lines up to 815

    def run(name: str, *extra: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
        manifest = run_samples(tmp_path / name, dump, *extra)
        assert manifest["accounting"]["balanced"]
        rejects = pd.read_parquet(tmp_path / name / "rejects")
        return (pd.read_parquet(tmp_path / name / "articles"), rejects, manifest)

    whole, whole_rejects, _ = run("whole")
    assert len(whole) == 4 and sorted(whole_rejects.reason) == ["invalid_json",
                                                                "invalid_record"]
    pieces, rejects, manifest = run("pieces", "--max-bytes", "900")  # 3 pieces
    assert sorted(pieces.article_id) == sorted(whole.article_id)
    assert (sorted(zip(rejects.reason, rejects.detail, strict=True))
            == sorted(zip(whole_rejects.reason, whole_rejects.detail, strict=True)))
    assert manifest["counts"]["in"] == 6
    capped, rejects, _ = run("capped", "--max-bytes", "700")  # its 7th line is 815 bytes
    too_large = rejects[rejects.reason == "too_large"]
    at = sum(len(line) + 1 for line in dump.read_bytes().split(b"\n")[:6])
    assert list(too_large.detail) == [
        f"line 7 (at byte {at}) is larger than the cap of 700 bytes"]
    assert len(capped) + len(rejects) == 6  # the other lines as before
    assert set(capped.article_id) <= set(whole.article_id)


def _pages(folder: Path, copies: int) -> Path:
    """``copies`` distinct copies of samples' pages (each with a line of its own)."""
    folder.mkdir(parents=True, exist_ok=True)
    for page in sorted((SAMPLES / "pages").iterdir()):
        html = page.read_bytes()  # one of them is in windows-1252
        for i in range(copies):
            (folder / f"{page.stem}-{i}.html").write_bytes(html.replace(
                b"</body>", f"<p>Copy number {i} of this page.</p></body>".encode()))
    return folder


@pytest.mark.parametrize("when", ["loading", "running"])
def test_ctrl_c_ends_a_run_with_one_line_and_exit_130(tmp_path: Path, when: str) -> None:
    """Ctrl-C while the command loads its modules, or while Beam runs the pipeline (where
    Beam wraps the KeyboardInterrupt raised inside a DoFn in its own RuntimeError): one line,
    exit code 130 (a scheduler tells it from a failure, 1), and OUT is left unlocked."""
    import os
    import signal
    import time

    inputs = _pages(tmp_path / "pages", 20)
    out = tmp_path / "out"
    marker = tmp_path / "in-the-pipeline"
    # running: a step marks the moment it runs and then waits (the signal lands inside a
    # DoFn, mid-run, on any machine); loading: the signal lands while pipeline.main's
    # imports load, seen by pyarrow's library in the process's memory map
    steps = ["--steps", "+tests.fixtures.custom_steps:mark_and_wait"] if when == "running" \
        else []
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(inputs), "--output",
                             str(out), *steps], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NEWSBEAM_TEST_MARKER": str(marker)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if when == "running" and marker.exists():
            break
        if when == "loading" and "libarrow" in Path(f"/proc/{proc.pid}/maps").read_text():
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before the signal"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.rstrip().endswith("newsbeam: interrupted"), err
    assert "Traceback" not in err and "RuntimeError" not in err, err
    again = subprocess.run([sys.executable, "-m", "pipeline", "run", str(SAMPLES / "pages"),
                            "--output", str(out)], cwd=REPO, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr


def test_a_named_pipe_in_an_input_folder_is_skipped_not_read(tmp_path: Path) -> None:
    """os.walk lists a FIFO as a file; reading it would block the run forever. It is skipped
    with a warning; the folder's files are read, one of them in a folder and under a name
    that are not UTF-8 (an old archive's): read, with the bytes as escapes in input_path
    (Beam's coders and Parquet refused the name, and the whole run failed)."""
    import os

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLES / "kazakhstan_peacemaker.txt", folder)
    os.mkfifo(folder / "pipe.xml")
    odd = folder / os.fsdecode(b"arch\xe9")
    odd.mkdir()
    shutil.copy(SAMPLES / "pages" / "harbourtimes-ferry-strike.html",
                odd / os.fsdecode(b"gr\xfcn.html"))
    # a linked folder is followed, a link back up the tree is no loop
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(SAMPLES / "pages" / "valley-weekly-school.htm", elsewhere)
    (folder / "linked").symlink_to(elsewhere)
    (odd / "up").symlink_to(folder)
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", str(folder), "--output",
                           str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True,
                          timeout=300, errors="backslashreplace")
    assert proc.returncode == 0, proc.stderr
    assert f"not reading {folder / 'pipe.xml'}: not a regular file" in proc.stderr
    manifest = json.loads(next((tmp_path / "out" / "_runs").glob("*.json")).read_text())
    assert manifest["inputs"]["files"] == 3 and manifest["counts"]["articles"] == 3
    paths = set(pd.read_parquet(tmp_path / "out" / "articles").input_path)
    assert f"{folder}/arch\\xe9/gr\\xfcn.html" in paths
    assert f"{folder}/linked/valley-weekly-school.htm" in paths
    # a folder of an output is no input, even named inside it
    inner = newsbeam("run", str(tmp_path / "out" / "articles"), "--output", str(tmp_path / "o2"))
    assert inner.returncode == 2 and "lies inside a newsbeam output folder" in inner.stderr


def test_repeated_steps_flags_add_up(tmp_path: Path) -> None:
    """`--steps=-quotes --steps=-countries` kept the last flag only: quotes were extracted."""
    from pipeline.main import make_parser
    from pipeline.options import config_from_args

    args, extra = make_parser().parse_known_args(
        ["run", str(SAMPLES / "pages"), "--output", str(tmp_path / "o"), "--steps=-quotes",
         "--steps=-countries"])
    fields = config_from_args(args, extra).step_names()["fields"]
    assert "quotes" not in fields and "countries" not in fields and "language" in fields


def test_log_flags_are_taken_after_the_command_too(tmp_path: Path) -> None:
    """`newsbeam run ... --log-level WARNING` was refused as an unknown option; it means
    what `newsbeam --log-level WARNING run ...` means."""
    after = newsbeam("run", str(SAMPLES / "pages"), "--output", str(tmp_path / "a"),
                     "--log-level", "WARNING")
    default = newsbeam("run", str(SAMPLES / "pages"), "--output", str(tmp_path / "b"))
    assert after.returncode == default.returncode == 0, after.stderr
    assert "INFO" in default.stderr and "INFO" not in after.stderr, after.stderr
    as_json = newsbeam("run", str(SAMPLES / "pages"), "--output", str(tmp_path / "c"),
                       "--log-format", "json")
    assert json.loads(as_json.stderr.splitlines()[0])["level"] == "INFO"


def test_a_rerun_with_the_same_ingested_at_keeps_both_manifests(tmp_path: Path) -> None:
    """The run id comes from --ingested-at and the inputs: a rerun of a backfill got the
    same id and its manifest (no article added) replaced the first run's record."""
    out = tmp_path / "out"
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "pipeline", "run", str(SAMPLES / "pages"),
                               "--output", str(out), "--ingested-at", "2024-05-01T10:00:00Z"],
                              cwd=REPO, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
    runs = sorted((json.loads(p.read_text()) for p in (out / "_runs").glob("*.json")),
                  key=lambda m: m["started_at"])
    assert len(runs) == 2
    first, second = runs
    assert second["run_id"] == first["run_id"] + "-2"
    assert first["counts"]["articles"] == 2 and second["counts"]["articles"] == 0


@pytest.mark.parametrize("workers", [(), ("--direct_num_workers", "2",
                                          "--direct_running_mode", "multi_processing")])
def test_the_readmes_custom_step_runs_from_the_users_folder(tmp_path: Path,
                                                            workers: tuple[str, ...]) -> None:
    """The README's `mypkg/steps.py` example, run as it says, with the `newsbeam` command
    from the folder that holds mypkg (the command's own folder is on its path, not the
    current one: 'No module named mypkg'), on one worker and on two worker processes."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(# mypkg/steps\.py.*?)```", readme, re.S)
    assert code, "the README's step example moved"
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "mypkg" / "steps.py").write_text(code.group(1), encoding="utf-8")
    story = (SAMPLES / "kazakhstan_peacemaker.txt").read_text(encoding="utf-8")
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "paywalled.txt").write_text(  # a notice the cleaning keeps: in a sentence
        story + "\n\nThe full interview is for subscribers only, the paper said on Monday.\n",
        encoding="utf-8")
    command = Path(sys.executable).parent / "newsbeam"
    if not command.exists():
        pytest.skip(f"no newsbeam command beside {sys.executable} (package not installed)")
    proc = subprocess.run([str(command), "run", "in", "--output", "out",
                           "--steps=+mypkg.steps:tag_paywall", *workers],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    arts = pd.read_parquet(tmp_path / "out" / "articles")
    assert len(arts) == 1 and "paywall" in list(arts.categories[0])


def test_articles_stored_without_near_detection_still_catch_later_near_copies(
        tmp_path: Path) -> None:
    """A --no-dedupe run switches near detection off for itself only: its index rows keep
    their signatures (they were written empty, so no later run could ever find a near copy
    of those articles)."""
    def story(name: str, url: str, extra: str = "") -> str:
        words = [f"{name}{k % 37} harbour{k % 11} council{k % 5}" for k in range(60)]
        if extra:
            words[3] = words[10] = words[20] = "changed"
        return json.dumps({"url": url, "title": f"Story {name}",
                           "text": " ".join(words) + "." + extra,
                           "published": "2024-03-04T10:00:00Z"}) + "\n"

    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(story("alpha", "https://one.example/a") + story("bravo",
                                                                     "https://one.example/b"))
    second.write_text(story("alpha", "https://two.example/a", " Syndicated by Two.")
                      + story("bravo", "https://two.example/b", " Syndicated by Two."))
    out = tmp_path / "out"
    proc = newsbeam("run", str(first), "--output", str(out), "--no-dedupe",
                    "--ingested-at", INGESTED_AT)
    assert proc.returncode == 0, proc.stderr
    index = pd.read_parquet(out / "_index")
    assert all(len(s) > 0 for s in index.shingles) and all(len(b) for b in index.bands)
    proc = newsbeam("run", str(second), "--output", str(out), "--ingested-at", INGESTED_AT)
    assert proc.returncode == 0, proc.stderr
    runs = sorted((out / "_runs").glob("*.json"), key=lambda m: m.stat().st_mtime_ns)
    manifest = json.loads(runs[-1].read_text())  # (both run ids start with --ingested-at)
    assert manifest["counts"]["articles"] == 0
    assert manifest["duplicates_by_method"] == {"near": 2}
    assert manifest["stages"]["dedupe.near"] == 2  # counted per stage, as the others are



def test_other_signature_settings_than_outs_index_are_refused(tmp_path: Path) -> None:
    """Signatures taken with another --shingle-size, --num-perm or --bands share nothing with
    the stored ones: a run with them into an existing OUT would silently find no near copy of
    a stored article. It is refused with one line (exit 2) before anything runs; the index
    files record their settings, and the manifest the run's."""
    out = tmp_path / "out"
    proc = newsbeam("run", str(SAMPLES / "dumps"), "--output", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    tags = {pq.read_schema(f).metadata[b"newsbeam.signature"] for f in
            (out / "_index").glob("*.parquet")}
    assert tags == {b"--shingle-size 5 --num-perm 128 --bands 32"}
    runs = len(list((out / "_runs").glob("*.json")))
    for flags in (["--shingle-size", "3"], ["--num-perm", "64", "--bands", "16"],
                  ["--no-dedupe", "--bands", "16"]):
        proc = newsbeam("run", str(SAMPLES / "feeds"), "--output", str(out), "-q", *flags)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and "OUT/_index holds signatures taken with " \
            "--shingle-size 5 --num-perm 128 --bands 32" in proc.stderr, proc.stderr
    assert len(list((out / "_runs").glob("*.json"))) == runs
    # the thresholds are the run's own choice; --no-dedupe alone is fine too
    proc = newsbeam("run", str(SAMPLES / "feeds"), "--output", str(out), "-q",
                    "--near-threshold", "0.7", "--no-dedupe")
    assert proc.returncode == 0, proc.stderr
    manifest = max((json.loads(m.read_text()) for m in (out / "_runs").glob("*.json")),
                   key=lambda m: m["finished_at"])
    assert manifest["options"]["near"]["jaccard"] == 0.7
    assert manifest["options"]["near"]["enabled"] is False


def _atom(title: str, updated: str) -> str:
    body = " ".join(f"Dredging of the harbour channel{k} begins with barge{k % 4}." for k in
                    range(40))
    return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            "<title>Harbour</title><id>urn:harbour</id><updated>2024-04-02T00:00:00Z</updated>"
            f"<entry><title>{title}</title><id>urn:harbour:dredging</id>"
            '<link href="https://harbour.example/dredging"/>'
            f"<published>2024-03-30T08:00:00Z</published><updated>{updated}</updated>"
            f"<content type=\"html\">&lt;p&gt;{body}&lt;/p&gt;</content></entry></feed>")


OLD_TITLE, NEW_TITLE = "Harbour dreging starts", "Harbour dredging starts on Monday"


@pytest.mark.parametrize(("old_name", "new_name"), [("f1.xml", "f2.xml"), ("b.xml", "a.xml")])
def test_the_latest_update_of_one_body_is_kept_whatever_the_file_names(
        tmp_path: Path, old_name: str, new_name: str) -> None:
    """One story in two files, the same body, the second with a corrected headline and a later
    updated_at: the stored copy is the later one, whichever file name sorts first (the input
    path decided before)."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / old_name).write_text(_atom(OLD_TITLE, "2024-04-01T09:00:00Z"))
    (folder / new_name).write_text(_atom(NEW_TITLE, "2024-04-02T09:00:00Z"))
    out = tmp_path / "out"
    proc = newsbeam("run", str(folder), "--output", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    stored = pd.read_parquet(out / "articles")
    assert stored.title.tolist() == [NEW_TITLE]
    assert pd.read_parquet(out / "duplicates").title.tolist() == [OLD_TITLE]


def test_a_corrected_headline_on_the_same_body_is_the_next_revision(tmp_path: Path) -> None:
    """Run after run: the same body under a corrected headline, said to be updated later, is
    revision 2 (it was a url duplicate, so the latest version kept the misspelt headline). The
    same body re-dated under the same headline stays a duplicate (no change to keep)."""
    feed, out = tmp_path / "feed.xml", tmp_path / "out"
    for title, updated in [(OLD_TITLE, "2024-04-01T09:00:00Z"),
                           (NEW_TITLE, "2024-04-02T09:00:00Z"),
                           (NEW_TITLE, "2024-04-03T09:00:00Z")]:
        feed.write_text(_atom(title, updated))
        proc = newsbeam("run", str(feed), "--output", str(out), "-q")
        assert proc.returncode == 0, proc.stderr
    stored = pd.read_parquet(out / "articles").sort_values("revision")
    assert stored.title.tolist() == [OLD_TITLE, NEW_TITLE]
    assert [list(c) for c in stored.changes] == [[], ["title", "updated_at"]]
    latest = stored.sort_values("revision").groupby("article_id").tail(1)
    assert latest.title.tolist() == [NEW_TITLE]
    assert pd.read_parquet(out / "duplicates").method.tolist() == ["url"]


def test_a_folder_run_skips_files_still_being_written(tmp_path: Path) -> None:
    """An inbox being filled holds downloads under temporary names (.part, .crdownload): a run
    over the folder reads the finished files only, and says how many it left; one named as
    INPUT is read."""
    folder = tmp_path / "inbox"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(SAMPLES / "kazakhstan_peacemaker.txt", folder / "story.txt")
    half = (SAMPLES / "feeds" / "harbour-times.rss.xml").read_bytes()[:700]
    (folder / "sub" / "feed.xml.part").write_bytes(half)
    (folder / "page.html.crdownload").write_bytes(b"<html><body><p>half")
    proc = newsbeam("run", str(folder), "--output", str(tmp_path / "out"), "-q")
    assert proc.returncode == 0, proc.stderr
    assert "not reading 2 files of" in proc.stderr and "temporary name" in proc.stderr
    manifest = json.loads(next((tmp_path / "out" / "_runs").glob("*.json")).read_text())
    assert manifest["inputs"]["files"] == 1 and manifest["counts"]["articles"] == 1
    named = newsbeam("run", str(folder / "sub" / "feed.xml.part"), "--output",
                     str(tmp_path / "out2"), "-q")
    assert named.returncode in (0, 5), named.stderr  # 5: its one unit rejected, over 50%
    read = json.loads(next((tmp_path / "out2" / "_runs").glob("*.json")).read_text())
    assert read["inputs"]["files"] == 1 and read["counts"]["in"] >= 1


def test_the_command_ends_without_the_interpreter_teardown(tmp_path: Path) -> None:
    """The command's normal end waits for its threads that are not daemons (an idle thread
    pool's included: it is told that no more work comes, as the interpreter does), runs the exit
    handlers and flushes stdout (a pipe here, so buffered), then leaves without freeing the
    heap object by object (a global's __del__, which only the teardown would call, never
    runs), with the command's exit code."""
    script = (
        "import atexit, sys, threading, time\n"
        "from pathlib import Path\n"
        f"folder = Path({str(tmp_path)!r})\n"
        "class Torn:\n"
        "    def __init__(self):\n"
        "        self.path, self.open = str(folder / 'teardown'), open\n"
        "    def __del__(self):\n"
        "        with self.open(self.path, 'w') as handle: handle.write('ran')\n"
        "held = Torn()\n"
        "atexit.register(lambda: (folder / 'atexit').write_text('ran'))\n"
        "def late():\n"
        "    time.sleep(1)\n"
        "    (folder / 'thread').write_text('done')\n"
        "threading.Thread(target=late).start()\n"
        "import concurrent.futures\n"
        "pool = concurrent.futures.ThreadPoolExecutor(1)  # a step's pool, idle at the end\n"
        "pool.submit(lambda: None).result()\n"
        "sys.argv = ['newsbeam', '--version']\n"
        "from pipeline.cli import entrypoint\n"
        "entrypoint()\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=120, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("newsbeam ")
    assert (tmp_path / "thread").read_text() == "done"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert not (tmp_path / "teardown").exists()
    usage = subprocess.run([sys.executable, "-m", "pipeline", "run"], cwd=REPO, timeout=120,
                           capture_output=True, text=True)
    assert usage.returncode == 2 and "newsbeam: error:" in usage.stderr


def test_a_signalled_command_exits_though_a_thread_never_ends(tmp_path: Path) -> None:
    """A run cut short by a signal can leave a thread that never ends (Beam's state sampler,
    started just before the signal: seen once in CI, where the interpreter then waited for it
    forever). The command's exit runs the exit handlers and leaves: with the code it chose,
    the handlers run, nothing left waiting."""
    marker = tmp_path / "atexit"
    script = (
        "import atexit, threading, time\n"
        "from pipeline.cli import leave\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
        "threading.Thread(target=lambda: time.sleep(3600)).start()\n"
        "leave(143)\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=60,
                          capture_output=True, text=True)
    assert proc.returncode == 143, proc.stderr
    assert marker.read_text() == "ran"
