"""Safe, polite HTTP fetching for feeds and article pages (pure Python, no Beam).

One ``HttpClient`` per worker (built in ``DoFn.setup``) is shared by the worker's threads.
What a caller can rely on:

- Only http and https URLs are fetched; every host, on the first URL and on every redirect hop,
  is resolved and its addresses vetted before any connection, and the connection goes to the
  vetted address itself (Host header, SNI and certificate checks still use the name), so a
  DNS answer that changes between the check and the connect (DNS rebinding) cannot reach a
  private network or a cloud metadata endpoint.
- Bodies are capped after decompression while they stream, so a gzip bomb stops at the cap
  with little memory; slow servers end as ``timeout`` (connect, read and total deadlines).
- Connection failures, timeouts, 429 and 5xx are retried with exponential backoff and full
  jitter (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015), honouring
  Retry-After; other 4xx are final.
- Requests to one host (scheme, host and port) are spaced ``1 / rate_per_host`` seconds apart,
  retries, redirects and robots.txt included; other hosts are not held up.
- robots.txt (RFC 9309) is honoured for article pages: 2xx is parsed, 4xx allows all, 5xx or an
  unreachable server disallows all (a page is then rejected for the unreachable server's own
  reason, not as disallowed), cached per origin.
- Every failure is a typed ``RejectError`` whose message names the URL with its credentials
  removed; credentials are never logged.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import math
import random
import re
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from fnmatch import fnmatchcase
from importlib import metadata
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

import urllib3
from protego import Protego
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util.request import ACCEPT_ENCODING
from urllib3.util.ssl_match_hostname import CertificateError as UrlCertificateError

from transforms.errors import RejectError

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], None]
# socket.getaddrinfo's shape: (host, port, family, type) -> [(family, type, proto, name, addr)]
Resolver = Callable[[str, int, int, int], Sequence[tuple[Any, ...]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

FETCH_STAGE = "fetch_feed / fetch_page"
# No default contact: a URL of our choosing would send site owners to the wrong place. The
# operator names theirs with --contact (a warning says so when feeds are fetched without it).
DEFAULT_CONTACT = ""
ROBOTS_TOKEN = "newsbeam"
CHUNK_BYTES = 64 * 1024
# robots.txt: RFC 9309 section 2.5 asks parsers to read at least 500 KiB; more is dropped.
ROBOTS_MAX_BYTES = 512 * 1024
# RFC 9309 section 2.4: a cached robots.txt should not be used for more than 24 hours. A
# failure (which disallows the whole site) is kept for a shorter time so one bad minute of
# a server does not block it for a day.
ROBOTS_TTL = 24 * 3600.0
ROBOTS_ERROR_TTL = 600.0
# Expired entries are dropped when the cache reaches this many origins.
ROBOTS_CACHE_SIZE = 10_000
# A redirect or error body is read only this far, to reuse the connection; beyond it the
# connection is closed instead.
DRAIN_BYTES = 64 * 1024
POOL_MAXSIZE = 4
MAX_POOLS = 512
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DECODED_ENCODINGS = frozenset(
    {"", "identity", "x-gzip"} | {e.strip() for e in ACCEPT_ENCODING.split(",")}
)
# Characters left as they are when a path or query is percent-encoded for the request line:
# the RFC 3986 reserved set, '%' (already-encoded octets stay as they are) and unreserved.
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"
# NAT64 (RFC 6052) embeds an IPv4 address; the prefix itself counts as global.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _package_version() -> str:
    try:
        return metadata.version("newsbeam")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "dev"


__version__ = _package_version()


# --- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchPolicy:
    """How politely and how defensively to fetch. Times are seconds; sizes are bytes."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    # Wall-clock cap on one response, from sending the request to the end of the body: a
    # server trickling a byte now and then never trips the read timeout.
    total_timeout: float = 60.0
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    contact: str = DEFAULT_CONTACT
    retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 120.0
    # math.inf turns the throttle off (tests, or a single-host crawl with its own limits).
    rate_per_host: float = 1.0
    allow_private: bool = False
    allow_networks: tuple[str, ...] = ()
    ignore_robots: bool = False
    # CA bundle (PEM path) for https; None uses the system trust store.
    ca_certs: str | None = None

    @property
    def user_agent(self) -> str:
        if not self.contact:
            return f"newsbeam/{__version__}"
        return f"newsbeam/{__version__} (+{self.contact})"

    def validate(self) -> None:
        """Raise ValueError naming the first field that holds an unusable value."""
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            _require(name, getattr(self, name), _positive_finite, "a positive number")
        for name in ("backoff_base", "backoff_max", "max_retry_after"):
            _require(name, getattr(self, name), _non_negative_finite, "a number >= 0")
        _require("rate_per_host", self.rate_per_host, lambda v: v > 0, "a number > 0")
        _require("max_bytes", self.max_bytes, lambda v: _is_int(v) and v > 0, "an integer > 0")
        for name in ("max_redirects", "retries"):
            _require(name, getattr(self, name), lambda v: _is_int(v) and v >= 0,
                     "an integer >= 0")
        # The contact ends up in a header: a line break would inject headers.
        _require("contact", self.contact,
                 lambda v: isinstance(v, str) and (v == "" or (v.strip() != ""
                                                              and v.isprintable())),
                 "a printable string (a URL or an e-mail address), or none")
        if isinstance(self.allow_networks, str):
            raise ValueError("FetchPolicy.allow_networks must be a tuple of CIDR strings, "
                             f"not one string (got {self.allow_networks!r})")
        for cidr in self.allow_networks:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"FetchPolicy.allow_networks holds {cidr!r}, which is no "
                                 f"network in CIDR notation: {exc}") from exc


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _non_negative_finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value >= 0


