"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Shadow calls: the candidate runs the live calls again, on its own thread, off the hot path.
Tagline: A second opinion that never keeps the patient waiting.

:meth:`ShadowRunner.submit` only puts a job on a bounded queue (never blocks);
when the queue is full the job is dropped and counted. One daemon thread per
process takes jobs, runs the endpoint's function on the candidate version with
the same validated inputs, and compares each answer with the live one. A
candidate that raises is counted, logged once per version, and never reported
per call: it can cost the live path nothing.

The thread gathers jobs for ``CEREBRO_SHADOW_GATHER`` seconds before it runs
them, and runs the calls of one batch function together (in chunks of the
function's ``max_size``): a few larger candidate calls cost far less than one
per live request, and the live path meets the shadow's work in short bursts
instead of at every request.

The shadow has a CPU budget (``CEREBRO_SHADOW_BUDGET``, a share of one core's
time per process, 0.1 by default; a token bucket holding two gathers' worth,
so its work comes in short bursts): under a load where running every call
again would cost more, the
calls beyond it are dropped and counted, so the live path keeps at least the
rest of the machine, whatever the candidate costs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cerebro.errors import CerebroError
from cerebro.lifecycle.compare import Tally, default_compare
from cerebro.models import serving_candidate

if TYPE_CHECKING:
    from cerebro.dispatch import Call
    from cerebro.endpoint import Endpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShadowJob:
    """Live calls to one endpoint, their live outcomes and how long the live side took."""

    tally: Tally
    calls: Sequence[Call]
    outcomes: Sequence[object]
    seconds: float


class ShadowRunner:
    """A bounded queue of shadow jobs and the one thread that runs them."""

    def __init__(self, capacity: int, gather: float = 0.1, budget: float = 0.1) -> None:
        self.queue: queue.Queue[ShadowJob] = queue.Queue(maxsize=max(1, capacity))
        self.gather = gather
        self.budget = budget
        # seconds of candidate work allowed now, at most two gathers' worth: the live path
        # meets short bursts, never a long one after a busy spell
        self._cap = max(0.005, 2 * budget * max(gather, 0.01))
        self._tokens = self._cap
        self._refilled = time.monotonic()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._warned: set[tuple[str, str]] = set()

    def submit(self, tally: Tally, calls: Sequence[Call], outcomes: Sequence[object],
               seconds: float) -> bool:
        """Queue the served calls for the candidate; False (dropped, counted) when full.
        A function with external network dependencies (``external=True``) is never run
        twice: its calls are not shadowed."""
        if calls[0].endpoint.external:
            return True
        served = [(c, o) for c, o in zip(calls, outcomes) if not isinstance(o, CerebroError)]
        if not served:
            return True
        self._ensure_thread()
        job = ShadowJob(tally, [c for c, _ in served], [o for _, o in served], seconds)
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            with tally.lock:
                tally.dropped += len(served)
            return False
        return True

    def _ensure_thread(self) -> None:
        """Start the shadow thread on first use."""
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, daemon=True,
                                                    name="cerebro-shadow")
                    self._thread.start()

    def _loop(self) -> None:
        """Gather jobs, run them, forever; nothing here may escape."""
        while True:
            jobs = [self.queue.get()]
            if self.queue.qsize() < self.queue.maxsize // 2:  # behind: no time to gather
                time.sleep(self.gather)
            while True:
                try:
                    jobs.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self.run(jobs)
            except BaseException:  # noqa: B036 - the thread must outlive any candidate
                log.exception("shadow: a job failed")
            finally:
                for _ in jobs:
                    self.queue.task_done()

    def run(self, jobs: Sequence[ShadowJob]) -> None:
        """Run jobs on the candidate, those of one endpoint and candidate together."""
        groups: dict[tuple[str, int], list[ShadowJob]] = {}
        for job in jobs:
            if job.tally.retired:  # the candidate changed since: not this one's to judge
                continue
            groups.setdefault((job.calls[0].endpoint.key, id(job.tally)), []).append(job)
        for group in groups.values():
            self._run_group(group)

    def _run_group(self, jobs: list[ShadowJob]) -> None:
        """Run the calls of jobs to one endpoint on one candidate, in chunks; tally them."""
        endpoint, tally = jobs[0].calls[0].endpoint, jobs[0].tally
        rows = [call.kwargs for job in jobs for call in job.calls]
        live = [outcome for job in jobs for outcome in job.outcomes]
        size = endpoint.batch.max_size if endpoint.batch is not None else 1
        live_per_call = sum(job.seconds for job in jobs) / max(1, len(rows))
        for start in range(0, len(rows), size):
            if not self._afford():
                with tally.lock:
                    tally.dropped += len(rows) - start
                return
            chunk = rows[start:start + size]
            began = time.perf_counter()
            with serving_candidate():
                answers = _call(endpoint, chunk)
            took = time.perf_counter() - began
            tally.timed(live_per_call, took / len(chunk), len(chunk))
            self._compare(endpoint, tally, live[start:start + size], answers)
            self._tokens -= time.perf_counter() - began
            time.sleep(0)  # let a waiting live thread have the interpreter between chunks

    def _afford(self) -> bool:
        """Refill the budget for the time passed; True while some is left."""
        now = time.monotonic()
        self._tokens = min(self._cap, self._tokens + (now - self._refilled) * self.budget)
        self._refilled = now
        return self._tokens > 0

    def _compare(self, endpoint: Endpoint, tally: Tally, live: Sequence[object],
                 answers: Sequence[object]) -> None:
        """Compare each candidate answer with the live one; count the failures."""
        compare = endpoint.compare or default_compare
        errors = 0
        for outcome, answer in zip(live, answers):
            if isinstance(answer, BaseException):
                errors += 1
                self._warn_once(tally, endpoint, answer)
                continue
            try:
                tally.add(compare(outcome, answer), outcome, answer)
            except Exception as exc:  # a module's compare function is the module's bug
                errors += 1
                self._warn_once(tally, endpoint, exc)
        if errors:
            with tally.lock:
                tally.errors += errors

    def _warn_once(self, tally: Tally, endpoint: Endpoint, exc: BaseException) -> None:
        """Log the first failure of a candidate version (with its traceback), not each."""
        key = (endpoint.key, tally.version)
        if key not in self._warned:
            self._warned.add(key)
            log.warning("shadow: %s on candidate %s failed (counted, not reported per call): "
                        "%s: %s", endpoint.key, tally.version, type(exc).__name__, exc,
                        exc_info=(type(exc), exc, exc.__traceback__))


def _call(endpoint: Endpoint, rows: list[dict[str, object]]) -> list[object]:
    """The candidate's answer (or the exception) for each row."""
    if endpoint.batch is not None:
        try:
            answers = list(endpoint.func(rows))
        except Exception as exc:  # the candidate's failure, counted by the caller
            return [exc] * len(rows)
        if len(answers) != len(rows):
            return [TypeError("batch function returned the wrong number of results")] * len(rows)
        return answers
    out: list[object] = []
    for row in rows:
        try:
            out.append(endpoint.func(**row))
        except Exception as exc:
            out.append(exc)
    return out
