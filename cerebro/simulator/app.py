"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The simulator's HTTP side (Tornado): amenities, main-app calls, inspection, reset.
Tagline: One small server that answers like the main app and remembers like a ledger.

Routes:

* ``GET /amenities?lat=&lon=``: the neighbourhood of a coordinate, from the
  ``listing_enrichment`` sample's own deterministic generator (the numbers it
  was trained on); 400 for a missing or bad coordinate;
* ``GET /simulator/received`` (``?keys=1`` adds every idempotency key,
  ``?last=N`` shows only the last N calls): what was received
  (:meth:`cerebro.simulator.recorder.Recorder.report`);
* ``POST /simulator/reset``: forget everything, count again from now;
* ``POST`` to any other path: a main-app call (a Celery callback, a Kafka
  outcome), checked and counted: 200 ``{"ok": true}``, or 401 for a bad signature.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from collections.abc import Callable
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler

from cerebro import jsonio
from cerebro.simulator.recorder import Recorder

log = logging.getLogger(__name__)

Neighbourhood = Callable[[float, float], dict[str, Any]]


class _Handler(RequestHandler):
    """Common part: the recorder, JSON answers."""

    def initialize(self, recorder: Recorder, neighbourhood: Neighbourhood | None = None) -> None:
        """Keep what every route needs."""
        self.recorder = recorder
        self.neighbourhood = neighbourhood

    def answer(self, status: int, body: bytes) -> None:
        """Finish with ``status`` and a JSON ``body``."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(body)


class MainAppCall(_Handler):
    """``POST`` to any path: a call from Cerebro to the main app."""

    def post(self, *_args: str) -> None:
        """Check, count and answer it."""
        self.answer(*self.recorder.call(self.request.uri or self.request.path,
                                        self.request.headers, self.request.body,
                                        self.request.method or "POST"))


class Amenities(_Handler):
    """``GET /amenities?lat=&lon=``: what listing_enrichment.enrich asks the amenities service."""

    def get(self) -> None:
        """The coordinate's neighbourhood."""
        if self.neighbourhood is None:
            self.answer(404, b'{"error": "the listing_enrichment sample is not installed"}')
            return
        try:
            lat, lon = float(self.get_query_argument("lat")), float(self.get_query_argument("lon"))
        except (ValueError, TypeError):
            self.answer(400, b'{"error": "lat and lon must be numbers"}')
            return
        self.recorder.amenities += 1
        self.answer(200, jsonio.dumps(self.neighbourhood(lat, lon)))


class Received(_Handler):
    """``GET /simulator/received``: what the main app received."""

    def get(self) -> None:
        """The recorder's report."""
        last = self.get_query_argument("last", None)
        keys = self.get_query_argument("keys", "0") not in ("", "0", "false")
        try:
            count = None if last is None else max(0, int(last))
        except ValueError:
            self.answer(400, b'{"error": "last must be a whole number"}')
            return
        self.answer(200, jsonio.dumps(self.recorder.report(keys=keys, last=count)))


class Reset(_Handler):
    """``POST /simulator/reset``: count again from zero."""

    def post(self) -> None:
        """Forget everything received."""
        self.recorder.reset()
        self.answer(200, jsonio.dumps({"reset": True, "since": self.recorder.since}))


def sample_neighbourhood(modules_package: str) -> Neighbourhood | None:
    """The listing_enrichment sample's neighbourhood generator, or None without the sample."""
    try:
        utilities = importlib.import_module(f"{modules_package}.listing_enrichment.src.utilities")
    except ImportError:
        return None
    generator: Neighbourhood | None = getattr(utilities, "neighbourhood", None)
    return generator


def _quiet(handler: RequestHandler) -> None:
    """Log only server errors (a request log line per call would cost more than the call)."""
    if handler.get_status() >= 500:
        log.error("%s %s -> %d", handler.request.method, handler.request.uri,
                  handler.get_status())


def make_app(recorder: Recorder, neighbourhood: Neighbourhood | None) -> Application:
    """The Tornado application of the routes above."""
    args = {"recorder": recorder, "neighbourhood": neighbourhood}
    return Application([(r"/amenities", Amenities, args),
                        (r"/simulator/received", Received, args),
                        (r"/simulator/reset", Reset, args),
                        (r"/.*", MainAppCall, args)], log_function=_quiet)


async def serve(host: str, port: int, recorder: Recorder,
                neighbourhood: Neighbourhood | None) -> None:
    """Listen on ``host:port`` until SIGTERM or SIGINT, then close every connection."""
    server = HTTPServer(make_app(recorder, neighbourhood))
    server.listen(port, host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.stop()
    await server.close_all_connections()
