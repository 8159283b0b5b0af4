"""
Author:  Cerebro team
Date:    2026-11-29
Subject: How a candidate's answer is compared with the live one, and the tally of comparisons.
Tagline: Agree on what matters; measure by how much the rest differs.

The default comparison walks both results side by side (``model_version`` is
skipped: it differs by design). A number becomes ``<path>.abs_diff`` and
``<path>.rel_diff`` (the difference over the larger magnitude, 0 when both are
0); anything else (a label, a list) becomes ``<path>.same``, 1.0 when both
agree. Objects are walked two levels deep, and a call yields at most 24
measures, so a result with many keys cannot flood the metrics. A function
whose outputs need another measure declares ``@endpoint(compare=func)``,
``func(live, candidate) -> {name: float}``.

:class:`Tally` adds comparisons up (means per measure, and samples of the first
measured value for plots), per module and candidate version.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Comparison = Mapping[str, float]
Compare = Callable[[Any, Any], Comparison]
SKIPPED = frozenset({"model_version"})
SAMPLES = 2000  # pairs and latencies kept for plots and percentiles, per tally


MAX_MEASURES = 24  # measures per call: a result with many keys cannot explode the labels
MAX_DEPTH = 2       # nested objects compared field by field down to this depth


def default_compare(live: object, candidate: object) -> dict[str, float]:
    """Compare two results leaf by leaf (see the module's docstring). Fields nested deeper
    than :data:`MAX_DEPTH` and lists are compared whole (``.same``); at most
    :data:`MAX_MEASURES` measures are taken."""
    measures: dict[str, float] = {}
    _walk("", live, candidate, measures, 0)
    return dict(list(measures.items())[:MAX_MEASURES])


def _walk(path: str, live: object, candidate: object, out: dict[str, float],
          depth: int) -> None:
    """Add the measures of one pair of values at ``path`` to ``out``."""
    if len(out) >= MAX_MEASURES:
        return
    name = path or "result"
    if _number(live) and _number(candidate):
        a, b = float(live), float(candidate)  # type: ignore[arg-type]
        out[f"{name}.abs_diff"] = abs(a - b)
        scale = max(abs(a), abs(b))
        out[f"{name}.rel_diff"] = abs(a - b) / scale if scale > 1e-12 else 0.0
    elif isinstance(live, dict) and isinstance(candidate, dict) and depth < MAX_DEPTH:
        for key in live:
            if key not in SKIPPED:
                _walk(f"{path}.{key}" if path else str(key), live[key], candidate.get(key),
                      out, depth + 1)
    else:
        out[f"{name}.same"] = 1.0 if live == candidate else 0.0


def _number(value: object) -> bool:
    """True for an int or float that is not a bool and is finite."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


@dataclass
class Tally:
    """Shadow calls of one candidate version in one process: counts, latencies, agreement."""

    module: str
    version: str
    calls: int = 0
    errors: int = 0
    dropped: int = 0
    compared: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    live_seconds: list[float] = field(default_factory=list)
    candidate_seconds: list[float] = field(default_factory=list)
    pairs: list[tuple[object, object]] = field(default_factory=list)
    primary: str | None = None
    retired: bool = False  # its control was replaced: queued shadow work for it is skipped
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, measures: Comparison, live: object, candidate: object) -> None:
        """Count one comparison of a live and a candidate result."""
        with self.lock:
            self.compared += 1
            for name, value in measures.items():
                self.sums[name] = self.sums.get(name, 0.0) + float(value)
                self.counts[name] = self.counts.get(name, 0) + 1
            pair = _primary(self, live, candidate)
            if pair is not None:
                _sample(self.pairs, pair, self.compared)

    def timed(self, live: float, candidate: float, rows: int) -> None:
        """Count ``rows`` shadow calls and the seconds each side took per call (a group's
        time over its calls: batched calls share one model call)."""
        with self.lock:
            self.calls += rows
            _sample(self.live_seconds, live, self.calls)
            _sample(self.candidate_seconds, candidate, self.calls)

    def snapshot(self) -> dict[str, Any]:
        """The tally as JSON (written for ``cerebro compare`` to merge)."""
        with self.lock:
            return {"module": self.module, "version": self.version, "calls": self.calls,
                    "errors": self.errors, "dropped": self.dropped, "compared": self.compared,
                    "sums": dict(self.sums), "counts": dict(self.counts),
                    "live_seconds": list(self.live_seconds),
                    "candidate_seconds": list(self.candidate_seconds),
                    "pairs": [list(p) for p in self.pairs], "primary": self.primary}


def _primary(tally: Tally, live: object, candidate: object) -> tuple[object, object] | None:
    """The pair of first measured values (a number, else a label), for the plot."""
    path = tally.primary
    if path is None:
        path = tally.primary = _first_leaf(live)
    if path is None:
        return None
    return _at(live, path), _at(candidate, path)


def _first_leaf(value: object, path: str = "") -> str | None:
    """The path of the first number in ``value``, else of its first label."""
    leaves: list[tuple[str, object]] = []
    _leaves(value, path, leaves)
    numbers = [p for p, v in leaves if _number(v)]
    labels = [p for p, v in leaves if isinstance(v, (str, bool))]
    found = numbers or labels
    return found[0] if found else None


def _leaves(value: object, path: str, out: list[tuple[str, object]]) -> None:
    """Every leaf of a result with its path (``model_version`` skipped)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in SKIPPED:
                _leaves(item, f"{path}.{key}" if path else str(key), out)
    else:
        out.append((path, value))


def _at(value: object, path: str) -> object:
    """The leaf of ``value`` at ``path`` (``None`` when it is missing)."""
    for key in path.split(".") if path else []:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _sample(items: list[Any], item: object, seen: int) -> None:
    """Reservoir sampling: keep at most :data:`SAMPLES` items, each seen one equally likely."""
    if len(items) < SAMPLES:
        items.append(item)
    else:
        slot = random.randrange(seen)
        if slot < SAMPLES:
            items[slot] = item


def merge(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary from the snapshots of several processes: counts added, means of every
    measure, latency percentiles, the samples pooled."""
    total: dict[str, Any] = {"calls": 0, "errors": 0, "dropped": 0, "compared": 0}
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    live: list[float] = []
    cand: list[float] = []
    pairs: list[list[object]] = []
    for snap in snapshots:
        for key in total:
            total[key] += int(snap.get(key, 0))
        for name, value in snap.get("sums", {}).items():
            sums[name] = sums.get(name, 0.0) + value
            counts[name] = counts.get(name, 0) + snap["counts"].get(name, 0)
        live += snap.get("live_seconds", [])
        cand += snap.get("candidate_seconds", [])
        pairs += snap.get("pairs", [])
    total["means"] = {name: sums[name] / counts[name] for name in sorted(sums) if counts[name]}
    total["live_ms"] = percentiles(live)
    total["candidate_ms"] = percentiles(cand)
    total["pairs"] = pairs
    total["primary"] = next((s.get("primary") for s in snapshots if s.get("primary")), None)
    total["processes"] = sorted(str(s["process"]) for s in snapshots if s.get("process"))
    return total


def percentiles(seconds: list[float]) -> dict[str, float | None]:
    """p50 and p99 of a sample of durations, in milliseconds (``None`` when empty)."""
    if not seconds:
        return {"p50": None, "p99": None}
    ordered = sorted(seconds)
    return {"p50": round(ordered[len(ordered) // 2] * 1000, 3),
            "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3)}
