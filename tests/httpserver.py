"""Loopback HTTP servers for tests: real sockets, programmable routes, a request log.

Each ``LoopbackServer`` listens on 127.0.0.1 on a port of its own (port 0, so several can run
at once) and serves from a daemon thread, one thread per connection. A route maps a path
(without the query) to a ``Reply`` or to a function of the ``LoggedRequest`` that returns
one; ``sequence``, ``conditional``, ``redirect`` and ``gzipped`` build the usual cases. The
log records every request with the server's ``time.monotonic()`` at its arrival, so a test
can check spacing and headers without sleeping itself.

    with ServerGroup() as group:
        feed = group.start({"/feed.xml": conditional(Reply(body=RSS), etag='"v1"')})
        fetch(feed.url("/feed.xml"))
        assert feed.requests[0].headers["user-agent"].startswith("newsbeam/")

As a pytest fixture::

    @pytest.fixture
    def servers() -> Iterator[ServerGroup]:
        with ServerGroup() as group:
            yield group
"""

from __future__ import annotations

import gzip
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Reply:
    """What a route answers.

    ``delay`` waits before the status line; ``chunk_size`` > 0 sends the body with
    ``Transfer-Encoding: chunked`` in pieces of that size, ``chunk_delay`` apart (a trickling
    server); ``chunks`` generates the body instead of ``body`` (an endless stream) and implies
    chunked. A ``Content-Length`` in ``headers`` is sent as given (a lying one too); otherwise
    the real length is sent, or with ``content_length=False`` none, and the connection closes
    after the body.
    """

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunk_size: int = 0
    chunk_delay: float = 0.0
    content_length: bool = True
    chunks: Callable[[], Iterable[bytes]] | None = None


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the server saw it; ``arrived`` is the server's time.monotonic() once the
    request head was read."""

    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # lower-case names
    arrived: float
    port: int

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


Handler = Reply | Callable[[LoggedRequest], Reply]
NOT_FOUND = Reply(404, b"not found", {"Content-Type": "text/plain"})


def sequence(*replies: Reply) -> Callable[[LoggedRequest], Reply]:
    """Answer with ``replies`` in order, then repeat the last one (503, 503, 200 ...)."""
    if not replies:
        raise ValueError("sequence() needs at least one reply")
    lock = threading.Lock()
    served = [0]

    def handler(_: LoggedRequest) -> Reply:
        with lock:
            index = min(served[0], len(replies) - 1)
            served[0] += 1
        return replies[index]

    return handler


def conditional(reply: Reply, *, etag: str | None = None,
                last_modified: str | None = None) -> Callable[[LoggedRequest], Reply]:
    """Serve ``reply`` with the given validators, and 304 when the request's validators match
    (RFC 9110 13.1: If-None-Match wins over If-Modified-Since)."""
    validators = {}
    if etag is not None:
        validators["ETag"] = etag
    if last_modified is not None:
        validators["Last-Modified"] = last_modified
    full = replace(reply, headers={**reply.headers, **validators})
    not_modified = Reply(304, b"", validators)

    def handler(request: LoggedRequest) -> Reply:
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None:
            tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
            match = etag is not None and ("*" in tags or etag.removeprefix("W/") in tags)
            return not_modified if match else full
        since = request.headers.get("if-modified-since")
        if since is not None and last_modified is not None:
            try:
                if parsedate_to_datetime(last_modified) <= parsedate_to_datetime(since):
                    return not_modified
            except (TypeError, ValueError):
                pass
        return full

    return handler


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, b"", {"Location": location})


def gzipped(body: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    """``body`` gzip-compressed with ``Content-Encoding: gzip``."""
    return Reply(status, gzip.compress(body), {**(headers or {}), "Content-Encoding": "gzip"})


def http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LoopbackServer

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, on the connection's own thread, so a client that
        # rejects the certificate does not hold up the accepting loop.
        if self.owner.tls is not None:
            request = self.owner.tls.wrap_socket(request, server_side=True)
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients going away mid-reply (timeouts, size caps) are what the tests provoke.
        self.owner.errors += 1


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # An idle keep-alive connection ends after this many seconds, and its thread with it.
    timeout = 10
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_POST(self) -> None:
        self._serve(send_body=True)

    def _serve(self, send_body: bool) -> None:
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        owner = self.server.owner
        request = LoggedRequest(
            method=self.command,
            target=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            arrived=arrived,
            port=owner.port,
        )
        reply = owner.record(request)
        if reply.delay:
            time.sleep(reply.delay)
        try:
            self._send(reply, send_body)
        except (TimeoutError, ConnectionError, ssl.SSLError):
            self.close_connection = True

    def _send(self, reply: Reply, send_body: bool) -> None:
        self.send_response(reply.status)
        names = {k.lower() for k in reply.headers}
        for name, value in reply.headers.items():
            self.send_header(name, value)
        no_body = reply.status in (204, 304) or reply.status < 200
        chunked = not no_body and (reply.chunk_size > 0 or reply.chunks is not None)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif "content-length" not in names and not no_body:
            if reply.content_length:
                self.send_header("Content-Length", str(len(reply.body)))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
        self.end_headers()
        if no_body or not send_body:
            return
        if not chunked:
            self.wfile.write(reply.body)
            return
        pieces: Iterable[bytes]
        if reply.chunks is not None:
            pieces = reply.chunks()
        else:
            size = reply.chunk_size
            pieces = (reply.body[i:i + size] for i in range(0, len(reply.body), size))
        for piece in pieces:
            if reply.chunk_delay:
                time.sleep(reply.chunk_delay)
            if piece:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


class LoopbackServer:
    """One HTTP(S) server on 127.0.0.1; see the module docstring."""

    def __init__(self, routes: Mapping[str, Handler] | None = None, *,
                 tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self.tls = tls
        self.errors = 0
        self._routes: dict[str, Handler] = dict(routes or {})
        self._log: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._httpd = _Server((host, 0), _RequestHandler, bind_and_activate=True)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.origin + path

    def route(self, path: str, handler: Handler) -> None:
        with self._lock:
            self._routes[path] = handler

    def record(self, request: LoggedRequest) -> Reply:
        """Log the request and pick its reply (called by the request threads)."""
        with self._lock:
            self._log.append(request)
            handler = self._routes.get(request.path, NOT_FOUND)
        return handler(request) if callable(handler) else handler

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def requests_for(self, path: str) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path == path]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def start(self) -> LoopbackServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever,
                                            kwargs={"poll_interval": 0.05},
                                            name=f"loopback-{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class ServerGroup:
    """Starts servers on demand and stops them all at the end (one per simulated host)."""

    def __init__(self) -> None:
        self.servers: list[LoopbackServer] = []

    def start(self, routes: Mapping[str, Handler] | None = None, *,
              tls: ssl.SSLContext | None = None) -> LoopbackServer:
        server = LoopbackServer(routes, tls=tls).start()
        self.servers.append(server)
        return server

    def start_many(self, count: int,
                   routes: Mapping[str, Handler] | None = None) -> list[LoopbackServer]:
        return [self.start(routes) for _ in range(count)]

    def close(self) -> None:
        while self.servers:
            self.servers.pop().stop()

    def __enter__(self) -> ServerGroup:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def serve(routes: Mapping[str, Handler] | None = None) -> Iterator[LoopbackServer]:
    """A generator for a pytest fixture: ``yield from serve({...})``."""
    with LoopbackServer(routes) as server:
        yield server