def _require(name: str, value: Any, ok: Callable[[Any], bool], what: str) -> None:
    try:
        good = ok(value)
    except TypeError:
        good = False
    if not good:
        raise ValueError(f"FetchPolicy.{name} must be {what} (got {value!r})")


# --- errors --------------------------------------------------------------------------------


class HttpStatusError(RejectError):
    """The server answered with an error status: any 4xx but 429 at once, 429 and 5xx after
    the retries, or a 3xx without a usable Location. The reason names the status, as
    ``http_404`` or ``http_503``."""

    stage = FETCH_STAGE
    reason = "http_<status>"

    def __init__(self, detail: str, status: int) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = f"http_{status}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.detail, self.status))


class FetchTimeout(RejectError):
    """The server did not connect or answer within the timeouts (after the retries), or one
    response took longer than the total deadline; for a linked page, also when this happened
    to its site's robots.txt (the detail says so)."""

    stage = FETCH_STAGE
    reason = "timeout"


class ResponseTooLarge(RejectError):
    """The body is larger than the size cap, counted after decompression (a gzip bomb stops
    here), or its Content-Length already says so."""

    stage = FETCH_STAGE
    reason = "too_large"


class RobotsDisallowed(RejectError):
    """A linked page (--follow-links) that the site's robots.txt disallows for newsbeam, or
    whose robots.txt answered 429 or 5xx, which RFC 9309 treats as disallowing the whole site
    (a robots.txt that could not be reached at all gives the transport's own reason,
    ``connection_error`` or ``timeout``). Feeds the user names are fetched without asking
    robots.txt."""

    stage = "fetch_page"
    reason = "robots_disallowed"


class PrivateAddress(RejectError):
    """The host resolves to an address that is not publicly routable (loopback, RFC 1918,
    link-local with cloud metadata, CGNAT, multicast, reserved, IPv6 ULA, or such an address
    mapped into IPv6), checked after DNS on every redirect hop, before connecting."""

    stage = FETCH_STAGE
    reason = "private_address"


class BadContentType(RejectError):
    """The Content-Type is not one this fetch accepts (an image where a feed was expected), or
    says nothing of a feed (text/html, application/octet-stream) and the body is no feed."""

    stage = FETCH_STAGE
    reason = "bad_content_type"


class EmptyBody(RejectError):
    """The server answered 200 with an empty body (or only whitespace): a feed or page it
    did not serve, not a document with no text."""

    stage = FETCH_STAGE
    reason = "empty_body"


class BadContentEncoding(RejectError):
    """The body does not decode in its declared Content-Encoding (corrupt gzip), or uses an
    encoding that was not asked for."""

    stage = FETCH_STAGE
    reason = "bad_content_encoding"


