"""
Author:  Cerebro team
Date:    2026-11-30
Subject: CEREBRO_IDLE_TIMEOUT and CEREBRO_BODY_TIMEOUT kept by sweeps, not a timer per request.
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
call takes. Only :class:`~cerebro.api.endpoint_route.EndpointCall` reads bodies;
every other route refuses one before reading it.

:class:`HeadDeadlines` does the same for ``CEREBRO_IDLE_TIMEOUT``, the wait for a
request head (an idle keep-alive connection, or a head sent slowly), which
Tornado also wraps in a ``gen.with_timeout`` per request (even with no idle
timeout set: it then waits an hour). Each connection is noted with its deadline
when it starts waiting for a head (one entry per connection, dropped once the
head is in or the connection closed); the sweep closes a connection whose head
has not fully arrived by its deadline, silently, as Tornado did. A request whose
head arrived is never cut by it, however long its answer takes.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from cerebro.sweep import SWEEPS_PER_TIMEOUT, Sweep

if TYPE_CHECKING:
    from cerebro.api.endpoint_route import EndpointCall
    from cerebro.api.wire import HTTPWire

log = logging.getLogger("tornado.general")  # where Tornado logs its own body timeouts


class _Sweeper:
    """A :class:`~cerebro.sweep.Sweep` every quarter of ``timeout`` while :meth:`_pending`
    says there is something to watch (``timeout`` 0: no limit, never sweeps)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._sweep = Sweep(timeout / SWEEPS_PER_TIMEOUT, self._check)

    def _deadline(self) -> float:
        """The deadline of what is noted now; the sweep runs from now on."""
        self._sweep.start()
        return time.monotonic() + self.timeout

    def _check(self) -> bool:
        """One sweep; True while anything is still watched."""
        self.sweep()
        return self._pending()

    def sweep(self) -> None:
        """Close what is late (the subclass's)."""
        raise NotImplementedError

    def _pending(self) -> bool:
        """True while anything is watched (the subclass's)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop sweeping (the server is stopping)."""
        self._sweep.stop()


class BodyDeadlines(_Sweeper):
    """The requests still reading a body, with their deadlines, and the sweep that closes
    the late ones. ``timeout`` 0 (``CEREBRO_BODY_TIMEOUT=0``): no limit, nothing noted."""

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout)
        self._reading: dict[EndpointCall, float] = {}

    def start(self, handler: EndpointCall) -> None:
        """``handler``'s head has arrived and its body is to be read: note its deadline."""
        if self.timeout:
            self._reading[handler] = self._deadline()

    def done(self, handler: EndpointCall) -> None:
        """``handler``'s body is complete, or it was answered, or its client left."""
        self._reading.pop(handler, None)

    def _pending(self) -> bool:
        """True while a body is awaited."""
        return bool(self._reading)

    def sweep(self) -> None:
        """Close the connections whose body is late."""
        now = time.monotonic()
        late = [handler for handler, deadline in self._reading.items() if deadline <= now]
        for handler in late:
            del self._reading[handler]
            log.info("Timeout reading body from %s", handler.request.remote_ip)
            connection = handler.request.connection
            if connection is not None:
                connection.close()  # type: ignore[attr-defined]  # an Exchange


class HeadDeadlines(_Sweeper):
    """The connections waiting for a request head (or for their client to take its answers),
    with their deadlines, and the sweep that closes the late ones. ``timeout`` 0
    (``CEREBRO_IDLE_TIMEOUT=0``): no limit."""

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout)
        # connection -> (its deadline, its bytes unsent when the deadline was set)
        self._waiting: dict[HTTPWire, tuple[float, int]] = {}

    def start(self, wire: HTTPWire) -> None:
        """``wire`` starts waiting for a request head: note its deadline."""
        if self.timeout:
            self._waiting[wire] = (self._deadline(), wire.unsent())

    def done(self, wire: HTTPWire) -> None:
        """``wire``'s head is in: it is being served, never cut by this timeout."""
        if self._waiting:
            self._waiting.pop(wire, None)

    closed = done  # a closed connection waits for nothing

    def _pending(self) -> bool:
        """True while a connection waits for a head."""
        return bool(self._waiting)

    def sweep(self) -> None:
        """Close the connections still without a complete head at their deadline; one whose
        client took some of its answers since is given another timeout (a slow reader, not
        a stuck one)."""
        now = time.monotonic()
        late = [(wire, unsent) for wire, (deadline, unsent) in self._waiting.items()
                if deadline <= now]
        for wire, unsent in late:
            left = wire.unsent()
            if 0 < left < unsent:
                self._waiting[wire] = (now + self.timeout, left)
                continue
            del self._waiting[wire]
            wire.expire()
