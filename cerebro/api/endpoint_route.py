"""
Author:  Cerebro team
Date:    2026-11-30
Subject: POST /v1/<module>/<function> served by a lean Tornado message delegate, no RequestHandler.
Tagline: The busiest door gets the shortest corridor.

Every model call and every async call comes through this one route, so it is
served by :class:`EndpointCall`, a :class:`tornado.httputil.HTTPMessageDelegate`,
instead of a :class:`~tornado.web.RequestHandler`. The API's own server hands it
the request through :class:`EndpointLane` before Tornado's router is consulted
(:class:`EndpointRouter`, the application's route for the same paths, serves a
request that reaches the router some other way). The connection is the API's own
(:mod:`cerebro.api.wire`: llhttp parses, :mod:`cerebro.api.exchange` writes);
what is skipped is the handler's per-request machinery this route never used: its UI
namespace, header bookkeeping, the coroutine and task around every method, the
ETag and cookie checks. That was measured side by side at about a tenth of the
API's CPU per accepted async call and a seventh of a lone model call's latency.

The answers are the handler's, header for header and byte for byte (status and
reason, ``Server``, ``Content-Type``, ``Date``, ``X-Request-Id``, ``Location``,
``Allow``, ``Retry-After``, ``Content-Length``): the API key, body size and
content type are checked from the head before a byte of body is read (an answer
sent before the body closes the connection, as Tornado does), a method other than
POST gets 405 once its body is in (one Tornado does not know, at once, before any check),
a bug gets a 500 naming an error id reported to Sherlock, a client that leaves before its
answer is no longer in flight (a stop does not wait for it), and every answer is logged
and counted as before.
"""

from __future__ import annotations

import asyncio
import re
import time
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import tornado
from tornado import httputil
from tornado.routing import Router
from tornado.web import RequestHandler

from cerebro import jsonio, metrics
from cerebro.api.handlers import (MAX_REQUEST_ID, STICKY_KEY_HEADER, check_api_key, has_body,
                                  is_json, next_request_id, pop_callback_url)
from cerebro.errors import (CerebroError, InternalError, MethodNotAllowed, PayloadTooLarge,
                            TooManyRequests, Unavailable, UnsupportedMediaType, http_status)
from cerebro.reporting import report
from cerebro.runner import RunnerClosed

if TYPE_CHECKING:
    from collections.abc import Callable

    from tornado.httputil import HTTPServerRequest, RequestStartLine, ResponseStartLine

    from cerebro.api.app import Context
    from cerebro.api.exchange import Exchange

_SERVER = f"TornadoServer/{tornado.version}"  # what RequestHandler.clear sets


NAME = r"([A-Za-z_][A-Za-z0-9_]*)"  # a module or function name, as a route's group
ENDPOINT_PATH = rf"/v1/{NAME}/{NAME}"  # the route: /v1/<module>/<function>
# the same path at the start of a request target, before its query (Tornado matches the path)
_LANE_TARGET = re.compile(ENDPOINT_PATH + r"(?:\?|$)")
_SHADOWED = "tasks"  # /v1/tasks/<id> is the task status route, tried first


class EndpointLane:
    """The endpoint route taken by the API's own server before Tornado's router: for a request
    whose target is ``/v1/<module>/<function>``, the :class:`EndpointCall` Tornado's routing
    would make (:class:`EndpointRouter`, the application's route for the same paths), made at
    once; ``None`` for any other request, which Tornado routes. What is skipped is the walk
    through the application's rules, the path's regular expression run again and its groups
    unquoted (names have nothing to unquote)."""

    def __init__(self, ctx: Context, log: Any) -> None:
        self.ctx = ctx
        self.log = log

    def __call__(self, exchange: Exchange) -> EndpointCall | None:
        """The delegate of ``exchange``'s request, or ``None`` when it is not an endpoint call."""
        target = _LANE_TARGET.match(exchange.start_line.path)
        if target is None or target[1] == _SHADOWED:
            return None
        return EndpointCall(self.ctx, LaneRequest(exchange), target[1], target[2], self.log)


