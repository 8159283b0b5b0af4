"""
Author:  Cerebro team
Date:    2026-11-30
Subject: One client connection of the API: HTTP/1.1 read with llhttp, served by the Tornado app.
Tagline: Read the wire once, in C; leave the answering to Tornado.

:class:`HTTPWire` is an asyncio protocol: the event loop hands it what the
socket received, llhttp (``httptools``, the parser uvicorn uses) parses it, and
each request goes to the Tornado application as Tornado's own
``HTTP1ServerConnection`` would hand it over (``start_request``, then
``headers_received``, ``data_received``, ``finish`` on the delegate; the answer
comes back through the request's :class:`~cerebro.api.exchange.Exchange`). The
application, its routes, handlers and :class:`~cerebro.api.endpoint_route.EndpointCall`
are unchanged; what is replaced is Tornado's ``IOStream`` and ``HTTP1Connection``,
whose futures, coroutines and reader registrations cost about 390 us of CPU per
request on a 2-core VM at 250 requests/s (measured: a bare delegate answering a
constant cost 468-500 us per request over Tornado's stack, 92-96 us over this).

It keeps Tornado's promises: requests on a connection are answered one at a
time, in order (pipelined ones wait, parsed, with reading paused, and none is
started while the client's answers back up); a malformed request gets a bare
400 and the connection is closed after the answers before it (as does a request
Tornado cannot make, a method llhttp does not know, a version other than
HTTP/1.x, a ``Transfer-Encoding`` other than ``chunked``, both
``Content-Length`` and ``Transfer-Encoding``, or a body over the server's
backstop); a request head over ``max_header_size`` (64 KiB) gets a bare 431; an
``Upgrade`` offer is ignored, as Tornado ignored it; a delegate's exception is
logged as Tornado logs it and closes the connection. An end of stream from the
client closes the connection (its delegate is told, as with Tornado).
``CEREBRO_IDLE_TIMEOUT`` is kept by the server's
:class:`~cerebro.api.deadlines.HeadDeadlines`: the connection is noted when it
starts waiting for a head (or for its client to take its answers) and forgotten
once the next head is in.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import httptools
from tornado import httputil
from tornado.http1connection import is_transfer_encoding_chunked
from tornado.httpserver import _HTTPRequestContext
from tornado.iostream import StreamClosedError

from cerebro.api.exchange import Exchange, closed_future

if TYPE_CHECKING:
    from tornado.concurrent import Future

    from cerebro.api.limits import BoundedHTTPServer

gen_log = logging.getLogger("tornado.general")  # where Tornado logs malformed requests

_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\n\r\n"
_HEAD_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n"


_NAMES: dict[bytes, str] = {}  # a header name as sent -> its Http-Header-Case form
_MAX_NAMES = 512  # names seen; past that the table starts again (a flood of names is no leak)


def request_headers(fields: list[tuple[bytes, bytes]]) -> httputil.HTTPHeaders:
    """The :class:`~tornado.httputil.HTTPHeaders` of a head llhttp parsed, built as
    ``HTTPHeaders.add`` would build it (names in Http-Header-Case, repeated ones kept in
    order), without its per-field checks: llhttp has refused a name that is not a token
    and a value with a control character already."""
    headers = httputil.HTTPHeaders.__new__(httputil.HTTPHeaders)
    as_list: dict[str, list[str]] = {}
    for raw, value in fields:
        name = _NAMES.get(raw)
        if name is None:
            if len(_NAMES) >= _MAX_NAMES:
                _NAMES.clear()
            name = _NAMES[raw] = "-".join(
                word.capitalize() for word in raw.decode("latin1").split("-"))
        text = value.rstrip(b" \t").decode("latin1")  # llhttp keeps trailing blanks
        values = as_list.get(name)
        if values is None:
            as_list[name] = [text]
        else:
            values.append(text)
    headers._as_list, headers._combined_cache = as_list, {}
    return headers


class _Malformed(Exception):
    """A request the wire refuses (raised in a parser callback; its text is logged)."""


class _HeadTooLarge(_Malformed):
    """A request head over the server's ``max_header_size``: refused with a 431."""


