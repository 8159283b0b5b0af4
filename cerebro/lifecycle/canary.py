"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The canary's watch: the candidate's error rate and p99 against the current version's.
Tagline: A canary that coughs is taken out of the mine.

Each process keeps a rolling window of the calls it routed to each side. Once
both sides (or the candidate alone, for the error rate) have enough calls in
the window, :meth:`CanaryWatch.verdict` says why the candidate must stop: its
server-side error rate is above the current version's by more than the margin,
or its p99 latency is above the current's times the ratio plus a slack.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from cerebro.errors import CerebroError


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


class CanaryWatch:
    """Rolling per-side tallies of one canary in one process."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._calls: deque[tuple[float, bool, bool, float]] = deque()
        self._lock = threading.Lock()

    def record(self, candidate: bool, outcomes: Sequence[object], seconds: float) -> None:
        """Count one group of calls served by one side in ``seconds``."""
        stamp = time.monotonic()
        with self._lock:
            for outcome in outcomes:
                self._calls.append((stamp, candidate, failed(outcome), seconds))

    def sides(self) -> dict[str, dict[str, float]]:
        """Calls, error rate and p99 (seconds) of each side in the window."""
        horizon = time.monotonic() - self.limits.window
        with self._lock:
            while self._calls and self._calls[0][0] < horizon:
                self._calls.popleft()
            calls = list(self._calls)
        result = {}
        for name, flag in (("current", False), ("candidate", True)):
            mine = [c for c in calls if c[1] is flag]
            latencies = sorted(c[3] for c in mine)
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] \
                if latencies else 0.0
            result[name] = {"calls": float(len(mine)),
                            "error_rate": sum(c[2] for c in mine) / len(mine) if mine else 0.0,
                            "p99": p99}
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