class LaneRequest(httputil.HTTPServerRequest):
    """The :class:`~tornado.httputil.HTTPServerRequest` of an endpoint call, made the quick
    way when its ``Host`` was checked before and its target has no query: the same
    attributes, without parsing an empty query, copying the empty result, or matching the
    same ``Host`` again. Any other request is made by Tornado itself, with its checks (a
    missing or malformed ``Host`` raises :class:`~tornado.httputil.HTTPInputError`, a 400);
    a ``Host`` it accepted joins the checked ones (up to :data:`MAX_CHECKED_HOSTS`)."""

    _checked: dict[str, str] = {}  # Host header -> host name, as Tornado derived it
    MAX_CHECKED_HOSTS = 64

    def __init__(self, exchange: Exchange) -> None:
        start_line, headers = exchange.start_line, exchange.headers
        host = headers.get("Host")
        host_name = self._checked.get(host) if host is not None else None
        if host_name is None or "?" in start_line.path:
            super().__init__(connection=exchange, server_connection=exchange.wire,
                             start_line=start_line, headers=headers)
            self._remember(self.host, self.host_name)
            return
        self.method, self.uri, self.version = start_line
        self.headers, self.body, self.files = headers, b"", {}
        context = exchange.context
        self.remote_ip = getattr(context, "remote_ip", None)
        self.protocol = getattr(context, "protocol", "http")
        self.host, self.host_name = cast(str, host), host_name
        self.connection, self.server_connection = exchange, exchange.wire
        self._start_time, self._finish_time = time.time(), None
        self.path, self.query = start_line.path, ""
        self.arguments, self.query_arguments, self.body_arguments = {}, {}, {}

    @classmethod
    def _remember(cls, host: str, host_name: str) -> None:
        """Note a ``Host`` Tornado accepted (the table starts over when full)."""
        if len(cls._checked) >= cls.MAX_CHECKED_HOSTS:
            cls._checked.clear()
        cls._checked[host] = host_name


class EndpointRouter(Router):
    """The target of the endpoint route: hands each request to a new :class:`EndpointCall`."""

    def __init__(self, ctx: Context, log: Any) -> None:
        self.ctx = ctx
        self.log = log  # the access log function (cerebro.api.app.log_request)

    def find_handler(self, request: HTTPServerRequest,
                     **kwargs: Any) -> httputil.HTTPMessageDelegate:
        """The delegate of one request (``path_args``: module and function, as bytes)."""
        module, function = (arg.decode() for arg in kwargs["path_args"])
        return EndpointCall(self.ctx, request, module, function, self.log)


class _HTTPDate:
    """The ``Date`` header's value, formatted once per second."""

    def __init__(self) -> None:
        self._second, self._value = -1, ""

    def __call__(self) -> str:
        """Now, as an HTTP date."""
        now = int(time.time())
        if now != self._second:
            self._second, self._value = now, httputil.format_timestamp(now)
        return self._value


_http_date = _HTTPDate()


