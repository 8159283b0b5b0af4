"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Request handlers of the REST API: endpoints, modules, health, readiness, metrics, OpenAPI.
Tagline: Every answer is JSON, every error has a name, no traceback leaves the building.
"""

from __future__ import annotations

import hmac
import itertools
import os
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tornado.ioloop import IOLoop
from tornado.web import HTTPError, RequestHandler, stream_request_body

from cerebro import jsonio, metrics
from cerebro.api import openapi
from cerebro.errors import (CerebroError, InternalError, InvalidPayload, MethodNotAllowed,
                            NotFound, PayloadTooLarge, TooManyRequests, Unauthorized,
                            Unavailable, UnsupportedMediaType, http_status)
from cerebro.monitoring import drift
from cerebro.monitoring.policy import DEFAULT as DEFAULT_MONITORING
from cerebro.reporting import report
from cerebro.runner import RunnerClosed
from cerebro.volume import VolumeError

if TYPE_CHECKING:
    from types import TracebackType

    from tornado.httputil import HTTPHeaders, HTTPServerRequest

    from cerebro.api.app import Context
    from cerebro.registry import Registry

MAX_REQUEST_ID = 128  # a longer X-Request-Id is replaced: it travels into callbacks and logs
STICKY_KEY_HEADER = "X-Cerebro-Sticky-Key"  # sticky canary routing (at most 128 characters)
_HTTP_ERRORS: dict[int, type[CerebroError]] = {400: InvalidPayload, 404: NotFound,
                                               405: MethodNotAllowed, 413: PayloadTooLarge}


class _RequestIds:
    """Unique request ids without a random read per request: a random prefix per
    process (re-drawn in a forked child, by an ``os.register_at_fork`` hook: no
    ``getpid`` per request) and a counter."""

    def __init__(self) -> None:
        self._prefix, self._counter = "", itertools.count()
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        """A new prefix and counter (this process is new)."""
        self._prefix, self._counter = os.urandom(8).hex(), itertools.count()

    def next(self) -> str:
        """The next id, such as ``3f9c2a7be01d44a1-2a``."""
        return f"{self._prefix}-{next(self._counter):x}"


_request_ids = _RequestIds()
next_request_id = _request_ids.next


def has_body(headers: HTTPHeaders) -> bool:
    """True when a request announces a body (a non-zero length, or chunks)."""
    length = headers.get("Content-Length", "0").strip()
    return length not in ("", "0") or "Transfer-Encoding" in headers


def _matching_key(given: bytes, keys: tuple[bytes, ...]) -> int | None:
    """The index of the configured key ``given`` is, or ``None``; every key is compared,
    in constant time each."""
    found = None
    for index, key in enumerate(keys):
        if hmac.compare_digest(given, key):
            found = index
    return found


def is_json(headers: HTTPHeaders) -> bool:
    """True when the body is declared JSON: ``application/json`` or ``application/*+json``,
    parameters (``; charset=utf-8``) allowed."""
    kind = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/")
                                          and kind.endswith("+json"))


def check_api_key(ctx: Context, request: HTTPServerRequest) -> None:
    """Raise :class:`Unauthorized` unless a configured API key is presented.

    Only a key presented and wrong counts against the address (a missing one never
    does: load-balancer probes send none). Over ``CEREBRO_AUTH_FAILURE_LIMIT`` in a
    minute the address gets :class:`TooManyRequests` for every key it has not used
    successfully before: guessing stops, while the clients behind a shared address
    (a proxy) whose keys worked go on.
    """
    keys = ctx.api_keys
    if not keys:
        return
    given = _presented_key(request)
    match = _matching_key(given, keys)
    address = request.remote_ip or "-"
    limiter = ctx.failed_keys
    wait = limiter.blocked(address)
    if wait and not (match is not None and limiter.known(address, match)):
        raise TooManyRequests(f"too many wrong API keys from {address}; retry in "
                              f"{wait:.0f}s (CEREBRO_AUTH_FAILURE_LIMIT)", wait)
    if match is None:
        if given:
            limiter.failed(address)
        raise Unauthorized("a valid API key is required (header X-API-Key)", "X-API-Key")
    limiter.succeeded(address, match)


def _presented_key(request: HTTPServerRequest) -> bytes:
    """The key a request presents (``X-API-Key``, or a Bearer token), or ``b""``."""
    given = request.headers.get("X-API-Key", "")
    if not given:
        auth = request.headers.get("Authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else ""
    return given.encode("utf-8", "replace")


@stream_request_body
class BaseHandler(RequestHandler):
    """JSON responses and JSON errors for every handler.

    Every route streams its body (``stream_request_body``), so a route decides
    after the headers, before a byte of body is read: the routes here take no
    body and refuse one with 413 (the connection is then closed, the body never
    read). The endpoint route, which takes up to ``CEREBRO_MAX_BODY_BYTES``, is served
    without a handler (:mod:`cerebro.api.endpoint_route`).
    """

    def initialize(self, ctx: Context) -> None:
        """Keep the shared :class:`~cerebro.api.app.Context`."""
        self.ctx = ctx

    def prepare(self) -> None:
        """Refuse a method the route does not serve, then a body, before it is read:
        these routes take none."""
        method = (self.request.method or "").lower()
        if getattr(type(self), method, None) is getattr(RequestHandler, method, None):
            self.fail(MethodNotAllowed(f"{self.request.method} is not served on "
                                       f"{self.request.path}"))
        elif has_body(self.request.headers):
            self.fail(PayloadTooLarge(f"{self.request.path} takes no request body"))

    def data_received(self, chunk: bytes) -> None:
        """A body these routes do not take (already refused): dropped unread."""

    def set_default_headers(self) -> None:
        """Every response is JSON unless a handler says otherwise."""
        self.set_header("Content-Type", "application/json")

    def send_json(self, value: object, status: int = 200) -> None:
        """Finish the request with ``value`` encoded as JSON."""
        self.set_status(status)
        self.finish(jsonio.dumps(value))

    def fail(self, error: CerebroError) -> None:
        """Finish the request with a :class:`CerebroError` as its JSON error body."""
        request_id = self._headers.get("X-Request-Id")
        self.clear()
        if request_id:
            self.set_header("X-Request-Id", request_id)
        self.set_status(http_status(error))
        if isinstance(error, TooManyRequests):
            self.set_header("Retry-After", str(max(1, round(error.retry_after))))
        if isinstance(error, MethodNotAllowed):
            self.set_header("Allow", ", ".join(m for m in ("GET", "POST")
                                               if m.lower() in type(self).__dict__))
        self.finish(jsonio.dumps({"error": error.to_dict()}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors Tornado raises itself (405, bad requests, our own bugs) as JSON."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, CerebroError):
            return self.fail(exc)
        if status_code >= 500:
            return self.fail(getattr(self, "_internal_error", None) or InternalError())
        message = self._reason if exc is None else (exc.log_message or self._reason)
        if status_code in _HTTP_ERRORS:
            return self.fail(_HTTP_ERRORS[status_code](message))
        self.set_status(status_code)
        self.finish(jsonio.dumps({"error": {"type": "http_error", "message": message,
                                            "field": None}}))

    def log_exception(self, typ: type[BaseException] | None, value: BaseException | None,
                      tb: TracebackType | None) -> None:
        """A non-HTTP exception escaping a handler is a bug: report it with an error id."""
        if value is None or isinstance(value, (HTTPError, CerebroError)):
            return super().log_exception(typ, value, tb)
        self._internal_error = InternalError()
        report(value, service="api", request_id=self.request.headers.get("X-Request-Id"),
               error_id=self._internal_error.error_id, path=self.request.path)

    def require_api_key(self) -> None:
        """Raise :class:`Unauthorized` unless a configured API key is presented (see
        :func:`check_api_key`)."""
        check_api_key(self.ctx, self.request)

    def _request_summary(self) -> str:
        """How Tornado's own warnings name a request: method and path, never the query
        string (it may carry data or keys)."""
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip})"

    def has_api_key(self) -> bool:
        """True when no key is configured or a valid one is presented (never raises, and
        never counts a wrong key: the caller answers less instead)."""
        keys = self.ctx.api_keys
        return not keys or _matching_key(_presented_key(self.request), keys) is not None


def pop_callback_url(registry: Registry, module: str, function: str,
                     payload: object) -> object:
    """Take the transport-level ``callback_url`` out of an async call's payload.

    It tells the worker where to send the result and is not an input of the
    function, so it is removed before validation; ``None`` when absent or
    when the function is synchronous (where it is validated like any field).
    """
    if not isinstance(payload, dict) or "callback_url" not in payload:
        return None
    if not registry.endpoint(module, function).external:
        return None
    url = payload.pop("callback_url")
    if not isinstance(url, str):
        raise InvalidPayload("'callback_url' must be a string (a URL); leave it out to use "
                             "the main app's endpoint", "callback_url")
    return url


class ModulesHandler(BaseHandler):
    """``GET /v1/modules``: every module with its functions, schemas, model version and status."""

    async def get(self) -> None:
        """List the modules (the volume's versions are read off the IOLoop)."""
        try:
            self.require_api_key()
        except CerebroError as error:
            return self.fail(error)
        root = self.ctx.registry.settings.data_volume
        modules = list(self.ctx.registry.modules.values())
        described = await IOLoop.current().run_in_executor(
            None, lambda: [m.describe(root) for m in modules])
        self.send_json({"modules": described})


class DriftHandler(BaseHandler):
    """``GET /v1/modules/<module>/drift[?window=1h|24h][&version=V]``: live inputs and
    predictions against the version's training profile (see :mod:`cerebro.monitoring.drift`),
    merged over every process of this node."""

    async def get(self, module: str) -> None:
        """The drift report of a module's current (or named) version."""
        try:
            self.require_api_key()
            mod = self.ctx.registry.module(module)
            window = self.get_query_argument("window", "1h")
            if window not in drift.WINDOWS:
                raise InvalidPayload(f"window must be one of {', '.join(drift.WINDOWS)}",
                                     "window")
            version = self.get_query_argument("version", None) or next(
                (h.version for h in mod.handles if h.version), None)
            if version is None:
                raise NotFound(f"module '{module}' serves no model version", "version")
            settings = self.ctx.registry.settings
            found = await IOLoop.current().run_in_executor(None, partial(
                drift.report, Path(settings.data_volume), settings.shared_state_dir, module,
                version, drift.WINDOWS[window], mod.monitoring or DEFAULT_MONITORING))
        except VolumeError as exc:
            return self.fail(NotFound(str(exc), "version"))
        except CerebroError as error:
            return self.fail(error)
        self.send_json(found)


class HealthHandler(BaseHandler):
    """``GET /healthz``: the process is alive (never needs an API key)."""

    def get(self) -> None:
        """Answer that the process is alive."""
        self.send_json({"status": "alive"})

    head = get  # load-balancer checks that send HEAD (Tornado drops the body)


class ReadyHandler(BaseHandler):
    """``GET /readyz``: should this process take traffic? With per-module status.

    200 once the start-up load is done, while every module present at start-up
    can serve a version; a module waiting for its first build or added later
    never takes the node out of rotation (see :meth:`Registry.ready`).
    ``/readyz?module=a&module=b`` asks whether those modules can serve: 503
    with ``why`` when one cannot. With ``CEREBRO_API_KEYS`` set, a caller
    without a key (a load balancer) gets only ``{"ready": ...}`` and the
    status: module names, versions and errors need a key, as does ``?module=``.
    """

    def get(self) -> None:
        """Report readiness; 503 when not ready, with the reason."""
        registry = self.ctx.registry
        names = self.get_query_arguments("module") or None
        try:
            if names is not None:
                self.require_api_key()
            elif not self.has_api_key():
                ready = registry.ready()
                return self.send_json({"ready": ready}, 200 if ready else 503)
            ready = registry.ready(names)
        except CerebroError as error:
            return self.fail(error)
        modules = {m.name: {"status": m.status, "ready": m.ready, "why": m.why(),
                            "errors": m.errors(),
                            "versions": {h.artifact: h.version for h in m.handles}}
                   for m in registry.modules.values() if names is None or m.name in names}
        why = (registry.why_not_ready() if names is None else
               "; ".join(f"{n}: {modules[n]['why']}" for n in modules if not modules[n]["ready"]))
        self.send_json({"ready": ready, "why": why, "modules": modules}, 200 if ready else 503)

    head = get  # load-balancer checks that send HEAD (Tornado drops the body)


class MetricsHandler(BaseHandler):
    """``GET /metrics``: Prometheus text format."""

    def get(self) -> None:
        """Render the metrics (with ``CEREBRO_API_KEYS`` set, for a key holder only)."""
        try:
            self.require_api_key()
        except CerebroError as error:
            return self.fail(error)
        data, content_type = metrics.render()
        self.set_header("Content-Type", content_type)
        self.finish(data)


class OpenAPIHandler(BaseHandler):
    """``GET /openapi.json``: an OpenAPI 3 document generated from the declared inputs."""

    def get(self) -> None:
        """Render the OpenAPI document (with ``CEREBRO_API_KEYS`` set, for a key holder)."""
        try:
            self.require_api_key()
        except CerebroError as error:
            return self.fail(error)
        self.send_json(openapi.document(self.ctx.registry, self.ctx.settings))


class NotFoundHandler(BaseHandler):
    """Any other path: a JSON 404."""

    def prepare(self) -> None:
        """Answer 404 for every method."""
        self.fail(NotFound(f"no route for {self.request.method} {self.request.path}", "path"))
