"""FetchFeeds and FollowLinks: feeds and the pages they link to, fetched inside the pipeline.

FetchFeeds: feed URL -> RawDocument (the body, with its HTTP headers, for ParseDocuments).
- The validators of each feed's last fetch (OUT/_state/feeds) are joined to its URL
  (CoGroupByKey on a hash of the URL) and sent as If-None-Match / If-Modified-Since. A 304
  yields no document: no entry, no page is fetched again.
- Every fetch that answered (200 or 304) leaves a state row for the next run; the rows are
  staged and committed with the run's data, so a failed run never advances the state. With
  --follow-links, a feed one of whose entries' pages could not be fetched keeps its row
  without validators (``forget_validators``): the next run gets the whole feed again and
  retries that page, where a 304 would have hidden the entry until the feed changed.
- Rejects (stage ``fetch_feed``): ``http_<status>``, ``timeout``, ``too_large``,
  ``private_address``, ``bad_content_type``, ``redirect_loop``, ``bad_url``,
  ``connection_error``, ``empty_body``... (transforms/http.py). A dead feed never holds up
  the others.

FollowLinks: Unit (feed entry) -> Unit of kind ``linked`` (the entry's fields and its page).
- An entry whose canonical link is already stored in OUT is passed on as it is, never fetched
  (it becomes a ``url`` duplicate of the stored article). Entries of this run that share a
  link are fetched once. A page whose article was dropped as a copy of another (another URL)
  is fetched again when its entry comes back, so it is judged on its page again: skipped, the
  entry would keep only its feed teaser, which no stored article holds.
- Rejects (stage ``fetch_page``), one per entry: the reasons above and ``robots_disallowed``;
  ``bad_url`` too for a teaser entry whose link is not http(s) (ftp:, javascript:). An entry
  that carries its whole text goes on as the feed gave it when its page cannot be had.

Politeness without global state: requests are grouped by host (GroupByKey), so all of one
host's requests are made in sequence by one worker, spaced by the HttpClient's per-host
throttle; the hosts of a batch are fetched in parallel threads. This runs unchanged on a
distributed runner. Beam's RequestResponseIO (Java) has the same ingredients (per-call
timeouts, backoff, throttling); the Python SDK has no equivalent that works per host, hence
this composite.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.error_handling import ErrorHandler

from schemas.records import RawDocument, Reject, Unit, bounded_excerpt
from transforms.common import (
    FEED_KINDS,
    METRICS_NAMESPACE,
    REJECTS_TAG,
    stage_counters,
    to_reject,
)
from transforms.decode import decode_bytes
from transforms.dedupe import KeyDigestSet, in_digests, read_stored
from transforms.http import (
    FEED_TYPES,
    GENERIC_FEED_TYPES,
    PAGE_TYPES,
    BadContentType,
    BadUrl,
    EmptyBody,
    FetchPolicy,
    HttpClient,
    redact,
)
from transforms.parse import JSONFEED_PREFIX, http_charset, sniff_kind
from transforms.read import decompress
from transforms.text import html_to_text, words
from transforms.urls import canonical_url

LOG = logging.getLogger("newsbeam.fetch")

STATE_TAG = "state"
FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, "
               "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1")
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"

# hosts fetched at once by one worker (each host's requests stay in sequence)
HOST_THREADS = 32

_CLIENTS: dict[FetchPolicy, HttpClient] = {}
_CLIENTS_LOCK = threading.Lock()


def shared_client(policy: FetchPolicy) -> HttpClient:
    """One HttpClient per worker process and policy, shared by FetchFeeds and FollowLinks, so
    a host's feed and its pages share one throttle and one robots.txt cache."""
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(policy)
        if client is None:
            client = _CLIENTS[policy] = HttpClient(policy)
        return client


def feed_key(url: str) -> str:
    """The key of a feed's state: a hash, so a URL's credentials are never stored."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def host_of(url: str) -> str:
    """scheme://host:port, the unit of politeness (a malformed URL is its own host)."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{parts.port or ''}"
    except ValueError:
        return url


