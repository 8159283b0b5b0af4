"""
Author:  Cerebro team
Date:    2026-11-30
Subject: One periodic check on the event loop, run while it has something to watch.
Tagline: One watchman on his rounds, not a guard at every door.

A timeout per request (a ``call_later`` timer, cancelled when the answer comes)
costs a timer allocation, a heap push, a done callback and a loop turn for
every request, on the hot path. :class:`Sweep` keeps the same promise for many
requests at once: the owner notes each request's deadline in its own table,
starts the sweep (nothing happens when it is running already), and the sweep
calls ``check`` every ``period`` seconds until ``check`` says nothing is left to
watch. A request is then cut between its timeout and its timeout plus one
period. The API's body and head timeouts, Redis's command timeout and
RabbitMQ's confirm timeout are kept this way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

SWEEPS_PER_TIMEOUT = 4  # a sweep every quarter of the timeout it keeps


class Sweep:
    """Call ``check()`` every ``period`` seconds, from :meth:`start` until it returns False."""

    def __init__(self, period: float, check: Callable[[], bool]) -> None:
        self.period = period
        self.check = check
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Make sure a check is scheduled (call it on the event loop's thread)."""
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self.period, self._run)

    def _run(self) -> None:
        """One check, and the next one while something is watched."""
        self._handle = None
        if self.check():
            self.start()

    def stop(self) -> None:
        """No more checks (until :meth:`start`)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