class _Socket:
    """What Tornado's request context reads of a stream: its socket (for the family)."""

    def __init__(self, sock: Any) -> None:
        self.socket = sock


class HTTPWire(asyncio.Protocol):
    """One client connection, parsed by llhttp and served by ``server``'s application."""

    def __init__(self, server: BoundedHTTPServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.context: _HTTPRequestContext | None = None
        self.closed = False
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._fields: list[tuple[bytes, bytes]] = []
        self._reading: Exchange | None = None  # the request being parsed
        self._serving: Exchange | None = None  # the request being answered
        self._queue: deque[Exchange] = deque()  # parsed while another one is answered
        self._in_head = False
        self._head_bytes = 0  # the head's bytes counted field by field
        self._head_raw = 0  # bytes of chunks that arrived while a head was under way
        self._completed = 0  # requests completed in the chunk being parsed
        self._starting = False  # serve_next is running (a request answered at once re-enters)
        self._holds = 0  # delegates that asked the wire to wait
        self._paused = False
        self._ignore_rest = False  # after a malformed request: nothing more is read
        self._continuing: Exchange | None = None  # an upgrade request whose body is next
        self._failed: bytes | None = None  # the bare answer owed after the ones being answered
        self._drains: list[Future[None]] = []
        self._done: Future[None] | None = None  # a write's outcome while not backed up

    # -- the connection ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """A client connected: admitted under the cap, it waits for its first head."""
        self.transport = transport  # type: ignore[assignment]  # a stream transport
        self.context = _HTTPRequestContext(
            _Socket(transport.get_extra_info("socket")),  # type: ignore[arg-type]
            transport.get_extra_info("peername"), self.server.protocol,
            self.server.trusted_downstream)
        if self.server.admit(self):
            self.server.heads.start(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: the request being served is told, writes waiting fail."""
        self.closed = True
        self.server.on_close(self)
        drains, self._drains = self._drains, []
        for drain in drains:
            if not drain.done():
                drain.set_exception(StreamClosedError())
                drain.exception()
        serving, self._serving = self._serving, None
        self._queue.clear()
        if serving is not None:
            serving.connection_lost()

    def close(self) -> None:
        """Close the connection (what is written goes out first)."""
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    def expire(self) -> None:
        """Close the connection for a timeout: an answer the client has not taken is dropped
        (a client that stopped reading would otherwise hold it, and its place under the cap,
        for as long as TCP keeps the connection)."""
        transport = self.transport
        if transport is not None and transport.get_write_buffer_size():
            self.closed = True
            transport.abort()
        else:
            self.close()

    # -- reading ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Parse what arrived; each complete head starts (or queues) a request."""
        if self._ignore_rest or self.closed:
            return
        self._completed = 0
        try:
            self._feed(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self.malformed(str(exc.__context__), answer=_HEAD_TOO_LARGE)
                return
            if isinstance(exc.__context__, (_Malformed, httputil.HTTPInputError)):
                self.malformed(str(exc.__context__))
                return
            raise
        except httptools.HttpParserError as exc:
            self.malformed(str(exc))
            return
        if self._in_head and not self._completed and not self.closed:
            # the whole chunk is (more of) the head under way: a field not finished yet, which
            # llhttp holds and the count by field has not seen, counts too
            self._head_raw += len(data)
            if self._head_raw > self.server.max_header_size:
                self.malformed(f"request head over {self.server.max_header_size} bytes",
                               answer=_HEAD_TOO_LARGE)
                return
        self._flow()

    def _feed(self, data: bytes) -> None:
        """Parse ``data``. A request asking to upgrade the connection (an ``Upgrade`` header
        naming ``Connection: upgrade``, such as the ``h2c`` that Java's HTTP client offers)
        is served as plain HTTP/1.1, as Tornado does (no route upgrades): llhttp stops after
        its head, so parsing goes on with a new parser, which first reads the request's body
        by the request's own framing."""
        while True:
            try:
                self._parser.feed_data(data)
                return
            except httptools.HttpParserUpgrade as upgrade:
                data = data[int(upgrade.args[0]):]
                self._parser = httptools.HttpRequestParser(self)
                exchange = self._continuing
                if exchange is not None:  # its body is next: frame it as its head did
                    framing = (b"Transfer-Encoding: chunked" if "Transfer-Encoding"
                               in exchange.headers else b"Content-Length: "
                               + exchange.headers["Content-Length"].encode())
                    self._parser.feed_data(b"PUT / HTTP/1.1\r\n" + framing + b"\r\n\r\n")
                if not data:
                    return

    def on_message_begin(self) -> None:
        """A request starts."""
        if self._continuing is not None:  # the framing of an upgrade request's body
            return
        self._url, self._fields = b"", []
        self._in_head, self._head_bytes, self._head_raw = True, 0, 0

    def on_url(self, url: bytes) -> None:
        """(Part of) the request target."""
        self._url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        """One header field."""
        if self._continuing is None:
            self._fields.append((name, value))
            self._count_head(len(name) + len(value) + 4)

    def _count_head(self, size: int) -> None:
        """Count ``size`` bytes of the head being read; over the limit, it is refused (431)."""
        self._head_bytes += size
        if self._head_bytes > self.server.max_header_size:
            raise _HeadTooLarge(f"request head over {self.server.max_header_size} bytes")

    def on_headers_complete(self) -> None:
        """The head is in: a request to answer now, or after the ones before it."""
        if self._continuing is not None:  # an upgrade request's body comes next
            self._reading, self._continuing = self._continuing, None
            return
        self._in_head = False
        self.server.heads.done(self)
        if self.closed:
            return
        parser = self._parser
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise _Malformed(f"Malformed HTTP version in HTTP Request-Line: HTTP/{version}")
        headers = request_headers(self._fields)
        try:
            is_transfer_encoding_chunked(headers)  # Tornado's rule: chunked or none
        except httputil.HTTPInputError as exc:
            raise _Malformed(str(exc)) from None
        start_line = httputil.RequestStartLine(
            parser.get_method().decode("latin1"), self._url.decode("latin1"), "HTTP/" + version)
        exchange = self._reading = Exchange(self, start_line, headers)
        if self._serving is None and not self._drains:
            self._start(exchange)
        else:
            self._queue.append(exchange)

    def on_body(self, body: bytes) -> None:
        """A piece of the body of the request being read."""
        exchange = self._reading
        if exchange is None or self.closed:
            return
        exchange.body_size += len(body)
        if exchange.body_size > exchange.max_body_size and not exchange.write_finished:
            raise _Malformed("request body too large")
        exchange.deliver_body(body)

    def on_message_complete(self) -> None:
        """The request being read is complete."""
        self._completed += 1
        exchange, self._reading = self._reading, None
        if exchange is None or self.closed:
            return
        headers = exchange.headers
        if self._parser.should_upgrade() and (
                "Transfer-Encoding" in headers or headers.get("Content-Length", "0") != "0"):
            self._continuing = exchange  # llhttp skipped its body: read next (see _feed)
            return
        exchange.deliver_end()

    def _start(self, exchange: Exchange) -> None:
        """Serve ``exchange`` now: its delegate gets its head, and what is in of its body."""
        self.server.heads.done(self)  # being served: no idle timeout
        self._serving = exchange
        try:
            delegate = self.server.start_request(self, exchange)
        except httputil.HTTPInputError as exc:  # e.g. no Host: the request cannot be made
            self.malformed(str(exc), exchange)
            return
        exchange.start(delegate)

    def malformed(self, reason: str, exchange: Exchange | None = None,
                  answer: bytes = _BAD_REQUEST) -> None:
        """A request that cannot be read (``exchange``, else the one being read): ``answer``
        (a bare 400) and close, once the requests before it are answered."""
        gen_log.info("Malformed HTTP message from %s: %s", self.context, reason)
        self._ignore_rest = True
        failed = exchange if exchange is not None else self._reading
        if failed is not None and failed is self._serving:
            self._serving = None
            self._queue.clear()  # every request queued came after it: none is answered
            failed.connection_lost()  # a delegate still reading is told, as Tornado does
        self._queue = deque(queued for queued in self._queue if queued is not failed)
        self._failed = answer
        if self._serving is None:
            self._serve_next()

    def _refuse(self, answer: bytes) -> None:
        """Write a bare error answer and close."""
        if self.transport is not None and not self.closed:
            self.transport.write(answer)
        self.close()

    # -- flow control ----------------------------------------------------------------------

    def hold(self, exchange: Exchange) -> None:
        """A delegate asked to wait: read nothing more until it is ready."""
        self._holds += 1
        self._flow()

    def unhold(self, exchange: Exchange) -> None:
        """A delegate that waited is ready."""
        self._holds -= 1
        self._flow()

    def _flow(self) -> None:
        """Read while nothing waits; pause while requests are queued or a delegate waits."""
        if self.transport is None or self.closed:
            return
        stop = bool(self._queue) or self._holds > 0 or bool(self._drains)
        if stop != self._paused:
            self._paused = stop
            if stop:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    # -- writing ---------------------------------------------------------------------------

    def write(self, data: bytes) -> Future[None]:
        """Write ``data``; the future is done once the transport is not backed up."""
        if self.closed or self.transport is None:
            return closed_future()
        self.transport.write(data)
        if self._drains:
            drain: Future[None] = asyncio.get_running_loop().create_future()
            self._drains.append(drain)
            return drain
        done = self._done
        if done is None:
            done = self._done = asyncio.get_running_loop().create_future()
            done.set_result(None)
        return done

    def pause_writing(self) -> None:
        """The transport is backed up: writes are done only once it drains."""
        self._drains.append(asyncio.get_running_loop().create_future())

    def resume_writing(self) -> None:
        """The transport drained: what waited for it goes on (the next request too)."""
        drains, self._drains = self._drains, []
        for drain in drains:
            if not drain.done():
                drain.set_result(None)
        if self._serving is None and not self.closed:
            self._serve_next()
        else:
            self._flow()

    def unsent(self) -> int:
        """Bytes of answers handed to the transport and not yet sent."""
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def answered(self, exchange: Exchange) -> None:
        """``exchange``'s answer is complete: close, or serve the next request."""
        if exchange is not self._serving:
            return
        self._serving = None
        if exchange.disconnect_on_finish:
            self.close()
            return
        self._serve_next()

    def _serve_next(self) -> None:
        """Serve the requests queued behind the one answered, one after the other, while the
        client takes its answers (nothing more is started or read while the transport is
        backed up: a client that never reads cannot make answers pile up); then the answer
        owed to a malformed request, or wait for the next head. A request answered at once
        comes back here: the loop below goes on with the next one (no recursion)."""
        if self._starting:
            return
        self._starting = True
        try:
            while (self._serving is None and self._queue and not self._drains
                   and not self.closed):
                self._start(self._queue.popleft())
        finally:
            self._starting = False
        if self._serving is None and not self.closed:
            if self._failed is not None and not self._queue:
                self._refuse(self._failed)
                return
            if not self._ignore_rest or self._queue:
                # waiting for the next head, or for the client to take its answers: the idle
                # timeout runs (a client taking nothing of its answers for that long is
                # dropped; one still reading gets more time: HeadDeadlines.sweep)
                self.server.heads.start(self)
        self._flow()
