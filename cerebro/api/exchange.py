"""
Author:  Cerebro team
Date:    2026-11-30
Subject: One request and its answer on a connection: Tornado's HTTPConnection, over a transport.
Tagline: The answer leaves the way the question came in.

An :class:`Exchange` is what Tornado's application and handlers know as
``request.connection``: they write the answer's head and body through it
(:meth:`write_headers`, :meth:`write`, :meth:`finish`) and may be told when the
client leaves (:meth:`set_close_callback`). It frames the answer by Tornado's own
rules (``tornado.http1connection.HTTP1Connection``): chunked when an HTTP/1.1
answer has no ``Content-Length``, no body for ``HEAD`` or 304, the written size
held to the announced one, ``Connection: close`` on an HTTP/1.1 request that asked
for it and ``Connection: Keep-Alive`` on an HTTP/1.0 one that asked to stay, and
no CR or LF smuggled into a header. The connection closes after the answer when
the request did not ask to stay, when the answer says ``Connection: close``, or
when the answer went out before the request's body was read.

Reading is the :class:`~cerebro.api.wire.HTTPWire`'s: it hands the exchange the
request's events (:meth:`deliver_body`, :meth:`deliver_end`), which the exchange
passes to its delegate in order, holding them while the delegate is not ready (a
pipelined request waiting for the one before it, or a delegate that asked to wait).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from tornado import httputil
from tornado.concurrent import Future
from tornado.gen import convert_yielded
from tornado.iostream import StreamClosedError

if TYPE_CHECKING:
    from cerebro.api.wire import HTTPWire

app_log = logging.getLogger("tornado.application")  # where Tornado logs a delegate's error

_CR_OR_LF = re.compile("[\r\n]")
_CONTINUE = b"HTTP/1.1 100 (Continue)\r\n\r\n"
_NO_BODY_STATUSES = (204, 304)


def keeps_alive(start_line: httputil.RequestStartLine, headers: httputil.HTTPHeaders) -> bool:
    """Whether the connection may serve another request after this one (Tornado's rule)."""
    connection = headers.get("Connection")
    if connection is not None:
        connection = connection.lower()
    if start_line.version == "HTTP/1.1":
        return connection != "close"
    if ("Content-Length" in headers or "Transfer-Encoding" in headers
            or start_line.method in ("HEAD", "GET")):
        return connection == "keep-alive"
    return False


class Exchange(httputil.HTTPConnection):
    """One request read from ``wire`` and the answer written to it."""

    def __init__(self, wire: HTTPWire, start_line: httputil.RequestStartLine,
                 headers: httputil.HTTPHeaders) -> None:
        self.wire = wire
        self.context = wire.context  # remote address and protocol (HTTPServerRequest reads it)
        self.start_line, self.headers = start_line, headers
        self.disconnect_on_finish = not keeps_alive(start_line, headers)
        self.delegate: httputil.HTTPMessageDelegate | None = None  # once started
        self.read_finished = False  # the delegate was told the request is complete
        self.write_finished = False
        self.max_body_size = wire.server.max_body_size
        self.body_size = 0
        self._close_callback: Callable[[], None] | None = None
        self._chunking = False
        self._remaining: int | None = None  # body bytes the answer still owes
        self._held: list[bytes] = []  # body chunks the delegate is not ready for yet
        self._ended = False  # the whole request is in (delivered or held)
        self._waiting = True  # the delegate is not ready: not started, or asked to wait
        self._body_started = False  # the head's checks done, 100 Continue sent if asked

    # -- reading: the wire's events, passed on in order ----------------------------------

    def start(self, delegate: httputil.HTTPMessageDelegate) -> None:
        """Hand the request's head to ``delegate``, then what is held of its body."""
        self.delegate = delegate
        if self._call(delegate.headers_received, self.start_line, self.headers):
            self._release()

    def deliver_body(self, chunk: bytes) -> None:
        """A piece of the request's body."""
        if self._waiting:
            self._held.append(chunk)
        elif not self.write_finished:
            assert self.delegate is not None
            self._call(self.delegate.data_received, chunk)

    def deliver_end(self) -> None:
        """The request is complete."""
        self._ended = True
        if not self._waiting:
            self._finish_reading()

    def _release(self) -> None:
        """The delegate is ready: pass on what is held, in order, while it stays ready (a
        body announced over the server's backstop is refused here, where Tornado does)."""
        self._waiting = False
        assert self.delegate is not None
        if not self._body_started:  # the delegate has taken the head: the body may come
            self._body_started = True
            length = self.headers.get("Content-Length")
            if (length is not None and not self.write_finished
                    and int(length) > self.max_body_size):
                self.wire.malformed("Content-Length too long", self)
                return
            if self.headers.get("Expect") == "100-continue" and not self.write_finished:
                self.wire.write(_CONTINUE)
        while self._held and not self._waiting:
            chunk = self._held.pop(0)
            if not self.write_finished and not self._call(self.delegate.data_received, chunk):
                return
        if self._ended and not self._waiting:
            self._finish_reading()

    def _finish_reading(self) -> None:
        """Tell the delegate the request is complete (unless it has answered already)."""
        if self.read_finished:
            return
        self.read_finished = True
        if not self.write_finished:
            assert self.delegate is not None
            self._call(self.delegate.finish)
        if self.write_finished:
            self.delegate = None  # done: no cycle left for the collector (see _finished)

    def _call(self, method: Callable[..., Awaitable[None] | None], *args: object) -> bool:
        """Call a delegate method; False when it failed (logged, the connection closed) or
        asked to wait (the rest is held until what it returned is done)."""
        try:
            waited = method(*args)
        except httputil.HTTPInputError as exc:  # a request Tornado cannot make (no Host...)
            self.wire.malformed(str(exc), self)
            return False
        except Exception:  # noqa: BLE001 - a delegate's bug: logged, as Tornado does
            app_log.error("Uncaught exception", exc_info=True)
            self.wire.close()
            return False
        if waited is None:
            return True
        self._waiting = True
        self.wire.hold(self)
        convert_yielded(waited).add_done_callback(self._resume)
        return False

    def _resume(self, waited: Future[None]) -> None:
        """What the delegate waited for is done: go on reading (if it failed, the error is
        logged and the connection closed, as Tornado does)."""
        self.wire.unhold(self)
        error = None if waited.cancelled() else waited.exception()
        if isinstance(error, httputil.HTTPInputError):
            self.wire.malformed(str(error), self)
            return
        if error is not None:
            app_log.error("Uncaught exception", exc_info=error)
            self.wire.close()
            return
        if not self.wire.closed:
            self._release()

    def connection_lost(self) -> None:
        """The connection closed: a delegate still reading is told; one whose request is in
        gets its close callback (its client left before the answer)."""
        if self.delegate is None or self.write_finished:
            return
        if not self.read_finished:
            self._call(self.delegate.on_connection_close)
        elif self._close_callback is not None:
            callback, self._close_callback = self._close_callback, None
            callback()
        self.delegate = None

    # -- writing: Tornado's HTTPConnection ----------------------------------------------

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        """Run ``callback`` if the client leaves after its request, before the answer."""
        self._close_callback = callback

    def set_max_body_size(self, max_body_size: int) -> None:
        """A body size limit for this request alone."""
        self.max_body_size = max_body_size

    def set_body_timeout(self, timeout: float) -> None:
        """Refused: ``CEREBRO_BODY_TIMEOUT`` is kept for every request by one sweep."""
        raise NotImplementedError("the body timeout is the server's (CEREBRO_BODY_TIMEOUT)")

    def detach(self) -> None:
        """Refused: no route takes over its connection (no WebSocket)."""
        raise NotImplementedError("this server does not hand its connections over")

    def close(self) -> None:
        """Close the connection now (the body timeout's sweep cuts a late body this way)."""
        self.wire.expire()

    def write_headers(self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
                      headers: httputil.HTTPHeaders, chunk: bytes | None = None,
                      ) -> Future[None]:
        """Write the answer's head (and its first piece of body)."""
        assert isinstance(start_line, httputil.ResponseStartLine)
        request = self.start_line
        code = start_line.code
        self._chunking = (request.version == "HTTP/1.1" and request.method != "HEAD"
                          and code not in _NO_BODY_STATUSES and not 100 <= code < 200
                          and "Content-Length" not in headers
                          and "Transfer-Encoding" not in headers)
        if headers.get("Connection", "").lower() == "close":
            self.disconnect_on_finish = True
        connection = self._connection_header()
        if connection is not None:
            headers["Connection"] = connection
        if self._chunking:
            headers["Transfer-Encoding"] = "chunked"
        if request.method == "HEAD" or code == 304:
            self._remaining = 0
        elif "Content-Length" in headers:
            self._remaining = int(headers["Content-Length"])
        else:
            self._remaining = None
        data = _head(code, start_line.reason, headers.get_all())
        return self.wire.write(data + self._framed(chunk) if chunk else data)

    def write(self, chunk: bytes) -> Future[None]:
        """Write a piece of the answer's body."""
        return self.wire.write(self._framed(chunk))

    def _framed(self, chunk: bytes) -> bytes:
        """``chunk`` as it goes on the wire; raises when it overruns ``Content-Length``."""
        if self._remaining is not None:
            self._remaining -= len(chunk)
            if self._remaining < 0:
                self.wire.close()
                raise httputil.HTTPOutputError("Tried to write more data than Content-Length")
        if self._chunking and chunk:
            return b"%x\r\n%s\r\n" % (len(chunk), chunk)
        return chunk

    def answer(self, code: int, fields: list[tuple[str, str]], body: bytes,
               close: bool = False) -> None:
        """Write a whole answer at once and finish: the status line, ``fields``, ``Connection``
        when the request needs it, ``Content-Length`` and ``body`` (none for ``HEAD``); with
        ``close``, the connection closes after it. What :meth:`write_headers` and
        :meth:`finish` do for such an answer, without building an ``HTTPHeaders``."""
        if close:
            self.disconnect_on_finish = True
        connection = self._connection_header()
        if connection is not None:
            fields = [*fields, ("Connection", connection)]
        data = _head(code, httputil.responses.get(code, "Unknown"),
                     [*fields, ("Content-Length", str(len(body)))])
        self.wire.write(data if self.start_line.method == "HEAD" else data + body)
        self._finished()

    def _connection_header(self) -> str | None:
        """The answer's ``Connection`` header, when the request needs one (Tornado's rule):
        ``close`` on HTTP/1.1 when the connection closes after it, ``Keep-Alive`` on an
        HTTP/1.0 request that asked to stay."""
        if self.start_line.version == "HTTP/1.1":
            return "close" if self.disconnect_on_finish else None
        if self.headers.get("Connection", "").lower() == "keep-alive":
            return "Keep-Alive"
        return None

    def finish(self) -> None:
        """The answer is complete: go on to the next request, or close."""
        if self._remaining and not self.wire.closed:
            self.wire.close()
            raise httputil.HTTPOutputError(
                f"Tried to write {self._remaining} bytes less than Content-Length")
        if self._chunking:
            self.wire.write(b"0\r\n\r\n")
        self._finished()

    def _finished(self) -> None:
        """The answer is written."""
        self.write_finished = True
        self._close_callback = None
        if not self.read_finished:  # answered before its body was read: nothing else to read
            self.disconnect_on_finish = True
        else:
            # read and answered: let go of the delegate, whose request points back here, so
            # the request's objects are freed at once, not left to the cyclic collector
            self.delegate = None
        self.wire.answered(self)


def _head(code: int, reason: str, fields: Iterable[tuple[str, str]]) -> bytes:
    """An answer's head: the status line and ``fields``; raises when a field would smuggle in
    a line of its own (a CR or LF)."""
    head = f"HTTP/1.1 {code} {reason}\r\n"
    for name, value in fields:
        if _CR_OR_LF.search(name) or _CR_OR_LF.search(value):
            raise ValueError(f"Illegal characters (CR or LF) in header: {name}: {value!r}")
        head += f"{name}: {value}\r\n"
    return (head + "\r\n").encode("latin1")


def closed_future() -> Future[None]:
    """A write's outcome once the connection is gone (retrieved: never logged as lost)."""
    future: Future[None] = Future()
    future.set_exception(StreamClosedError())
    future.exception()
    return future
