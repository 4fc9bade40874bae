"""newsbeam report: the HTML page made from a real OUT (two CLI runs), checked as text and
rendered in headless Chromium, offline.

Chromium is driven over the DevTools protocol through --remote-debugging-pipe (messages on
file descriptors 3 and 4, NUL-separated JSON), so no websocket client or driver package is
needed. A page's console errors come from three events: Runtime.exceptionThrown (uncaught
exceptions), Runtime.consoleAPICalled of type error/assert, and Log.entryAdded at level
error (failed loads, CSP violations). test_the_driver_sees_console_errors proves on a page
made to fail that each of them is caught, so a clean report is clean and not unobserved.
The Chromium tests skip when no browser is installed (scripts/get_chromium.sh installs one).
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import html
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline.report import (
    SECTIONS,
    add_report_arguments,
    build_report,
    main_report,
    read_articles,
    read_column_counts,
    write_report,
)
from schemas import SCHEMA_VERSION
from tests.conftest import REPO, SAMPLES

# an unclosed tag: cleaning strips whole tags from source names, so only markup that is no
# tag survives it, and left raw in the page it would still run (the next '>' closes it)
EVIL_SOURCE = '<img src=x onerror=alert(1) data-x="'

EVIL_TITLE = 'Tagged <img src=x onerror="alert(2)"> headline'
GENERATED_AT = datetime(2026, 1, 17, 9, 30, tzinfo=timezone.utc)
CHARTS = 6  # per day, languages, countries, rejects, duplicates, coverage
NO_NETWORK_SCHEMES = ("file:", "data:", "blob:", "about:")


def newsbeam(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real OUT: two runs (feeds plus a hostile JSONL record, then pages and junk) and a
    stream manifest, which has no counts and is not a run."""
    root = tmp_path_factory.mktemp("report")
    dump = root / "hostile.jsonl"
    record = {"url": "https://hostile.example/story", "title": EVIL_TITLE,
              "source": EVIL_SOURCE,
              "text": "The ferry to Tromsø in Norway was cancelled again on Tuesday, and "
                      "travellers from Sweden and Finland were stranded for a second night. "
                      "The operator blamed the storm and promised a new timetable by Friday."}
    dump.write_text(json.dumps(record) + "\n", encoding="utf-8")
    out = root / "out"
    for inputs, at in (([SAMPLES / "feeds", dump], "2026-01-15T12:00:00Z"),
                       ([SAMPLES / "pages", SAMPLES / "junk"], "2026-01-16T12:00:00Z")):
        proc = newsbeam("run", *map(str, inputs), "--output", str(out), "--ingested-at", at,
                        "-q")
        assert proc.returncode == 0, proc.stderr
    (out / "_runs" / "20260116T130000Z-0000-stream.json").write_text(
        json.dumps({"stream_id": "20260116T130000Z-0000", "windows": 0}), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def page(out_dir: Path) -> str:
    return build_report(str(out_dir), generated_at=GENERATED_AT)


@pytest.fixture(scope="module")
def report_file(out_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    write_report(str(out_dir), str(path), generated_at=GENERATED_AT)
    return path


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    return main_report(parser.parse_args(list(argv)))


# --- the page as text ---------------------------------------------------------------------

def test_every_section_is_there(page: str, out_dir: Path) -> None:
    for key, _ in SECTIONS:
        assert f'<section id="{key}">' in page, key
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    assert "<title>newsbeam report: out</title>" in page
    assert "generated at 2026-01-17T09:30:00+00:00" in page
    assert f"schema version {SCHEMA_VERSION}" in page
    manifest = json.loads(sorted((out_dir / "_runs").glob("2026011[56]*Z-????????.json"))[-1]
                          .read_text())
    assert f"newsbeam {manifest['versions']['newsbeam']}" in page
    assert page.count('class="plotly-graph-div"') == CHARTS
    assert "no data" not in page


def test_numbers_match_the_dataset(page: str, out_dir: Path) -> None:
    articles = pd.read_parquet(out_dir / "articles")
    latest = articles.sort_values("revision").drop_duplicates("article_id", keep="last")
    assert f'<td>articles (latest revision of each)</td><td class="num">{len(latest)}</td>' \
        in page
    # Two runs: the stream manifest is not one.
    assert '<td>runs</td><td class="num">2</td>' in page
    for manifest in (out_dir / "_runs").glob("*Z-????????.json"):
        run = json.loads(manifest.read_text())
        counts = "".join(f'<td class="num">{run["counts"][k]}</td>'
                         for k in ("in", "articles", "duplicates", "rejects"))
        assert f"{counts}<td>{run['status']}</td>" in page
    assert "1 stream manifests" in page


def test_loads_nothing_from_the_network(page: str) -> None:
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", page, re.I)
    for tag in ("link", "iframe", "img", "object", "embed", "base"):
        assert not re.search(rf"<{tag}\b", page, re.I), tag
    assert not re.search(r"url\(\s*['\"]?https?:", page, re.I)
    assert not re.search(r"@import", page, re.I)
    assert "Content-Security-Policy" in page and "default-src &#x27;none&#x27;" in page
    # plotly.js once, inline, and one drawing script per chart: no other script element.
    assert len(re.findall(r"<script\b", page, re.I)) == 1 + CHARTS


def test_data_from_the_web_is_escaped(page: str) -> None:
    assert EVIL_SOURCE not in page
    assert "<img src=x onerror=alert(1)" not in page
    assert html.escape(EVIL_SOURCE) in page  # the coverage table
    assert 'onerror="alert(2)"' not in page  # titles are not shown, nor left raw


def test_same_dataset_same_page(page: str, out_dir: Path) -> None:
    assert build_report(str(out_dir), generated_at=GENERATED_AT) == page


def test_an_out_without_data_says_so(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "articles").mkdir(parents=True)
    (out / "_runs").mkdir()
    (out / "_runs" / "x-stream.json").write_text('{"stream_id": "x"}', encoding="utf-8")
    (out / "_runs" / "broken.json").write_text("{not json", encoding="utf-8")
    page = build_report(str(out), generated_at=GENERATED_AT)
    for key, _ in SECTIONS[1:]:
        section = page.split(f'<section id="{key}">', 1)[1].split("</section>", 1)[0]
        assert "no data" in section, key
    assert "plotly-graph-div" not in page
    assert "manifests that could not be read: broken.json" in page
    assert "schema version unknown" in page


def test_the_command(out_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                     ) -> None:
    target = tmp_path / "r.html"
    assert cli(str(out_dir), "--output", str(target)) == 0
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert f"wrote {target}" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temporary file left

    for argv in ([str(tmp_path / "missing")], [str(tmp_path)],
                 [str(out_dir), "-o", str(tmp_path / "no" / "such" / "r.html")]):
        assert cli(*argv) == 2, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("newsbeam: error: "), err


def test_a_stray_file_is_left_out_and_a_damaged_one_is_one_line(
        out_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that is not .parquet in a partition (a user's note) is named and left out;
    the page counts what the Parquet files hold. A damaged .parquet file is one line and
    exit 1, not a traceback."""
    out = tmp_path / "out"
    shutil.copytree(out_dir, out)
    partition = next((out / "articles").glob("date=*"))
    (partition / "notes.txt").write_text("checked by hand\n", encoding="utf-8")
    (out / "rejects" / "README").write_text("ours\n", encoding="utf-8")
    target = tmp_path / "r.html"
    assert cli(str(out), "-o", str(target)) == 0
    err = capsys.readouterr().err
    assert "left out 1 file(s)" in err and "notes.txt" in err and "README" in err, err
    stats = read_articles(str(out))
    assert stats is not None and stats.rows == read_articles(str(out_dir)).rows
    assert read_column_counts(str(out), "rejects", "reason") == read_column_counts(
        str(out_dir), "rejects", "reason")
    capsys.readouterr()

    (partition / "part-damaged.parquet").write_bytes(b"PAR1 not really")
    assert cli(str(out), "-o", str(target)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[1].startswith("newsbeam: error: cannot read the dataset in "), err
    assert "part-damaged.parquet" in err[1], err


# --- the page in a browser ----------------------------------------------------------------

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                  "chrome", "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome")
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--disable-default-apps", "--disable-breakpad", "--mute-audio", "--password-store=basic",
    "--use-mock-keychain", "--disable-features=Translate,MediaRouter,OptimizationHints",
    # Offline for sure: any name lookup fails, so a page that tried to fetch would log it.
    "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1280,2000",
    "--remote-debugging-pipe",
)
TIMEOUT = 30.0
SETTLED = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(1))))"


def find_chromium() -> str | None:
    configured = os.environ.get("NEWSBEAM_CHROMIUM")
    if configured:
        return shutil.which(configured)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class Loaded:
    """What one navigation produced."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


class Chromium:
    """Headless Chromium with one page, over the DevTools protocol on a pipe."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        from_browser, from_browser_w = os.pipe()
        # Above 10 first, so the dup2 to 3 and 4 in the child never overwrites one of them.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser_r,
                                                                       from_browser_w)]
        os.close(to_browser_r)
        os.close(from_browser_w)

        def child_fds() -> None:
            os.dup2(high[0], 3)  # dup2 leaves 3 and 4 inheritable; all else is CLOEXEC
            os.dup2(high[1], 4)

        self.log = profile / "chromium.log"
        self._log_fh = self.log.open("wb")
        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=child_fds, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=self._log_fh, stderr=self._log_fh)
        for fd in high:
            os.close(fd)
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._events: list[dict[str, Any]] = []
        self._next_id = 0
        threading.Thread(target=self._read, args=(from_browser,), daemon=True).start()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=True)

    def _read(self, fd: int) -> None:
        buffer = b""
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for message in messages:
                    self._messages.put(json.loads(message))
        self._messages.put(None)

    def _next(self, deadline: float) -> dict[str, Any]:
        try:
            message = self._messages.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"Chromium did not answer within {TIMEOUT:.0f}s; "
                                 f"log: {self.log_tail()}") from None
        if message is None:
            raise AssertionError(f"Chromium closed the pipe; log: {self.log_tail()}")
        return message

    def _post(self, method: str, params: dict[str, Any] | None, session: bool) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _event(self, message: dict[str, Any]) -> None:
        self._events.append(message)
        if message.get("method") == "Page.javascriptDialogOpening":
            # An open alert() blocks the page (and its load event): dismiss it at once.
            self._post("Page.handleJavaScriptDialog", {"accept": True}, session=True)

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: bool = False) -> dict[str, Any]:
        wanted = self._post(method, params, session)
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._next(deadline)
            if reply.get("id") == wanted:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result
            self._event(reply)

    def evaluate(self, expression: str) -> Any:
        reply = self.send("Runtime.evaluate", {"expression": expression,
                                               "returnByValue": True}, session=True)
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def load(self, url: str, ready: str = "true") -> Loaded:
        """Open url, wait for the load event and then for the JS expression ``ready``;
        return the console errors, requests and dialogs seen meanwhile."""
        start = len(self._events)
        self.send("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + TIMEOUT
        while not any(e.get("method") == "Page.loadEventFired" for e in self._events[start:]):
            self._event(self._next(deadline))
        while not self.evaluate(ready):
            if time.monotonic() > deadline:
                raise AssertionError(f"{url}: not ready ({ready}) within {TIMEOUT:.0f}s")
            time.sleep(0.05)
        # Two animation frames, so that whatever the page still had to draw (and log) is
        # done; the reply also comes after every event sent before it.
        self.send("Runtime.evaluate", {"expression": SETTLED, "awaitPromise": True},
                  session=True)
        return self._digest(self._events[start:])

    def _digest(self, events: list[dict[str, Any]]) -> Loaded:
        loaded = Loaded()
        for event in events:
            if event.get("sessionId") != self.session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                text = details.get("exception", {}).get("description") or details.get("text")
                loaded.errors.append(f"uncaught: {text}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error",
                                                                             "assert"):
                args = [a.get("value", a.get("description")) for a in params.get("args", [])]
                loaded.errors.append(f"console.{params['type']}: {args}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                loaded.errors.append(f"log ({entry['source']}): {entry['text']} "
                                     f"{entry.get('url', '')}".rstrip())
            elif method == "Network.requestWillBeSent":
                loaded.requests.append(params["request"]["url"])
            elif method == "Page.javascriptDialogOpening":
                loaded.dialogs.append(params.get("message", ""))
        return loaded

    def screenshot(self, path: Path) -> None:
        size = self.send("Page.getLayoutMetrics", session=True)["cssContentSize"]
        shot = self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                     "scale": 1}}, session=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def log_tail(self) -> str:
        self._log_fh.flush()
        lines = self.log.read_text(errors="replace").splitlines()
        return " | ".join(lines[-5:]) or "(empty)"

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._to_browser)
        self._log_fh.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium found (chromium, chromium-browser, google-chrome; or set "
                    "NEWSBEAM_CHROMIUM): run scripts/get_chromium.sh to install it")
    chromium = Chromium(binary, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield chromium
    finally:
        chromium.close()


PLOTS_DRAWN = """(() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const drawn = plots.filter(p => p.querySelector('.main-svg')
      && p.querySelector('.cartesianlayer .trace, .heatmaplayer .hm'));
  return drawn.length >= %d;
})()"""


def test_the_report_renders_in_chromium_offline(browser: Chromium, report_file: Path,
                                                 tmp_path: Path) -> None:
    loaded = browser.load(report_file.as_uri(), ready=PLOTS_DRAWN % CHARTS)
    assert loaded.errors == [], loaded.errors
    assert loaded.dialogs == [], f"a script from the data ran: {loaded.dialogs}"
    away = [u for u in loaded.requests if not u.startswith(NO_NETWORK_SCHEMES)]
    assert away == [], f"the page asked the network for {away}"
    assert browser.evaluate("document.querySelectorAll('.js-plotly-plot').length") == CHARTS
    assert browser.evaluate("document.querySelectorAll('script').length") == 1 + CHARTS
    # The hostile source is shown as the text it is: in a legend, a heatmap label, a cell.
    shown = browser.evaluate(
        "[...document.querySelectorAll('.legendtext, td')].map(e => e.textContent)")
    assert EVIL_SOURCE in shown
    assert browser.evaluate("document.title") == "newsbeam report: out"
    shot = tmp_path / "report.png"
    browser.screenshot(shot)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 50_000


def test_a_report_without_data_renders_cleanly(browser: Chromium, tmp_path: Path) -> None:
    (tmp_path / "out" / "_runs").mkdir(parents=True)
    path = tmp_path / "empty.html"
    write_report(str(tmp_path / "out"), str(path), generated_at=GENERATED_AT)
    loaded = browser.load(path.as_uri(), ready="document.readyState === 'complete'")
    assert loaded.errors == [], loaded.errors
    assert browser.evaluate("document.querySelectorAll('.nodata').length") >= 6


def test_the_driver_sees_console_errors(browser: Chromium, tmp_path: Path) -> None:
    """The control: a page that fails in each way the report must not."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><meta charset="utf-8"><title>broken</title>'
        '<img src="https://unreachable.invalid/x.png">'
        "<script>console.error('logged-error');</script>"
        "<script>throw new Error('uncaught-error');</script>"
        "<script>alert('dialog');</script>", encoding="utf-8")
    loaded = browser.load(page.as_uri(), ready="document.readyState === 'complete'")
    text = "\n".join(loaded.errors)
    assert "uncaught: Error: uncaught-error" in text, loaded.errors
    assert "console.error: ['logged-error']" in text, loaded.errors
    assert "log (network)" in text and "unreachable.invalid" in text, loaded.errors
    assert "https://unreachable.invalid/x.png" in loaded.requests
    assert loaded.dialogs == ["dialog"]
