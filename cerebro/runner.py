"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Model-call threads for an asyncio loop: hand a call over, get the outcome back on the loop.
Tagline: One queue in, one wake-up out, nothing in between.

The REST API runs model calls off its IOLoop so a 2 ms prediction never holds
up other requests. ``loop.run_in_executor`` with a ``ThreadPoolExecutor`` does
that through two futures, a shutdown lock, an idle semaphore and a chained
callback per call; measured on the request path, that bookkeeping was the
largest single cost of the IOLoop thread at concurrency 1. A :class:`Runner`
keeps only what the hop needs: a ``queue.SimpleQueue`` (a C queue) that its
threads block on, and one ``loop.call_soon_threadsafe`` per finished call that
hands ``(result, error)`` to a callback on the loop.

    runner = Runner(threads=1, name="cerebro-rent_predictor")
    value = await runner.run(model_call, payload)           # a future
    runner.call(batch_call, batch, callback=on_done)      # on_done(result, error) on the loop
    runner.shutdown()             # queued and new calls get RunnerClosed

The callback runs on the loop that submitted the call; the callable runs on a
runner thread and must not touch the loop. Exceptions are passed to the
callback (or set on the future), never lost.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, TypeVarTuple, cast

if TYPE_CHECKING:
    from typing import TypeAlias

    #: What a runner thread takes from the queue: (loop, fn, args, callback).
    _Job: TypeAlias = tuple[asyncio.AbstractEventLoop, Callable[..., object], tuple[object, ...],
                            Callable[..., object]]

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

_STOP = object()


class RunnerClosed(RuntimeError):
    """A call was handed to a runner that has shut down (the process is stopping)."""


class Runner:
    """A few daemon threads running calls handed over from an asyncio loop."""

    def __init__(self, threads: int = 1, name: str = "cerebro-runner") -> None:
        self.name = name
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()  # jobs, and _STOP
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, threads))]
        for thread in self._threads:
            thread.start()

    def call(self, fn: Callable[[*_Ts], _T], *args: *_Ts,
             callback: Callable[[_T | None, BaseException | None], object]) -> None:
        """Run ``fn(*args)`` on a runner thread; then ``callback(result, error)`` on this loop.

        ``error`` is ``None`` on success; otherwise the exception ``fn`` raised
        (or :class:`RunnerClosed` when the runner shut down before running it).
        """
        if self._closed:
            raise RunnerClosed(f"runner {self.name} is shut down")
        self._queue.put((asyncio.get_running_loop(), fn, args, callback))

    def run(self, fn: Callable[[*_Ts], _T], *args: *_Ts) -> asyncio.Future[_T]:
        """Run ``fn(*args)`` on a runner thread; return an asyncio future of its result."""
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self.call(fn, *args, callback=lambda result, error: _settle(future, result, error))
        return future

    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` was called."""
        return self._closed

    def shutdown(self) -> None:
        """Stop the threads after the call in progress; queued calls fail with RunnerClosed."""
        if self._closed:
            return
        self._closed = True
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            _hand_back(cast("_Job", job), None,
                       RunnerClosed(f"runner {self.name} shut down before the call ran"))
        for _ in self._threads:
            self._queue.put(_STOP)

    def _work(self) -> None:
        """Thread body: take a call, run it, hand the outcome back to its loop."""
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            _, fn, args, _ = cast("_Job", job)
            try:
                result, error = fn(*args), None
            except BaseException as exc:  # handed to the caller, never swallowed here
                result, error = None, exc
            _hand_back(cast("_Job", job), result, error)
            job = None  # drop references before blocking again


def _hand_back(job: _Job, result: object, error: BaseException | None) -> None:
    """Schedule ``callback(result, error)`` on the job's loop (ignored if that loop is closed)."""
    loop, _, _, callback = job
    try:
        loop.call_soon_threadsafe(callback, result, error)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass


def _settle(future: asyncio.Future[_T], result: _T | None, error: BaseException | None) -> None:
    """Resolve ``future`` with the outcome unless it was cancelled meanwhile."""
    if future.done():
        return
    if error is None:
        future.set_result(cast(_T, result))  # no error: ``result`` is the function's
    else:
        future.set_exception(error)
