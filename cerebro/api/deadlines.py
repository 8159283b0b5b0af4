"""
Author:  Cerebro team
Date:    2026-11-30
Subject: CEREBRO_BODY_TIMEOUT kept by one sweep per process instead of a timer per request.
Tagline: One watchman on his rounds, not a guard at every door.

A client that announces a body and sends it slowly (or stops) must not hold a
connection for ever. Tornado's ``body_timeout`` does that with a
``gen.with_timeout`` around every body read: a timer, a chained future and an
extra turn of the event loop per request, about 7 % of a request's cost at
concurrency 1 and 64 (measured side by side with the timeout off).

:class:`BodyDeadlines` keeps the same promise more cheaply: a request that will
read a body is noted with its deadline when its head has arrived, forgotten as
soon as its body is complete (or it is answered, or the client left), and a
sweep every quarter of the timeout closes the connections whose body is late, as
Tornado did (the connection is closed without an answer, and an INFO line says
so). A body is therefore cut between one and one and a quarter timeouts after its
head; the answer to a request whose body arrived is never cut, however long the
call takes. Only :class:`~cerebro.api.handlers.EndpointHandler` reads bodies;
every other route refuses one before reading it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tornado.web import RequestHandler

log = logging.getLogger("tornado.general")  # where Tornado logs its own body timeouts

SWEEPS_PER_TIMEOUT = 4


class BodyDeadlines:
    """The requests still reading a body, with their deadlines, and the sweep that closes
    the late ones. ``timeout`` 0 (``CEREBRO_BODY_TIMEOUT=0``): no limit, nothing noted."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._reading: dict[RequestHandler, float] = {}
        self._sweep: asyncio.TimerHandle | None = None

    def start(self, handler: RequestHandler) -> None:
        """``handler``'s head has arrived and its body is to be read: note its deadline."""
        if self.timeout:
            self._reading[handler] = time.monotonic() + self.timeout
            if self._sweep is None:
                self._schedule()

    def done(self, handler: RequestHandler) -> None:
        """``handler``'s body is complete, or it was answered, or its client left."""
        self._reading.pop(handler, None)

    def _schedule(self) -> None:
        """Sweep again in a quarter of the timeout."""
        self._sweep = asyncio.get_running_loop().call_later(
            self.timeout / SWEEPS_PER_TIMEOUT, self.sweep)

    def sweep(self) -> None:
        """Close the connections whose body is late; sweep again while any body is awaited."""
        self._sweep = None
        now = time.monotonic()
        late = [handler for handler, deadline in self._reading.items() if deadline <= now]
        for handler in late:
            del self._reading[handler]
            log.info("Timeout reading body from %s", handler.request.remote_ip)
            connection = handler.request.connection
            if connection is not None:
                connection.close()  # type: ignore[attr-defined]  # an HTTP1Connection
        if self._reading:
            self._schedule()

    def stop(self) -> None:
        """Stop sweeping (the server is stopping)."""
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
