"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Limits for clients nobody has authenticated yet: connections per process, wrong keys.
Tagline: A door that stays open for everyone cannot be held open by anyone.

:class:`BoundedHTTPServer` serves the Tornado application on the API's own
connections (:class:`~cerebro.api.wire.HTTPWire`) with a cap on open
connections: over ``CEREBRO_MAX_CONNECTIONS`` a new connection gets a JSON
503 at once and is closed, while the connections already open go on being
served. It keeps ``CEREBRO_IDLE_TIMEOUT`` (the wait for a request head) with
one sweep per process (:class:`~cerebro.api.deadlines.HeadDeadlines`); the
body timeout is kept the same way (:class:`~cerebro.api.deadlines.BodyDeadlines`).

:class:`FailedKeys` counts wrong API keys per client address in the current
minute; over ``CEREBRO_AUTH_FAILURE_LIMIT`` the address gets 429 until the
minute is over for every key that has not worked from it before, so keys
cannot be guessed at network speed while the known clients behind a shared
address (a proxy) go on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, cast

from tornado import httputil

from cerebro import jsonio
from cerebro.api.deadlines import HeadDeadlines
from cerebro.api.wire import HTTPWire

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Iterable

    from cerebro.api.exchange import Exchange

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


class BoundedHTTPServer(httputil.HTTPServerConnectionDelegate):
    """The API's HTTP server: ``app`` served on :class:`~cerebro.api.wire.HTTPWire`
    connections, at most ``max_connections`` at once, each closed when left
    ``idle_timeout`` seconds without a complete request head (0: never).

    Tornado's :class:`~tornado.httpserver.HTTPServer` arguments that the API uses keep
    their meaning: ``xheaders`` (the client address and scheme from ``X-Real-Ip``,
    ``X-Forwarded-For`` and ``X-Forwarded-Proto``), ``protocol``, ``trusted_downstream``,
    ``max_header_size`` and ``max_body_size`` (a backstop: the handlers refuse a body over
    ``CEREBRO_MAX_BODY_BYTES`` themselves). ``lane(exchange)`` may serve a request before the
    application's router sees it (the endpoint route's
    :class:`~cerebro.api.endpoint_route.EndpointLane`); ``None`` leaves it to the router.
    """

    def __init__(self, app: httputil.HTTPServerConnectionDelegate, *, xheaders: bool = False,
                 protocol: str | None = None, trusted_downstream: list[str] | None = None,
                 max_connections: int = 1000, idle_timeout: float = 0.0,
                 max_header_size: int = 65536, max_body_size: int = 100 * 1024 * 1024,
                 lane: Callable[[Exchange], httputil.HTTPMessageDelegate | None] | None = None,
                 ) -> None:
        self.app = app
        self.lane = lane
        self.xheaders, self.protocol = xheaders, protocol
        self.trusted_downstream = trusted_downstream
        self.max_header_size, self.max_body_size = max_header_size, max_body_size
        self.heads = HeadDeadlines(idle_timeout)
        self.max_connections = max_connections
        self.connections: set[HTTPWire] = set()
        self.refused = 0
        self._busy = _busy_response(max_connections)
        self._last_log = 0.0
        self._servers: list[asyncio.AbstractServer] = []
        self._all_closed: asyncio.Future[None] | None = None

    async def serve(self, sockets: Iterable[socket.socket]) -> None:
        """Accept connections on ``sockets`` (bound and listening) from now on."""
        loop = asyncio.get_running_loop()
        for sock in sockets:
            self._servers.append(await loop.create_server(
                lambda: HTTPWire(self), sock=sock))

    def admit(self, wire: HTTPWire) -> bool:
        """Take ``wire`` under the cap, or answer it 503 and close it (False).

        Every connection sends each answer whole and at once, with ``TCP_NODELAY`` (the
        event loop sets it on every TCP connection).
        """
        if len(self.connections) < self.max_connections:
            self.connections.add(wire)
            return True
        self.refused += 1
        now = time.monotonic()
        if now - self._last_log >= BUSY_LOG_INTERVAL:
            self._last_log = now
            log.warning("at the cap of %d open connections: %d new one(s) refused so far "
                        "(CEREBRO_MAX_CONNECTIONS)", self.max_connections, self.refused)
        assert wire.transport is not None
        wire.transport.write(self._busy)
        wire.close()
        return False

    def start_request(self, server_conn: object,
                      request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        """The delegate of one request (its head is in): the lane's, else the application's.

        With ``xheaders``, the connection's client address and scheme become the request's
        proxy headers' first (Tornado's own rules, undone for the next request), so the
        request reads them when it is made.
        """
        exchange = cast("Exchange", request_conn)
        context = exchange.context
        if self.xheaders and context is not None:
            context._unapply_xheaders()
            context._apply_xheaders(exchange.headers)
        delegate = self.lane(exchange) if self.lane is not None else None
        if delegate is None:
            return self.app.start_request(server_conn, request_conn)
        return delegate

    def on_close(self, server_conn: object) -> None:
        """A connection closed: no head to wait for, one less under the cap."""
        wire = cast("HTTPWire", server_conn)
        self.heads.closed(wire)
        self.connections.discard(wire)
        if not self.connections and self._all_closed is not None \
                and not self._all_closed.done():
            self._all_closed.set_result(None)

    def stop(self) -> None:
        """Accept no new connection (the open ones go on)."""
        for server in self._servers:
            server.close()

    async def close_all_connections(self) -> None:
        """Close every connection (what is written goes out first), stop the sweep, and
        wait until they are gone."""
        self.heads.stop()
        if not self.connections:
            return
        self._all_closed = asyncio.get_running_loop().create_future()
        for wire in list(self.connections):
            wire.close()
        await self._all_closed


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
