"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Limits for clients nobody has authenticated yet: connections per process, wrong keys.
Tagline: A door that stays open for everyone cannot be held open by anyone.

:class:`BoundedHTTPServer` is Tornado's HTTP server with a cap on open
connections: over ``CEREBRO_MAX_CONNECTIONS`` a new connection gets a JSON
503 at once and is closed, while the connections already open go on being
served. It also keeps ``CEREBRO_IDLE_TIMEOUT`` (the wait for a request head)
with one sweep per process instead of Tornado's timer around every head read
(:class:`~cerebro.api.deadlines.HeadDeadlines`); the body timeout is kept the
same way (:class:`~cerebro.api.deadlines.BodyDeadlines`).

:class:`FailedKeys` counts wrong API keys per client address in the current
minute; over ``CEREBRO_AUTH_FAILURE_LIMIT`` the address gets 429 until the
minute is over for every key that has not worked from it before, so keys
cannot be guessed at network speed while the known clients behind a shared
address (a proxy) go on.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, cast

from tornado.httpserver import HTTPServer

from cerebro import jsonio
from cerebro.api.deadlines import HeadDeadlines

if TYPE_CHECKING:
    from tornado.http1connection import HTTP1Connection
    from tornado.httputil import HTTPConnection, HTTPMessageDelegate
    from tornado.iostream import IOStream

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
MAX_TRACKED_ADDRESSES = 100_000  # a flood of addresses cannot grow the table without bound
BUSY_LOG_INTERVAL = 10.0


def _busy_response(limit: int) -> bytes:
    """The whole HTTP answer to a connection over the cap."""
    body = jsonio.dumps({"error": {
        "type": "unavailable", "field": None,
        "message": f"too many open connections (CEREBRO_MAX_CONNECTIONS={limit}); retry"}})
    return (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nRetry-After: 1\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


class BoundedHTTPServer(HTTPServer):
    """An :class:`HTTPServer` serving at most ``max_connections`` connections at once, and
    closing a connection left ``idle_timeout`` seconds without a complete request head
    (0: never)."""

    def initialize(self, *args: Any, max_connections: int = 1000, idle_timeout: float = 0.0,
                   **kwargs: Any) -> None:
        """Tornado's arguments (but ``idle_connection_timeout``: ``idle_timeout`` replaces
        it), plus the cap on open connections."""
        super().initialize(*args, **kwargs)
        self.conn_params.header_timeout = None  # no timer per head: kept by self.heads
        self.heads = HeadDeadlines(idle_timeout)
        self.max_connections = max_connections
        self.refused = 0
        self._busy = _busy_response(max_connections)
        self._last_log = 0.0

    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        """Serve the connection, or answer 503 and close it when at the cap.

        A served connection sends every answer at once (``TCP_NODELAY``, set once): each
        answer is written whole, so Nagle's algorithm has nothing to gather, and Tornado's
        switching it on and off around every answer (two system calls) is skipped.
        """
        if len(self._connections) < self.max_connections:
            stream.set_nodelay(True)
            stream.set_nodelay = _nodelay_kept  # type: ignore[method-assign]
            super().handle_stream(stream, address)
            return
        self.refused += 1
        now = time.monotonic()
        if now - self._last_log >= BUSY_LOG_INTERVAL:
            self._last_log = now
            log.warning("at the cap of %d open connections: %d new one(s) refused so far "
                        "(CEREBRO_MAX_CONNECTIONS)", self.max_connections, self.refused)
        stream.write(self._busy).add_done_callback(lambda _done: stream.close())

    def start_request(self, server_conn: object,
                      request_conn: HTTPConnection) -> HTTPMessageDelegate:
        """A connection starts waiting for its next request's head: note its deadline."""
        self.heads.start(server_conn, cast("HTTP1Connection", request_conn))
        return super().start_request(server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        """A connection closed: no head to wait for."""
        self.heads.closed(server_conn)
        super().on_close(server_conn)

    async def close_all_connections(self) -> None:
        """Close every connection, and stop the sweep."""
        self.heads.stop()
        await super().close_all_connections()


def _nodelay_kept(value: bool) -> None:
    """Tornado's ``IOStream.set_nodelay`` on a served connection: it stays on."""


class FailedKeys:
    """Wrong API keys per client address in the current minute (one table per process)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.window = 0
        self.counts: dict[str, int] = {}
        self.good: dict[str, set[int]] = {}  # keys (their index) that worked from an address

    def _roll(self) -> float:
        """Start a new window when the minute is over; returns seconds left in this one."""
        now = time.monotonic()
        window = int(now // WINDOW_SECONDS)
        if window != self.window or len(self.counts) > MAX_TRACKED_ADDRESSES:
            self.window, self.counts = window, {}
        if len(self.good) > MAX_TRACKED_ADDRESSES:
            self.good = {}
        return (window + 1) * WINDOW_SECONDS - now

    def known(self, address: str, key: int) -> bool:
        """True when key number ``key`` worked from ``address`` before."""
        return key in self.good.get(address, ())

    def succeeded(self, address: str, key: int) -> None:
        """Remember that key number ``key`` worked from ``address``."""
        keys = self.good.get(address)
        if keys is None:
            self._roll()
            keys = self.good[address] = set()
        keys.add(key)

    def blocked(self, address: str) -> float:
        """Seconds ``address`` must wait before its next try (0: it may try now)."""
        left = self._roll()
        return left if self.counts.get(address, 0) >= self.limit else 0.0

    def failed(self, address: str) -> None:
        """Count one wrong key from ``address``."""
        self._roll()
        self.counts[address] = self.counts.get(address, 0) + 1
