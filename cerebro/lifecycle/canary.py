"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The canary's watch: the candidate's error rate and p99 against the current version's.
Tagline: A canary that coughs is taken out of the mine.

Each process keeps, per second and per side, the calls it routed, the server
errors among them and a histogram of their latencies (fixed, log-spaced
buckets), for the last ``CEREBRO_CANARY_WINDOW`` seconds: memory and the cost
of a verdict stay bounded whatever the rate. Once the candidate (and, for
latency, the current version) has enough calls in the window,
:meth:`CanaryWatch.verdict` says why the candidate must stop: its server-side
error rate is above the current version's by more than the margin, or its p99
is above the current's times the ratio plus a slack.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from cerebro.errors import CerebroError

# latency buckets: 0.1 ms to ~100 s, 10 per decade; a p99 is read as its bucket's upper edge
_PER_DECADE = 10
_LOWEST = 1e-4
_BUCKETS = 6 * _PER_DECADE + 1


@dataclass(frozen=True)
class Limits:
    """When a canary is rolled back (``CEREBRO_CANARY_*`` settings)."""

    window: float = 60.0
    min_calls: int = 50
    max_error_delta: float = 0.05
    max_p99_ratio: float = 2.0
    p99_slack: float = 0.005


def failed(outcome: object) -> bool:
    """True for a server-side failure (a bug, a model that cannot serve); a client's
    mistake (a 4xx) says nothing about the model."""
    return isinstance(outcome, CerebroError) and outcome.http_status >= 500


def _bucket(seconds: float) -> int:
    """The latency bucket of a duration."""
    if seconds <= _LOWEST:
        return 0
    return min(_BUCKETS - 1, int(math.ceil(math.log10(seconds / _LOWEST) * _PER_DECADE)))


def _upper(bucket: int) -> float:
    """The upper edge of a latency bucket, in seconds."""
    return _LOWEST * 10 ** (bucket / _PER_DECADE)


class _Second:
    """One second of one side: calls, server errors, latency histogram."""

    __slots__ = ("calls", "errors", "latency")

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.latency = [0] * _BUCKETS


class CanaryWatch:
    """Rolling per-side tallies of one canary in one process."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._seconds: deque[tuple[int, _Second, _Second]] = deque()
        self._lock = threading.Lock()

    def record(self, candidate: bool, outcomes: Sequence[object], seconds: float) -> None:
        """Count one group of calls served by one side in ``seconds``."""
        now = int(time.monotonic())
        bucket = _bucket(seconds)
        errors = sum(1 for outcome in outcomes if failed(outcome))
        with self._lock:
            if not self._seconds or self._seconds[-1][0] != now:
                self._seconds.append((now, _Second(), _Second()))
                self._trim(now)
            last = self._seconds[-1]
            side = last[2] if candidate else last[1]
            side.calls += len(outcomes)
            side.errors += errors
            side.latency[bucket] += len(outcomes)

    def _trim(self, now: int) -> None:
        """Forget the seconds that left the window (the lock is held)."""
        horizon = now - self.limits.window
        while self._seconds and self._seconds[0][0] < horizon:
            self._seconds.popleft()

    def sides(self) -> dict[str, dict[str, float]]:
        """Calls, error rate and p99 (seconds) of each side in the window."""
        with self._lock:
            self._trim(int(time.monotonic()))
            rows = list(self._seconds)
        result = {}
        for name, candidate in (("current", False), ("candidate", True)):
            seconds = [row[2] if candidate else row[1] for row in rows]
            calls = sum(second.calls for second in seconds)
            errors = sum(second.errors for second in seconds)
            histogram = [sum(second.latency[b] for second in seconds) for b in range(_BUCKETS)]
            result[name] = {"calls": float(calls),
                            "error_rate": errors / calls if calls else 0.0,
                            "p99": _p99(histogram, calls)}
        return result

    def verdict(self) -> str | None:
        """Why the candidate must stop, or ``None`` while it holds (or too few calls)."""
        limits = self.limits
        sides = self.sides()
        cand, live = sides["candidate"], sides["current"]
        if cand["calls"] < limits.min_calls:
            return None
        live_known = live["calls"] >= limits.min_calls
        base = live["error_rate"] if live_known else 0.0
        if cand["error_rate"] - base > limits.max_error_delta:
            return (f"error rate {cand['error_rate']:.1%} against {base:.1%} for the current "
                    f"version (margin {limits.max_error_delta:.1%}) over the last "
                    f"{int(cand['calls'])} candidate calls")
        ceiling = live["p99"] * limits.max_p99_ratio + limits.p99_slack
        if live_known and cand["p99"] > ceiling:
            return (f"p99 latency {cand['p99'] * 1000:.1f} ms against "
                    f"{live['p99'] * 1000:.1f} ms for the current version (allowed "
                    f"{ceiling * 1000:.1f} ms) over the last {int(cand['calls'])} candidate "
                    "calls")
        return None


def _p99(histogram: list[int], calls: int) -> float:
    """The 99th percentile of a latency histogram (its bucket's upper edge), in seconds."""
    if not calls:
        return 0.0
    wanted = math.ceil(calls * 0.99)
    seen = 0
    for bucket, count in enumerate(histogram):
        seen += count
        if seen >= wanted:
            return _upper(bucket)
    return _upper(_BUCKETS - 1)