@dataclass(frozen=True)
class FeedRequest:
    """A feed to fetch, with the validators of its last fetch."""

    url: str
    etag: str | None = None
    last_modified: str | None = None

    @property
    def input_path(self) -> str:
        return redact(self.url)

    def excerpt(self) -> str:
        return redact(self.url)


@dataclass(frozen=True)
class PageRequest:
    """A linked page to fetch, and the feed entries that link to it."""

    url: str
    entries: tuple[Unit, ...]


def fetch_reject(url: str, stage: str, exc: BaseException, unit_key: str = "") -> Reject:
    rej = to_reject(redact(url), stage, exc)
    detail = rej.detail
    if unit_key and "#" in unit_key:  # a page: which feed entry linked to it
        feed, index = unit_key.rsplit("#", 1)
        detail = f"{detail} (linked from entry {int(index) + 1} of {feed})" \
            if index.isdigit() else detail
    return Reject(input_path=rej.input_path, stage=stage, reason=rej.reason,
                  error_type=rej.error_type, detail=detail,
                  excerpt=bounded_excerpt(redact(url)), unit_key=unit_key)


def fetch_feed(client: HttpClient, request: FeedRequest, fetched_at: datetime, run_id: str
               ) -> list[Any]:
    """One feed -> [RawDocument?, state row] or [Reject]."""
    try:
        result = client.fetch(request.url, accept=FEED_ACCEPT, allowed_types=FEED_TYPES,
                              etag=request.etag, last_modified=request.last_modified)
    except Exception as exc:  # typed RejectError, or a bug: a reject row either way
        return [beam.pvalue.TaggedOutput(REJECTS_TAG,
                                         fetch_reject(request.url, "fetch_feed", exc))]
    state = {
        "feed_key": feed_key(request.url), "feed_url": redact(request.url),
        "final_url": result.final_url,
        "etag": result.etag or (request.etag if result.not_modified else None),
        "last_modified": result.last_modified
        or (request.last_modified if result.not_modified else None),
        "status": result.status, "fetched_at": fetched_at, "run_id": run_id,
    }
    out: list[Any] = [beam.pvalue.TaggedOutput(STATE_TAG, state)]
    if not result.not_modified:
        headers = {"content-location": result.final_url}
        body = result.body
        if not body.strip():
            return [beam.pvalue.TaggedOutput(REJECTS_TAG, fetch_reject(
                request.url, "fetch_feed", EmptyBody(
                    f"HTTP {result.status} with an empty body ({redact(request.url)})")))]
        try:  # a .gz or .bz2 feed file (not a Content-Encoding): as a file on disk is read
            plain = decompress(request.url, body, client.policy.max_bytes)
        except Exception as exc:
            return [beam.pvalue.TaggedOutput(REJECTS_TAG,
                                             fetch_reject(request.url, "fetch_feed", exc))]
        media = (result.content_type or "").split(";", 1)[0].strip().lower()
        if media in GENERIC_FEED_TYPES and not holds_a_feed(plain):
            refused = BadContentType(f"content type {media!r}, and the body is not a feed "
                                     f"({redact(request.url)})")
            return [beam.pvalue.TaggedOutput(REJECTS_TAG,
                                             fetch_reject(request.url, "fetch_feed", refused))]
        if plain is body and result.content_type:  # else the type was the archive's
            headers["content-type"] = result.headers.get("content-type", result.content_type)
        out.append(RawDocument(input_path=redact(request.url), data=plain, headers=headers))
    return out


def holds_a_feed(data: bytes) -> bool:
    """Whether a body begins as a feed does (RSS, Atom, RDF or other XML that feedparser
    judges; a JSON Feed), as the read of a file tells its kind: for a feed served under a type
    that says nothing (``GENERIC_FEED_TYPES``). An HTML page (a login or error page where the
    feed was) does not."""
    head = data[:65536].decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if head.startswith("{"):
        return JSONFEED_PREFIX in head[:4096]  # its "version", as sniff_kind reads it
    return sniff_kind(head) == "feed"


# an entry whose own content holds this many words is a full article: when its page cannot
# be fetched, the entry stands for itself (a teaser, shorter, is a reject and waits for the
# page: the next run fetches it again)
FULL_ENTRY_WORDS = 80