class TooManyRedirects(RejectError):
    """The redirects come back to a URL already visited, or there are more of them than
    allowed."""

    stage = FETCH_STAGE
    reason = "redirect_loop"


class BadUrl(RejectError):
    """The URL (or a redirect's Location) is unparsable, has no host, or its scheme is not
    http or https."""

    stage = FETCH_STAGE
    reason = "bad_url"


class ConnectionFailed(RejectError):
    """The connection was refused or reset, the name did not resolve, or TLS failed (after
    the retries where retrying can help); for a linked page, also when this happened to its
    site's robots.txt (the detail says so)."""

    stage = FETCH_STAGE
    reason = "connection_error"


# --- URLs and addresses --------------------------------------------------------------------

# The authority's user information: everything after '//' up to the last '@' that comes
# before the first '/'. Wider than RFC 3986 on purpose: a password holding a raw '?' or '#'
# would otherwise be cut in two by the parser and half of it shown.
_HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.\-]*[a-z0-9_.])?")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*:)?//[^/]*@")


def redact(url: str) -> str:
    """The URL with any ``user:password@`` replaced by ``***@``, safe for messages and logs."""
    match = _USERINFO.match(url)
    if match is None:
        return url
    return f"{match.group(1) or ''}//***@{url[match.end():]}"


def is_public_address(ip: IPAddress) -> bool:
    """True when the address is publicly routable; an IPv4 address embedded in IPv6
    (IPv4-mapped, 6to4, NAT64) is judged by the IPv4 address it reaches."""
    if isinstance(ip, ipaddress.IPv6Address):
        # The mapped and NAT64 prefixes count as private or reserved themselves; only the IPv4
        # address they lead to matters.
        if ip.ipv4_mapped is not None:
            return is_public_address(ip.ipv4_mapped)
        if ip in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None and not is_public_address(ip.sixtofour):
            return False
    # is_global alone lets multicast through, and its special cases changed across Python
    # releases; the flags below are cheap insurance.
    return ip.is_global and not (
        ip.is_multicast or ip.is_private or ip.is_loopback or ip.is_link_local
        or ip.is_reserved or ip.is_unspecified
    )


@dataclass(frozen=True)
class _Target:
    """One URL taken apart for a request."""

    scheme: str
    host: str  # ASCII (IDNA) lower-case name or IP literal, without brackets
    port: int
    origin: str  # scheme://host[:port] without credentials: throttle, robots and loop key
    host_header: str
    request_target: str  # percent-encoded path and query
    authorization: str | None
    clean_url: str  # the URL without credentials and fragment
    literal: IPAddress | None