class EndpointCall(httputil.HTTPMessageDelegate):
    """One ``/v1/<module>/<function>`` request: checked at its head, called once its body is
    in, answered with JSON."""

    def __init__(self, ctx: Context, request: HTTPServerRequest, module: str, function: str,
                 log: Any) -> None:
        self.ctx, self.request, self.log = ctx, request, log
        self.path_args = (module, function)
        self.request_id = ""
        self._headers: dict[str, str] = {}  # headers of the answer, besides the standard ones
        self._chunks: list[bytes] = []
        self._size, self._too_large = 0, False
        self._finished = False
        self._status = 200
        self._started = time.perf_counter()

    # -- what Tornado calls -----------------------------------------------------------

    def headers_received(self, start_line: RequestStartLine | ResponseStartLine,
                         headers: httputil.HTTPHeaders) -> None:
        """Check the API key and the declared body before the body is read."""
        if self.request.method not in RequestHandler.SUPPORTED_METHODS:
            self._fail(MethodNotAllowed(httputil.responses[405]))  # as a handler: no checks
            return
        self.ctx.inflight.add(self)
        connection = self.request.connection
        if connection is not None:  # the client leaving after its body, before the answer
            connection.set_close_callback(  # type: ignore[attr-defined]
                self.on_connection_close)  # an Exchange
        given = headers.get("X-Request-Id", "")
        self.request_id = (given if 0 < len(given) <= MAX_REQUEST_ID and given.isprintable()
                           else next_request_id())
        self._headers["X-Request-Id"] = self.request_id
        try:
            self._check_head(headers)
        except CerebroError as error:
            self._done(error)
            return
        except Exception as exc:  # noqa: BLE001 - a bug: 500 with an error id, reported
            self._bug(exc)
            return
        if has_body(headers):
            self.ctx.bodies.start(self)  # closed if the body is not complete in time

    def _check_head(self, headers: httputil.HTTPHeaders) -> None:
        """Raise the :class:`CerebroError` refusing the request from its head, if any."""
        check_api_key(self.ctx, self.request)
        length = headers.get("Content-Length")
        # a length that is not plain digits is Tornado's to refuse (400) when it reads the body
        if length and length.isascii() and length.isdigit() \
                and int(length) > self.ctx.settings.max_body_bytes:
            raise self._too_large_error()
        if has_body(headers) and not is_json(headers):
            raise UnsupportedMediaType(
                "send the body as JSON with 'Content-Type: application/json' (got "
                f"{headers.get('Content-Type', 'none')[:60]!r})", "Content-Type")

    def data_received(self, chunk: bytes) -> None:
        """Collect the body; once it is over the limit (a body sent in chunks, with no
        length announced), answer 413 at once: the rest is never read."""
        if self._finished:
            return
        self._size += len(chunk)
        if self._size > self.ctx.settings.max_body_bytes:
            self._too_large, self._chunks = True, []
            self._done(self._too_large_error())
        else:
            self._chunks.append(chunk)

    def finish(self) -> None:
        """The body is complete: validate the payload, then call at once or queue."""
        self.ctx.bodies.done(self)
        if self._finished:  # refused before its body was read
            return
        if self.request.method != "POST":
            self._headers = {}  # as the handler's 405 had: no X-Request-Id
            self._fail(MethodNotAllowed(httputil.responses[405]))
            return
        self._guarded(self._call)

    def on_connection_close(self) -> None:
        """The client went away: no longer in flight (the call, if running, just finishes)."""
        self._on_finish()

    # -- the call ------------------------------------------------------------------------

    def _call(self) -> None:
        """Validate and start the call; its answer comes back to :meth:`_answered`."""
        if self._too_large:
            raise self._too_large_error()
        module, function = self.path_args
        body = b"".join(self._chunks)
        payload = jsonio.loads(body) if body.strip() else {}
        callback_url = pop_callback_url(self.ctx.registry, module, function, payload)
        call = self.ctx.dispatcher.prepare(module, function, payload, self._sticky_key())
        future: asyncio.Future[Any]
        if call.endpoint.external:
            if self.ctx.submitter is None:
                raise Unavailable("the async path (RabbitMQ + Celery) is not configured")
            future = self.ctx.submitter(self, call, payload, callback_url=callback_url)
        elif call.endpoint.batch is not None:
            future = self.ctx.batcher(call.endpoint).submit(call, self.request_id)
        else:
            run = partial(self.ctx.dispatcher.run_json, call, service="api",
                          request_id=self.request_id)
            future = self.ctx.runner(module).run(run)
        future.add_done_callback(self._answered)

    def _answered(self, future: asyncio.Future[Any]) -> None:
        """The call is over: answer its outcome or its error."""
        self._guarded(self._answer, future)

    def _answer(self, future: asyncio.Future[Any]) -> None:
        """Answer the call's outcome (an async call's is ``(status, body)``); raises its
        error."""
        outcome = future.result()
        if isinstance(outcome, tuple):
            self._done(None, outcome[1], outcome[0])
        else:
            self._done(None, outcome)

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        """Run ``step(*args)``; an error it raises is the answer: a :class:`CerebroError`
        as itself, a runner shut down as 503, anything else as a bug (500, reported)."""
        try:
            step(*args)
        except CerebroError as error:
            self._done(error)
        except (RunnerClosed, asyncio.CancelledError):  # a call cancelled: the loop is closing
            self._done(Unavailable("the server is shutting down; retry on another instance"))
        except Exception as exc:  # noqa: BLE001 - a bug: 500 with an error id, reported
            self._bug(exc)

    def _sticky_key(self) -> str | None:
        """The ``X-Cerebro-Sticky-Key`` header (a canary sends the same key to the same
        version), or ``None`` when absent, too long or not printable."""
        given = self.request.headers.get(STICKY_KEY_HEADER)
        if given and len(given) <= MAX_REQUEST_ID and given.isprintable():
            return given
        return None

    def _too_large_error(self) -> PayloadTooLarge:
        """The 413 error naming the limit."""
        limit = self.ctx.settings.max_body_bytes
        return PayloadTooLarge(f"request body is over the limit of {limit} bytes "
                               "(CEREBRO_MAX_BODY_BYTES)")

    # -- answering -------------------------------------------------------------------------

    def set_header(self, name: str, value: str) -> None:
        """Add a header to the answer (the submitter's ``Location``)."""
        self._headers[name] = value

    def get_status(self) -> int:
        """The answer's status (for the access log)."""
        return self._status

    def _done(self, error: CerebroError | None, data: bytes | None = None,
              status: int = 200) -> None:
        """Finish with a result or an error, and record the request's metrics."""
        if self._finished:
            return
        if error is None:
            self._send(status, data or b"")
        else:
            self._fail(error)
        module, function = self.path_args
        mod = self.ctx.registry.modules.get(module)  # one read: the table may be swapped
        known = mod is not None and function in mod.endpoints
        metrics.observe(module if known else "-", function if known else "-", self._status,
                        time.perf_counter() - self._started, error.type if error else None)

    def _fail(self, error: CerebroError) -> None:
        """Answer a :class:`CerebroError` as its JSON error body."""
        request_id = self._headers.get("X-Request-Id")
        self._headers = {"X-Request-Id": request_id} if request_id else {}
        if isinstance(error, TooManyRequests):
            self._headers["Retry-After"] = str(max(1, round(error.retry_after)))
        if isinstance(error, MethodNotAllowed):
            self._headers["Allow"] = "POST"
        self._send(http_status(error), jsonio.dumps({"error": error.to_dict()}))

    def _bug(self, exc: BaseException) -> None:
        """An unexpected exception: reported with an error id, answered 500."""
        error = InternalError()
        report(exc, service="api", request_id=self.request.headers.get("X-Request-Id"),
               error_id=error.error_id, path=self.request.path)
        self._headers = {}
        self._send(500, jsonio.dumps({"error": error.to_dict()}))

    def _send(self, status: int, body: bytes) -> None:
        """Write the answer (headers and body at once), then log it."""
        if self._finished:
            return
        self._finished, self._status = True, status
        fields = [("Server", _SERVER), ("Content-Type", "application/json"),
                  ("Date", _http_date()), *self._headers.items()]
        connection = cast("Exchange", self.request.connection)
        connection.set_close_callback(None)  # answered
        # ctx.stopping: the client should not send its next request on this connection
        connection.answer(status, fields, body, close=self.ctx.stopping)
        self._on_finish()
        self.log(self)

    def _on_finish(self) -> None:
        """No longer in flight, no body awaited."""
        self.ctx.inflight.discard(self)
        self.ctx.bodies.done(self)