def carries_full_text(unit: Unit) -> bool:
    """Whether a feed entry's content (content:encoded, Atom content; not its summary) holds
    an article's text."""
    content = unit.fields.get("html") or ""
    text = html_to_text(content) if content else str(unit.fields.get("text") or "")
    return len(words(text)) >= FULL_ENTRY_WORDS


def fetch_page(client: HttpClient, request: PageRequest, check_robots: bool) -> list[Any]:
    """One linked page -> a ``linked`` Unit per entry that links to it. When the page cannot
    be had, an entry that carries its full text goes on as the feed gave it; the others are
    rejects."""
    try:
        result = client.fetch(request.url, accept=PAGE_ACCEPT, allowed_types=PAGE_TYPES,
                              check_robots=check_robots)
        if not result.body.strip():
            raise EmptyBody(f"HTTP {result.status} with an empty body ({redact(request.url)})")
        html, _codec = decode_bytes(result.body, http_charset(result.headers.get("content-type")))
    except Exception as exc:  # typed RejectError, or a bug: a reject row per entry
        return [unit if carries_full_text(unit) else beam.pvalue.TaggedOutput(
            REJECTS_TAG, fetch_reject(request.url, "fetch_page", exc, unit.unit_key))
            for unit in request.entries]
    return [
        Unit(input_path=unit.input_path, input_kind="linked", index=unit.index,
             fields={**unit.fields, "page_url": result.final_url}, raw=html)
        for unit in request.entries
    ]


# a line of progress while fetching, at most this often (seconds), from each worker
FETCH_PROGRESS_INTERVAL = 10.0