def _parse_target(url: str) -> _Target:
    # Feeds often wrap a link in whitespace; inside a URL a control character is an attempt
    # to split the request line.
    url = url.strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise BadUrl(f"URL {redact(url)!r} holds control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
        hostname = parts.hostname
    except ValueError as exc:  # a broken authority, a port out of range
        raise BadUrl(f"unparsable URL {redact(url)!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BadUrl(f"unsupported scheme {scheme or '(none)'!r} in {redact(url)!r}: only "
                     "http and https are fetched")
    if not hostname:
        raise BadUrl(f"URL {redact(url)!r} has no host")
    try:
        host = hostname if hostname.isascii() else hostname.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise BadUrl(f"host of {redact(url)!r} is no valid international name: {exc}") from exc
    literal: IPAddress | None
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
        # Underscores are not allowed in host names but occur in real ones.
        if not _HOST_NAME.fullmatch(host):
            raise BadUrl(f"host {host!r} of {redact(url)!r} is no valid host name") from None
    default_port = 443 if scheme == "https" else 80
    if port == 0:
        raise BadUrl(f"URL {redact(url)!r} names port 0")
    port = port or default_port
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if port == default_port else f"{bracketed}:{port}"
    path = quote(parts.path or "/", safe=_URL_SAFE)
    query = quote(parts.query, safe=_URL_SAFE)
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
    return _Target(
        scheme=scheme,
        host=host,
        port=port,
        origin=f"{scheme}://{host_header}",
        host_header=host_header,
        request_target=f"{path}?{query}" if query else path,
        authorization=authorization,
        clean_url=urlunsplit((scheme, host_header, path, query, "")),
        literal=literal,
    )


def _redirect_url(current: str, location: str) -> str:
    # http.client decodes header bytes as latin-1; a UTF-8 Location is restored here and
    # percent-encoded when it is parsed.
    try:
        location = location.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass
    return urljoin(current, location.strip())


# --- content types -------------------------------------------------------------------------

# Shell-style patterns over the media type (no parameters), lower-case.
# Types that say nothing of a feed but that servers send feeds with (a feed file served as
# a download, a CMS that labels everything HTML): a feed's fetch takes them when the body is
# a feed (transforms/fetch.py: fetch_feed), not without looking.
GENERIC_FEED_TYPES: frozenset[str] = frozenset({"text/html", "application/octet-stream",
                                                "binary/octet-stream"})
FEED_TYPES: frozenset[str] = frozenset({"*xml*", "*rss*", "*atom*", "*json*", "text/plain",
                                        # a compressed feed file served as a file
                                        "application/gzip", "application/x-gzip",
                                        "application/x-bzip2", *GENERIC_FEED_TYPES})
PAGE_TYPES: frozenset[str] = frozenset({"text/html", "application/xhtml+xml", "text/plain"})


def content_type_ok(content_type: str | None, allowed: Collection[str] | None) -> bool:
    """Whether a Content-Type matches one of the ``allowed`` patterns. A missing type passes
    (the parser sniffs the content), and so does anything when ``allowed`` is None."""
    if allowed is None or content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    if not media:
        return True
    return any(fnmatchcase(media, pattern) for pattern in allowed)


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchResult:
    """One fetched resource. ``final_url`` is the URL fetched last (after the redirects),
    without credentials or fragment; ``body`` is decoded (gzip/deflate removed) and empty when
    ``not_modified``. ``headers`` are those of the last response, with lower-case keys."""

    url: str
    final_url: str
    status: int
    headers: dict[str, str]
    body: bytes
    etag: str | None
    last_modified: str | None
    not_modified: bool
    content_type: str | None


@dataclass(frozen=True)
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes


class _Retryable(Exception):
    """An attempt failed in a way a later attempt may not: carries the error to raise when the
    retries run out."""

    def __init__(self, error: RejectError, retry_after: float | None = None) -> None:
        super().__init__(error.detail)
        self.error = error
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or an HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,10}", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


# --- throttle ------------------------------------------------------------------------------


