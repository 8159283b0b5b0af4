"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Adaptive micro-batching: concurrent requests to a batch function become one call.
Tagline: Many small questions, one vectorised answer, each reply to its own asker.

One :class:`Batcher` per batch endpoint per API process. A request that finds
the endpoint idle runs at the IOLoop's next turn (after ``max_wait_ms``, 0 by default), so
a lone request is never held back, while the requests read in the same turn join it.
Requests arriving while a call runs gather, and run together as soon as it returns, up to
``max_size`` at a time: the batch grows with the load by itself. Validation happened
before (one bad input fails alone); results and errors go back to their own requests.

A batch goes to the module's runner thread, so a slow model never holds up the IOLoop.
A *lone* call of a fast function is the exception: while the endpoint's lone calls take
under :data:`INLINE_SECONDS` on average (an exponential average of every lone call, timed
wherever it ran; none before the first), a lone call runs on the IOLoop itself, which
saves the hand-over to the thread and back. A function that turns slow moves its lone
calls back to the thread as its average rises; a single lone call that held the IOLoop
over :data:`INLINE_STALL_SECONDS` (an input that makes the function slow) keeps them on
the thread for :data:`INLINE_PAUSE_SECONDS`, so such a stall happens at most once per
pause. The occasional slower call (a collection, a drift sample) moves the average only
a little, and the time the garbage collector spent in full (generation 2) passes during
a call is not counted towards a stall: the collector holds the GIL whichever thread it
runs on, so the thread would not have spared the IOLoop that pause, while a 10 s pause of
inlining costs every lone call of those 10 s its hand-over (at concurrency 1 it did,
about once in 25 s). What the function itself spent still counts.
"""

from __future__ import annotations

import asyncio
import gc
import time
from functools import partial
from typing import TYPE_CHECKING, cast

from cerebro.errors import CerebroError, InternalError, Unavailable
from cerebro.reporting import report
from cerebro.runner import RunnerClosed

if TYPE_CHECKING:
    from typing import TypeAlias

    from cerebro.dispatch import Call, Dispatcher
    from cerebro.endpoint import Batching, Endpoint
    from cerebro.runner import Runner

    #: One gathered call: the call, its request id, the future of its JSON bytes.
    _Pending: TypeAlias = tuple[Call, str | None, asyncio.Future[bytes]]
    #: The outcome of one call: its JSON bytes, or the error it failed with.
    _Outcome: TypeAlias = bytes | CerebroError

INLINE_SECONDS = 0.0005  # lone calls run on the IOLoop while their average is under this
INLINE_STALL_SECONDS = 0.005  # one lone call this long on the IOLoop...
INLINE_PAUSE_SECONDS = 10.0  # ...sends lone calls to the thread for this long
_NEWEST_WEIGHT = 0.2  # the newest lone call's weight in the (exponential) average


class Batcher:
    """Gathers concurrent calls to one batch endpoint into single calls on its module's runner."""

    def __init__(self, dispatcher: Dispatcher, endpoint: Endpoint, runner: Runner,
                 service: str = "api", max_size: int | None = None) -> None:
        self.dispatcher = dispatcher
        self.endpoint = endpoint
        self.runner = runner
        self.service = service
        # a Batcher serves a batch endpoint only: its ``batch`` is set
        self.max_size = max_size or cast("Batching", endpoint.batch).max_size
        self.max_wait = cast("Batching", endpoint.batch).max_wait_ms / 1000.0
        self._pending: list[_Pending] = []
        self._busy = False
        self._timer: asyncio.Handle | None = None
        self._lone_seconds = float("inf")  # lone calls' average run time (none measured yet)
        self._paused_until = 0.0  # no lone call on the IOLoop before (monotonic)

    def submit(self, call: Call, request_id: str | None = None) -> asyncio.Future[bytes]:
        """Queue one validated call; returns a future of its JSON bytes (or its error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self._pending.append((call, request_id, future))
        if not self._busy:
            if len(self._pending) >= self.max_size:
                self._launch()
            elif self._timer is None:
                # 0: at the IOLoop's next turn, so requests already read in this turn join
                self._timer = loop.call_later(self.max_wait, self._launch) if self.max_wait \
                    else loop.call_soon(self._launch)
        return future

    def _launch(self) -> None:
        """Send up to ``max_size`` pending calls to the runner as one batch."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        batch, self._pending = self._pending[:self.max_size], self._pending[self.max_size:]
        self._busy = True
        lone = len(batch) == 1
        if lone and self._lone_seconds <= INLINE_SECONDS \
                and time.monotonic() >= self._paused_until and not self.runner.closed:
            try:
                outcomes = self._run_lone(batch, True)
            except Exception as exc:  # as a runner hands it over: _finish reports it
                return self._finish(batch, None, exc)
            return self._finish(batch, outcomes, None)
        try:
            if lone:
                self.runner.call(self._run_lone, batch, False,
                                 callback=partial(self._finish, batch))
            else:
                self.runner.call(self._run, batch, callback=partial(self._finish, batch))
        except RunnerClosed as closed:
            self._finish(batch, None, closed)

    def _run_lone(self, batch: list[_Pending], inline: bool) -> list[_Outcome]:
        """:meth:`_run` for one call, timed wherever it runs into the lone calls' average;
        one that stalled the IOLoop pauses lone calls on it (see the module docstring)."""
        collecting = _full_collections_seconds
        started = time.perf_counter()
        try:
            return self._run(batch)
        finally:
            seconds = time.perf_counter() - started
            average = self._lone_seconds
            self._lone_seconds = seconds if average == float("inf") \
                else average + _NEWEST_WEIGHT * (seconds - average)
            # the collector's full passes during the call are not the function's doing
            if inline and seconds - (_full_collections_seconds - collecting) \
                    > INLINE_STALL_SECONDS:
                self._paused_until = time.monotonic() + INLINE_PAUSE_SECONDS

    def _run(self, batch: list[_Pending]) -> list[_Outcome]:
        """On a runner thread (or the IOLoop, for a fast lone call): one dispatcher call, then
        each outcome encoded as JSON."""
        calls = [call for call, _, _ in batch]
        ids = [request_id for _, request_id, _ in batch]
        outcomes = self.dispatcher.run_batch(calls, service=self.service, request_ids=ids)
        encoded: list[_Outcome] = []
        for call, request_id, outcome in zip(calls, ids, outcomes):
            if isinstance(outcome, CerebroError):
                encoded.append(outcome)
                continue
            try:
                encoded.append(self.dispatcher.encode(outcome, call, service=self.service,
                                                      request_id=request_id))
            except CerebroError as error:
                encoded.append(error)
        return encoded

    def _finish(self, batch: list[_Pending], outcomes: list[_Outcome] | None,
                failure: BaseException | None) -> None:
        """Hand each outcome to its request, then start the next batch if any gathered."""
        self._busy = False
        if isinstance(failure, RunnerClosed):
            outcomes = [Unavailable("the server is shutting down; retry on another instance")
                        ] * len(batch)
        elif failure is not None:
            error = InternalError("batch execution failed")
            report(failure, service=self.service, module=self.endpoint.module,
                   function=self.endpoint.name, error_id=error.error_id)
            outcomes = [error] * len(batch)
        # without a failure, the runner handed over the outcomes of ``_run``
        for (_, _, future), outcome in zip(batch, cast("list[_Outcome]", outcomes)):
            if future.done():
                continue
            if isinstance(outcome, CerebroError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        if self._pending:
            self._launch()


_full_collections_seconds = 0.0  # time spent in full (generation 2) collections so far
_full_collection_started = 0.0


def _time_full_collections(phase: str, info: dict[str, int]) -> None:
    """A ``gc.callbacks`` hook: add up the time of full (generation 2) collections (it runs
    twice per collection, not per call: nothing is paid on the way of a call)."""
    global _full_collections_seconds, _full_collection_started
    if info["generation"] != 2:
        return
    if phase == "start":
        _full_collection_started = time.perf_counter()
    else:
        _full_collections_seconds += time.perf_counter() - _full_collection_started


gc.callbacks.append(_time_full_collections)