class FetchProgress:
    """Requests done by one worker, as an INFO line at most every ``interval`` seconds: a run
    of feeds and linked pages has no file count to show, and a polite fetch of many pages of
    one host takes minutes. Thread-safe (the hosts of a batch are fetched in threads)."""

    def __init__(self, what: str, interval: float = FETCH_PROGRESS_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._what = what
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._started: float | None = None  # the first request's end: not the worker's start
        self._last = 0.0
        self.done = 0
        self.failed = 0

    def add(self, failed: bool) -> str | None:
        """One request done; the line written, if it was time for one."""
        with self._lock:
            self.done += 1
            self.failed += failed
            now = self._clock()
            if self._started is None:
                self._started = self._last = now
            if now - self._last < self._interval:
                return None
            self._last = now
            line = (f"fetching {self._what}: {self.done} done ({self.failed} failed) in "
                    f"{now - self._started:.0f}s")
            LOG.info(line)  # under the lock: the lines come in the order of their counts
        return line


class _FetchHosts(beam.DoFn):
    """Batches of (host, requests) -> what ``fetch`` makes of each request. The hosts of a
    batch run in parallel threads; one host's requests run in sequence (the client's throttle
    spaces them). Metrics are counted here, in the bundle's thread: Beam's metric container
    does not follow work into other threads; progress lines (``FetchProgress``) in the
    fetching threads."""

    def __init__(self, policy: FetchPolicy, stage: str, fetch: Callable[..., list[Any]],
                 **kwargs: Any) -> None:
        self._policy = policy
        self._stage = stage
        self._fetch = fetch
        self._kwargs = kwargs
        self._in, self._out, self._rejected = stage_counters(stage)
        # a page that failed while its entry carries the whole text: the entry goes on as
        # the feed gave it (not a reject, and not a fetched page): counted apart
        self._from_feed = Metrics.counter(METRICS_NAMESPACE, f"{stage}.from_feed")
        self._client: HttpClient | None = None
        self._progress: FetchProgress | None = None

    def setup(self) -> None:
        self._client = shared_client(self._policy)
        self._progress = FetchProgress("feeds" if self._stage == "fetch_feed" else "pages")

    def _run_host(self, requests: list[Any]) -> list[Any]:
        out: list[Any] = []
        for request in requests:
            results = self._fetch(self._client, request, **self._kwargs)
            out.extend(results)
            if self._progress is not None:
                self._progress.add(any(isinstance(r, beam.pvalue.TaggedOutput)
                                       and r.tag == REJECTS_TAG for r in results))
        return out

    def process(self, batch: list[tuple[str, Iterable[Any]]]) -> Iterator[Any]:
        groups = [sorted(requests, key=lambda r: r.url) for _host, requests in batch]
        self._in.inc(sum(len(g) for g in groups))
        with ThreadPoolExecutor(max_workers=max(1, min(len(groups), HOST_THREADS))) as pool:
            for results in pool.map(self._run_host, groups):
                for item in results:
                    if isinstance(item, beam.pvalue.TaggedOutput):
                        if item.tag == REJECTS_TAG:
                            self._rejected.inc()
                    else:
                        self._out.inc()
                        if isinstance(item, Unit) and item.input_kind != "linked" \
                                and self._stage == "fetch_page":
                            self._from_feed.inc()
                    yield item


def _by_host(request: FeedRequest | PageRequest) -> tuple[str, FeedRequest | PageRequest]:
    return (host_of(request.url), request)


def fetch_by_host(requests: beam.PCollection[Any], name: str, stage: str,
                  policy: FetchPolicy, fetch: Callable[..., list[Any]], *tags: str,
                  **kwargs: Any) -> Any:
    return (
        requests
        | f"{name}ByHost" >> beam.Map(_by_host)
        | f"{name}GroupHosts" >> beam.GroupByKey()
        # fixed batches (BatchElements would start at one host and grow): a bundle's end
        # flushes a partial batch
        | f"{name}BatchHosts" >> beam.BatchElements(min_batch_size=HOST_THREADS,
                                                    max_batch_size=HOST_THREADS)
        | f"{name}Fetch" >> beam.ParDo(_FetchHosts(policy, stage, fetch, **kwargs))
        .with_outputs(REJECTS_TAG, *tags, main="good")
    )


# ---------------------------------------------------------------------------- FetchFeeds
def _url_by_key(url: str) -> tuple[str, str]:
    return (feed_key(url), url)


def _state_by_feed_url(row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return row["feed_url"], row


def _state_by_key(row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return (row["feed_key"], row)


def _feed_request(element: tuple[str, dict[str, list[Any]]]) -> Iterator[FeedRequest]:
    states = sorted(element[1]["state"], key=lambda r: (r["fetched_at"], r["run_id"]))
    last = states[-1] if states else {}
    for url in sorted(set(element[1]["url"])):
        yield FeedRequest(url, last.get("etag"), last.get("last_modified"))


class FetchFeeds(beam.PTransform):
    """Feed URL -> RawDocument; see the module docstring. ``state`` is the file pattern of
    OUT/_state/feeds (None when there is none yet); new state rows go to ``state_sink``."""

    def __init__(self, rejects: ErrorHandler, state_sink: ErrorHandler | None,
                 policy: FetchPolicy, state: str | None, fetched_at: datetime, run_id: str
                 ) -> None:
        """With ``state_sink`` None the new state rows are kept in ``self.state_rows`` for
        the caller (``forget_validators``)."""
        super().__init__()
        self.state_rows: beam.PCollection[dict[str, Any]] | None = None
        self._rejects = rejects
        self._state_sink = state_sink
        self._policy = policy
        self._state = state
        self._fetched_at = fetched_at
        self._run_id = run_id

    def expand(self, urls: beam.PCollection[str]) -> beam.PCollection[RawDocument]:
        keyed = urls | "UrlByKey" >> beam.Map(_url_by_key)
        if self._state is not None:
            states = (
                self._state_pipeline(urls.pipeline)
                | "StateByKey" >> beam.Map(_state_by_key)
            )
        else:
            states = urls.pipeline | "NoState" >> beam.Create([])
        requests = (
            {"url": keyed, "state": states}
            | "JoinState" >> beam.CoGroupByKey()
            | "FeedRequests" >> beam.FlatMap(_feed_request)
        )
        result = fetch_by_host(requests, "Feeds", "fetch_feed", self._policy, fetch_feed,
                               STATE_TAG, fetched_at=self._fetched_at, run_id=self._run_id)
        self._rejects.add_error_pcollection(result[REJECTS_TAG])
        if self._state_sink is None:
            self.state_rows = result[STATE_TAG]
        else:
            self._state_sink.add_error_pcollection(result[STATE_TAG])
        return result["good"]

    def _state_pipeline(self, p: beam.Pipeline) -> beam.PCollection[dict[str, Any]]:
        return p | "ReadFeedState" >> beam.io.ReadFromParquet(self._state)


def _feed_of_entry(reject: Reject) -> tuple[str, str]:
    """A page reject -> (its entry's feed, as the state row names it: redacted), 'failed'."""
    return (reject.unit_key.rsplit("#", 1)[0], "failed")


def _state_after_pages(element: tuple[str, dict[str, list[Any]]]) -> Iterator[dict[str, Any]]:
    rows, failed = element[1]["state"], element[1]["failed"]
    for row in rows:
        yield {**row, "etag": None, "last_modified": None} if failed else row


def forget_validators(state_rows: beam.PCollection[dict[str, Any]],
                      page_rejects: beam.PCollection[Reject]
                      ) -> beam.PCollection[dict[str, Any]]:
    """The feeds' new state rows, without validators for a feed one of whose entries' pages
    failed: the next run then fetches it whole and tries that page again (a 304 would have
    kept the entry away until the feed changed)."""
    return (
        {"state": state_rows | "StateByFeed" >> beam.Map(_state_by_feed_url),
         "failed": page_rejects | "FeedOfFailedPage" >> beam.Map(_feed_of_entry)}
        | "JoinFailedPages" >> beam.CoGroupByKey()
        | "StateAfterPages" >> beam.FlatMap(_state_after_pages)
    )


# --------------------------------------------------------------------------- FollowLinks
def _given_link(unit: Unit) -> str:
    """The link a valid feed entry gives, as the feed wrote it ('' for none, or another
    unit)."""
    if unit.input_kind not in FEED_KINDS or "invalid" in unit.fields:
        return ""
    return str(unit.fields.get("link") or "").strip()


def entry_link(unit: Unit) -> str | None:
    """The canonical http(s) link of a feed entry, or None (not followed)."""
    given = _given_link(unit)
    link = canonical_url(given or None, unit.fields.get("feed_link") or None)
    if not link or not link.startswith(("http://", "https://")):
        return None
    return link


class _SplitFollowable(beam.DoFn):
    """Feed entries with an http(s) link go to ``follow``. An entry whose link cannot be
    followed is a ``bad_url`` reject when it is a teaser, as when its page cannot be had;
    an entry carrying its whole text goes on as the feed gave it, as do entries without a
    link and the other units. The entries with a link that cannot be followed count in the
    fetch_page counters as pages that failed (``pages`` in the manifest)."""

    def __init__(self) -> None:
        self._in, self._out, self._rejected = stage_counters("fetch_page")
        self._from_feed = Metrics.counter(METRICS_NAMESPACE, "fetch_page.from_feed")

    def process(self, unit: Unit) -> Iterator[Any]:
        link = entry_link(unit)
        if link is not None:
            yield beam.pvalue.TaggedOutput("follow", (link, unit))
            return
        bad = _given_link(unit)  # there, but another scheme (ftp:, javascript:), no host...
        if not bad:
            yield unit
            return
        self._in.inc()
        if carries_full_text(unit):
            self._out.inc()
            self._from_feed.inc()
            yield unit
            return
        self._rejected.inc()
        shown = redact(bad)[:200]
        yield beam.pvalue.TaggedOutput(REJECTS_TAG, fetch_reject(
            bad, "fetch_page", BadUrl(f"entry link {shown!r} is not a usable http(s) URL "
                                      "(another scheme, no host, or malformed), so its page "
                                      "cannot be fetched, and the entry holds only a teaser"),
            unit.unit_key))


def _link_key(element: tuple[str, Unit]) -> str:
    return element[0]


def stored_sharing_urls(table: Any, digests: Any) -> Iterator[dict[str, Any]]:
    """Rows (one row group with a ``url`` column) whose URL is among this run's links."""
    urls = table.column("url").to_pylist()
    for url, hit in zip(urls, in_digests(digests, urls), strict=True):
        if hit:
            yield {"url": url}


def _stored_url(row: dict[str, Any]) -> Iterator[tuple[str, bool | str]]:
    if row.get("url"):
        yield (row["url"], True)


def stored_sharing_links(table: Any, digests: Any) -> Iterator[dict[str, Any]]:
    """OUT/_state/links rows (one row group) whose link is among this run's links."""
    links = table.column("link").to_pylist()
    urls = table.column("url").to_pylist()
    for link, url, hit in zip(links, urls, in_digests(digests, links), strict=True):
        if hit and url:
            yield {"link": link, "url": url}


def _followed_link(row: dict[str, Any]) -> Iterator[tuple[str, bool | str]]:
    """A remembered link -> the URL of the article its page gave."""
    yield (row["link"], row["url"])


def _page_requests(element: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
    """Entries of one link: passed on when the page is stored already, else one request. A
    link remembered in OUT/_state/links (its page named another URL) passes its entries on
    with that URL as their link, so each is a duplicate of the stored article by URL."""
    link, groups = element
    entries = sorted(groups["entry"], key=lambda u: u.unit_key)
    if not entries:
        return
    if groups["stored"]:
        named = sorted(url for url in groups["stored"] if isinstance(url, str))
        for unit in entries:
            if named:
                unit = dataclasses.replace(unit, fields={**unit.fields, "link": named[0]})
            yield beam.pvalue.TaggedOutput("stored", unit)
        return
    yield PageRequest(link, tuple(entries))


class FollowLinks(beam.PTransform):
    """Unit -> Unit: feed entries with an http(s) link become ``linked`` units carrying their
    page; other units pass through. ``stored`` holds the file patterns of datasets with a
    ``url`` column whose URLs are not fetched again (OUT/_index); ``links``
    the pattern of OUT/_state/links, the links whose page named another URL, not fetched
    again either."""

    def __init__(self, rejects: ErrorHandler, policy: FetchPolicy, stored: list[str],
                 check_robots: bool = True, links: str | None = None) -> None:
        super().__init__()
        self._rejects = rejects
        self._policy = policy
        self._stored = stored
        self._check_robots = check_robots
        self._links = links
        self.page_rejects: beam.PCollection[Reject] | None = None

    def expand(self, units: beam.PCollection[Unit]) -> beam.PCollection[Unit]:
        split = units | "SplitFollowable" >> beam.ParDo(_SplitFollowable()).with_outputs(
            "follow", REJECTS_TAG, main="other")
        self._rejects.add_error_pcollection(split[REJECTS_TAG])
        follow = split["follow"]
        stored = (units.pipeline | "NoStoredUrls" >> beam.Create([])
                  | "StoredUrlWindows" >> beam.WindowInto(units.windowing.windowfn))
        if self._stored or self._links:
            digests = (
                follow
                | "LinkKeys" >> beam.Map(_link_key)
                | "LinkDigests" >> beam.CombineGlobally(KeyDigestSet()).without_defaults()
            )
            found = [
                read_stored(digests, pattern, ["url"], stored_sharing_urls, f"Links{i}")
                | f"StoredUrls{i}" >> beam.FlatMap(_stored_url)
                for i, pattern in enumerate(self._stored)
            ]
            if self._links:
                found.append(
                    read_stored(digests, self._links, ["link", "url"], stored_sharing_links,
                                "Followed")
                    | "FollowedLinks" >> beam.FlatMap(_followed_link))
            stored = (stored, *found) | "AllStoredUrls" >> beam.Flatten()
        planned = (
            {"entry": follow, "stored": stored}
            | "JoinStored" >> beam.CoGroupByKey()
            | "PageRequests" >> beam.FlatMap(_page_requests).with_outputs("stored",
                                                                         main="fetch")
        )
        result = fetch_by_host(planned["fetch"], "Pages", "fetch_page", self._policy,
                               fetch_page, check_robots=self._check_robots)
        self._rejects.add_error_pcollection(result[REJECTS_TAG])
        self.page_rejects = result[REJECTS_TAG]  # for forget_validators
        return (
            (split["other"], planned["stored"], result["good"])
            | "AllUnits" >> beam.Flatten()
        )