class HostThrottle:
    """Spaces requests to one host ``1 / rate_per_host`` seconds apart; thread-safe.

    A caller reserves the next free slot of its host under the lock and sleeps outside it, so
    a wait for one host never holds up another. Requests to one host are thereby serialized
    by their slots, however many threads share the throttle.
    """

    _PRUNE_AT = 4096

    def __init__(self, rate_per_host: float, clock: Clock = time.monotonic,
                 sleep: Sleep = time.sleep) -> None:
        if not rate_per_host > 0:
            raise ValueError(f"rate_per_host must be > 0 (got {rate_per_host!r})")
        self._interval = 1.0 / rate_per_host
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, host: str) -> float:
        """Take the host's next slot; return how long to wait for it."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + self._interval
            if len(self._next) > self._PRUNE_AT:
                # Hosts whose next slot has passed carry no state worth keeping.
                self._next = {h: t for h, t in self._next.items() if t > now}
        return slot - now

    def wait(self, host: str) -> None:
        delay = self.reserve(host)
        if delay > 0:
            self._sleep(delay)


# --- client --------------------------------------------------------------------------------

# parsed rules, allow-all (True), disallow-all (False: robots.txt answered 429 or 5xx), or
# the error that kept robots.txt from being read at all (no connection, no answer in time):
# the site is off limits as for False, and its pages are rejected under that error's reason
_Rules = Protego | bool | RejectError


class HttpClient:
    """Thread-safe fetcher; see the module docstring for its guarantees.

    ``clock`` and ``sleep`` drive the throttle, the backoff and the deadlines, and
    ``resolver`` (``socket.getaddrinfo``'s shape) the DNS lookups, so tests can record waits
    and name hosts without waiting or a DNS server.
    """

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        resolver: Resolver = socket.getaddrinfo,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy or FetchPolicy()
        self.policy.validate()
        self._clock = clock
        self._sleep = sleep
        self._resolver = resolver
        self._rng = rng or random.Random()
        self._throttle = HostThrottle(self.policy.rate_per_host, clock, sleep)
        self._allowed_networks = tuple(
            ipaddress.ip_network(cidr, strict=False) for cidr in self.policy.allow_networks
        )
        self._timeout = urllib3.Timeout(connect=self.policy.connect_timeout,
                                        read=self.policy.read_timeout)
        self._pools: OrderedDict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = (
            OrderedDict()
        )
        self._pools_lock = threading.Lock()
        self._robots: dict[str, tuple[float, _Rules]] = {}
        self._robots_loading: dict[str, threading.Event] = {}
        self._robots_lock = threading.Lock()

    # -- public ---------------------------------------------------------------------------

    def fetch(
        self,
        url: str,
        *,
        accept: str,
        allowed_types: Collection[str] | None,
        etag: str | None = None,
        last_modified: str | None = None,
        check_robots: bool = False,
    ) -> FetchResult:
        """GET ``url`` following redirects. Sends the validators when given; a 304 gives
        ``not_modified=True`` with an empty body. Raises a ``RejectError`` subclass."""
        return self._fetch(url, accept=accept, allowed_types=allowed_types, etag=etag,
                           last_modified=last_modified, check_robots=check_robots,
                           max_bytes=self.policy.max_bytes, truncate=False)

    def close(self) -> None:
        """Close every pooled connection (DoFn.teardown)."""
        with self._pools_lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- redirects ------------------------------------------------------------------------

    def _fetch(
        self,
        url: str,
        *,
        accept: str,
        allowed_types: Collection[str] | None,
        etag: str | None,
        last_modified: str | None,
        check_robots: bool,
        max_bytes: int,
        truncate: bool,
    ) -> FetchResult:
        base_headers = {
            "User-Agent": self.policy.user_agent,
            "Accept": accept,
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        if etag:
            base_headers["If-None-Match"] = etag
        if last_modified:
            base_headers["If-Modified-Since"] = last_modified
        visited: set[str] = set()
        current = url
        redirects = 0
        while True:
            target = _parse_target(current)
            if target.clean_url in visited:
                raise TooManyRedirects(f"redirect loop: {redact(current)} was already visited "
                                       f"on the way from {redact(url)}")
            visited.add(target.clean_url)
            if check_robots and not self.policy.ignore_robots:
                self._check_robots(target, current)
            headers = dict(base_headers, Host=target.host_header)
            # Credentials go only to the origin whose URL carries them; a relative redirect
            # keeps them (urljoin keeps the authority), a redirect elsewhere drops them.
            if target.authorization:
                headers["Authorization"] = target.authorization
            response = self._with_retries(target, current, headers, allowed_types, max_bytes,
                                          truncate)
            location = response.headers.get("location")
            if response.status not in _REDIRECTS:
                return self._result(url, target, response, etag, last_modified)
            if not location:
                raise HttpStatusError(f"HTTP {response.status} without a Location header from "
                                      f"{redact(current)}", response.status)
            if redirects >= self.policy.max_redirects:
                raise TooManyRedirects(f"more than {self.policy.max_redirects} redirects from "
                                       f"{redact(url)} (last {redact(current)})")
            redirects += 1
            nxt = _redirect_url(current, location)
            log.debug("redirect %s -> %s (%d)", redact(current), redact(nxt), response.status)
            current = nxt

    @staticmethod
    def _result(url: str, target: _Target, response: _Response, etag: str | None,
                last_modified: str | None) -> FetchResult:
        headers = response.headers
        not_modified = response.status == 304
        return FetchResult(
            url=url,
            final_url=target.clean_url,
            status=response.status,
            headers=headers,
            body=b"" if not_modified else response.body,
            # A 304 need not repeat the validators; the ones sent are still current then.
            etag=headers.get("etag") or (etag if not_modified else None),
            last_modified=headers.get("last-modified")
            or (last_modified if not_modified else None),
            not_modified=not_modified,
            content_type=headers.get("content-type"),
        )

    # -- retries --------------------------------------------------------------------------

    def _with_retries(self, target: _Target, url: str, headers: dict[str, str],
                      allowed_types: Collection[str] | None, max_bytes: int,
                      truncate: bool) -> _Response:
        attempt = 0
        while True:
            try:
                addresses = self._addresses(target, url)
                # Rotating through the addresses lets a retry try another one.
                address = addresses[attempt % len(addresses)]
                return self._attempt(target, url, address, headers, allowed_types, max_bytes,
                                     truncate)
            except _Retryable as failure:
                if attempt >= self.policy.retries:
                    raise failure.error from failure.__cause__
                delay = self._backoff(attempt, failure.retry_after)
                log.debug("retry %d/%d of %s in %.2f s: %s", attempt + 1, self.policy.retries,
                          redact(url), delay, failure.error.detail)
                self._sleep(delay)
                attempt += 1

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.policy.max_retry_after)
        ceiling = min(self.policy.backoff_max, self.policy.backoff_base * 2 ** min(attempt, 62))
        return self._rng.uniform(0, ceiling)

    # -- addresses ------------------------------------------------------------------------

    def _addresses(self, target: _Target, url: str) -> list[str]:
        """The host's addresses, all vetted; raises PrivateAddress when any is not allowed
        (a name answering with one public and one private address is not trusted)."""
        if target.literal is not None:
            ips = [target.literal]
        else:
            try:
                infos = self._resolver(target.host, target.port, 0, socket.SOCK_STREAM)
            except socket.gaierror as exc:
                error = ConnectionFailed(f"cannot resolve {target.host} for {redact(url)}: "
                                         f"{exc}")
                if exc.errno == socket.EAI_AGAIN:  # temporary failure in name resolution
                    raise _Retryable(error) from exc
                raise error from exc
            except (OSError, UnicodeError) as exc:
                raise ConnectionFailed(f"cannot resolve {target.host} for {redact(url)}: "
                                       f"{exc}") from exc
            ips = []
            for info in infos:
                # An IPv6 socket address may carry a scope ("fe80::1%eth0").
                text = str(info[4][0]).split("%", 1)[0]
                try:
                    ips.append(ipaddress.ip_address(text))
                except ValueError:
                    continue
            if not ips:
                raise ConnectionFailed(f"{target.host} has no IP address ({redact(url)})")
        for ip in ips:
            if not self._address_allowed(ip):
                named = "" if target.literal is not None else f"{target.host} resolves to "
                raise PrivateAddress(f"{named}{ip} is not a public address ({redact(url)})")
        return list(dict.fromkeys(str(ip) for ip in ips))

    def _address_allowed(self, ip: IPAddress) -> bool:
        if self.policy.allow_private or is_public_address(ip):
            return True
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self._allowed_networks)

    def _pool(self, target: _Target, address: str) -> urllib3.HTTPConnectionPool:
        key = (target.scheme, address, target.port, target.host)
        with self._pools_lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            if target.scheme == "https":
                # Connect to the vetted address; SNI and the certificate check use the name.
                pool = urllib3.HTTPSConnectionPool(
                    address, target.port, timeout=self._timeout, maxsize=POOL_MAXSIZE,
                    block=False, retries=False, cert_reqs="CERT_REQUIRED",
                    ca_certs=self.policy.ca_certs, server_hostname=target.host,
                    assert_hostname=target.host,
                )
            else:
                pool = urllib3.HTTPConnectionPool(
                    address, target.port, timeout=self._timeout, maxsize=POOL_MAXSIZE,
                    block=False, retries=False,
                )
            self._pools[key] = pool
            evicted = None
            if len(self._pools) > MAX_POOLS:
                # A closed pool still closes the connections handed back to it later, so a
                # thread using the evicted pool is not disturbed.
                _, evicted = self._pools.popitem(last=False)
        if evicted is not None:
            evicted.close()
        return pool

    # -- one attempt ----------------------------------------------------------------------

    def _attempt(self, target: _Target, url: str, address: str, headers: dict[str, str],
                 allowed_types: Collection[str] | None, max_bytes: int,
                 truncate: bool) -> _Response:
        pool = self._pool(target, address)
        self._throttle.wait(target.origin)
        deadline = self._clock() + self.policy.total_timeout
        try:
            response = pool.urlopen(
                "GET", target.request_target, headers=headers, retries=False, redirect=False,
                assert_same_host=False, timeout=self._timeout, preload_content=False,
                decode_content=True, release_conn=False,
            )
        except HTTPError as exc:
            raise _transport_error(exc, url, "connecting to") from exc
        reusable = False
        try:
            status = response.status
            resp_headers = {k.lower(): v for k, v in response.headers.items()}
            if status in _REDIRECTS or status == 304:
                reusable = _drain(response)
                return _Response(status, resp_headers, b"")
            if status == 429 or status >= 500:
                reusable = _drain(response)
                error = HttpStatusError(f"HTTP {status} from {redact(url)}", status)
                raise _Retryable(error, parse_retry_after(resp_headers.get("retry-after")))
            if not 200 <= status < 300:
                reusable = _drain(response)
                raise HttpStatusError(f"HTTP {status} from {redact(url)}", status)
            content_type = resp_headers.get("content-type")
            if not content_type_ok(content_type, allowed_types):
                raise BadContentType(f"content type {content_type!r} is not accepted here "
                                     f"({redact(url)})")
            encoding = resp_headers.get("content-encoding", "").strip().lower()
            if encoding not in _DECODED_ENCODINGS:
                raise BadContentEncoding(f"content encoding {encoding!r} was not asked for "
                                         f"({redact(url)})")
            body, reusable = self._read_body(response, url, max_bytes, truncate, deadline)
            return _Response(status, resp_headers, body)
        finally:
            if not reusable:
                # Unread bytes would corrupt the next request on this connection.
                response.close()
            response.release_conn()

    def _read_body(self, response: urllib3.BaseHTTPResponse, url: str, max_bytes: int,
                   truncate: bool, deadline: float) -> tuple[bytes, bool]:
        """The decoded body, and whether it was read to its end."""
        declared = response.headers.get("content-length")
        if not truncate and declared and declared.strip().isdigit() and int(declared) > max_bytes:
            raise ResponseTooLarge(f"Content-Length {declared} is over the cap of {max_bytes} "
                                   f"bytes ({redact(url)})")
        body = bytearray()
        try:
            while True:
                # read1 returns after one socket read with at most CHUNK_BYTES decoded, so the
                # deadline is checked however slowly bytes trickle in, and a compressed bomb
                # never inflates more than a chunk at a time.
                chunk = response.read1(CHUNK_BYTES)
                if not chunk:
                    return bytes(body), True
                if len(body) + len(chunk) > max_bytes:
                    if truncate:
                        body += chunk[: max_bytes - len(body)]
                        return bytes(body), False
                    raise ResponseTooLarge(f"body is over the cap of {max_bytes} bytes after "
                                           f"decompression ({redact(url)})")
                body += chunk
                if self._clock() > deadline:
                    # Not retried: the server answers, only too slowly, and would again.
                    raise FetchTimeout(f"response took longer than {self.policy.total_timeout} s "
                                       f"({redact(url)})")
        except DecodeError as exc:
            raise BadContentEncoding(f"body does not decode as "
                                     f"{response.headers.get('content-encoding')!r}: {exc} "
                                     f"({redact(url)})") from exc
        except HTTPError as exc:
            raise _transport_error(exc, url, "reading") from exc

    # -- robots.txt -----------------------------------------------------------------------

    def _check_robots(self, target: _Target, url: str) -> None:
        rules = self._robots_rules(target)
        if isinstance(rules, RejectError):
            # The host itself could not be reached: say so under the transport's own reason
            # (connection_error, timeout), not as a site that disallows us.
            raise type(rules)(f"{rules.detail}, so {redact(url)} is not fetched either "
                              "(RFC 9309: an unreachable robots.txt puts the site off limits)")
        allowed = rules if isinstance(rules, bool) else rules.can_fetch(target.clean_url,
                                                                          ROBOTS_TOKEN)
        if not allowed:
            why = "robots.txt is unavailable (429 or 5xx)" if rules is False \
                else "robots.txt disallows it"
            raise RobotsDisallowed(f"{why} for {ROBOTS_TOKEN} ({redact(url)})")

    def _robots_rules(self, target: _Target) -> _Rules:
        key = target.origin
        while True:
            with self._robots_lock:
                cached = self._robots.get(key)
                if cached is not None and cached[0] > self._clock():
                    return cached[1]
                loading = self._robots_loading.get(key)
                if loading is None:
                    loading = self._robots_loading[key] = threading.Event()
                    break
            # Another thread is fetching this robots.txt: wait for its answer, not a second
            # request to the same host.
            loading.wait()
        try:
            rules, ttl = self._load_robots(target)
            with self._robots_lock:
                now = self._clock()
                if len(self._robots) >= ROBOTS_CACHE_SIZE:
                    self._robots = {k: v for k, v in self._robots.items() if v[0] > now}
                self._robots[key] = (now + ttl, rules)
            return rules
        finally:
            with self._robots_lock:
                self._robots_loading.pop(key, None)
            loading.set()

    def _load_robots(self, target: _Target) -> tuple[_Rules, float]:
        url = f"{target.origin}/robots.txt"
        try:
            result = self._fetch(url, accept="text/plain", allowed_types=None, etag=None,
                                 last_modified=None, check_robots=False,
                                 max_bytes=ROBOTS_MAX_BYTES, truncate=True)
        except HttpStatusError as exc:
            # RFC 9309 2.3.1.3/2.3.1.4: 4xx means no rules, 5xx means the site is off limits.
            # 429 is a server asking to slow down, so it is read as unreachable, as Google does.
            if 400 <= exc.status < 500 and exc.status != 429:
                return True, ROBOTS_TTL
            log.info("robots.txt unreachable (%s): %s", exc.reason, exc.detail)
            return False, ROBOTS_ERROR_TTL
        except (TooManyRedirects, BadUrl, BadContentEncoding) as exc:
            # RFC 9309 2.3.1.2: robots.txt that cannot be followed to its end is unavailable.
            log.info("robots.txt unavailable (%s): %s", exc.reason, exc.detail)
            return True, ROBOTS_TTL
        except (FetchTimeout, ConnectionFailed) as exc:
            log.info("robots.txt unreachable (%s): %s", exc.reason, exc.detail)
            return exc, ROBOTS_ERROR_TTL
        text = result.body.decode("utf-8", errors="replace").lstrip("\ufeff")
        return Protego.parse(text), ROBOTS_TTL


def _drain(response: urllib3.BaseHTTPResponse) -> bool:
    """Read a small unwanted body so the connection can be reused; False when it was not
    read to its end (too long, unknown length, or broken)."""
    remaining = getattr(response, "length_remaining", None)
    if remaining is None or remaining > DRAIN_BYTES:
        return False
    try:
        while response.read(CHUNK_BYTES, decode_content=False):
            pass
    except (HTTPError, OSError):
        return False
    return True


def _transport_error(exc: HTTPError, url: str, doing: str) -> Exception:
    """Map a urllib3 failure to the error to raise, wrapped in _Retryable when a retry may
    help."""
    where = redact(url)
    if isinstance(exc, NewConnectionError):  # before ConnectTimeoutError: it subclasses it
        return _Retryable(ConnectionFailed(f"connection failed {doing} {where}: "
                                           f"{_reason_of(exc)}"))
    if isinstance(exc, ConnectTimeoutError):
        return _Retryable(FetchTimeout(f"connect timeout {doing} {where}"))
    if isinstance(exc, ReadTimeoutError):  # connected, then no answer (or no more of it)
        what = "no answer in time from" if doing == "connecting to" else f"read timeout {doing}"
        return _Retryable(FetchTimeout(f"{what} {where}"))
    if isinstance(exc, SSLError):
        error = ConnectionFailed(f"TLS failed {doing} {where}: {_reason_of(exc)}")
        # A certificate that does not verify will not verify on the next try either.
        return error if _is_certificate_error(exc) else _Retryable(error)
    if isinstance(exc, ProtocolError):
        return _Retryable(ConnectionFailed(f"connection broken {doing} {where}: "
                                           f"{_reason_of(exc)}"))
    if isinstance(exc, DecodeError):
        return BadContentEncoding(f"body does not decode {doing} {where}: {_reason_of(exc)}")
    return ConnectionFailed(f"HTTP failure {doing} {where}: {type(exc).__name__}")


def _reason_of(exc: BaseException) -> str:
    # urllib3 only ever saw the vetted address and the path, never the credentials, so its
    # message is safe to keep.
    return f"{type(exc).__name__}: {exc}"[:300]


def _is_certificate_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError | UrlCertificateError):
            return True
        stack.extend(a for a in current.args if isinstance(a, BaseException))
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return False
