"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Prometheus metrics: requests, errors, latency per endpoint, and model versions.
Tagline: What is measured can be mended.

With several API processes, ``cerebro serve`` points ``PROMETHEUS_MULTIPROC_DIR``
at a fresh folder before this module is imported, so one scrape of any process
sums all of them.

A request's count and latency are tallied in the process and added to those
shared files once a second (:func:`flush`; a scrape of the process flushes its
own first, and each process as it exits), not written per request: a scrape
may lag the other processes' last second, and a process killed outright
(``SIGKILL``) takes its last second's counts with it.
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge,
                               Histogram, generate_latest, multiprocess, values)

REGISTRY = CollectorRegistry(auto_describe=True)
_MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
if _MULTIPROCESS and values.ValueClass is values.MutexValue:
    raise RuntimeError("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set; "
                       "call cerebro.api.server.prepare_multiprocess_metrics() first")

REQUESTS = Counter("cerebro_requests_total", "Requests by endpoint and HTTP status.",
                   ["module", "function", "status"], registry=REGISTRY)
ERRORS = Counter("cerebro_errors_total", "Failed requests by endpoint and error type.",
                 ["module", "function", "type"], registry=REGISTRY)
LATENCY_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)
LATENCY = Histogram("cerebro_request_seconds", "Request latency by endpoint.",
                    ["module", "function"], registry=REGISTRY, buckets=LATENCY_BUCKETS)
MODEL_VERSION = Gauge("cerebro_model_info", "Model version being served (1) per module.",
                      ["module", "artifact", "version"], registry=REGISTRY,
                      multiprocess_mode="max")

SHADOW_COUNTS = Counter("cerebro_shadow_calls_total",
                        "Shadow calls of a candidate version: outcome is calls, errors or dropped.",
                        ["module", "version", "outcome"], registry=REGISTRY)
SHADOW_MEASURE_SUM = Counter("cerebro_shadow_measure",
                             "Sum of a comparison measure (live vs candidate answer) over shadow "
                             "calls; its mean is this over cerebro_shadow_measured_total.",
                             ["module", "version", "measure"], registry=REGISTRY)
SHADOW_MEASURE_COUNT = Counter("cerebro_shadow_measured",
                               "Shadow calls in which a comparison measure was taken.",
                               ["module", "version", "measure"], registry=REGISTRY)
CANARY_CALLS = Counter("cerebro_canary_calls_total",
                       "Calls to a module in canary, by side (current, candidate) and outcome.",
                       ["module", "version", "side", "outcome"], registry=REGISTRY)

DRIFT_PSI = Gauge("cerebro_drift_psi",
                  "Population stability index of a field (input or prediction) over the last "
                  "hour against the version's training profile.",
                  ["module", "version", "field"], registry=REGISTRY, multiprocess_mode="max")
DRIFT_FLAGGED = Gauge("cerebro_drift_flagged",
                      "1 when a field crosses a drift threshold over the last hour.",
                      ["module", "version", "field"], registry=REGISTRY,
                      multiprocess_mode="max")

if TYPE_CHECKING:
    from cerebro.registry import Registry

_versions: dict[tuple[str, str], str | None] = {}


FLUSH_SECONDS = 1.0  # a request's count and latency reach the shared metrics within this
_LATENCY_BOUNDS = (*LATENCY_BUCKETS, float("inf"))  # the histogram's buckets' bounds


class _Tally:
    """The requests of one (module, function, status) since the last :func:`flush`: their
    count, latency sum and latency bucket counts, added to its Prometheus children then.

    A request adds three numbers here instead of three writes to the multiprocess files,
    each behind a lock and a ``getpid`` system call."""

    __slots__ = ("count", "seconds", "buckets", "requests", "latency")

    def __init__(self, requests: Any, latency: Any) -> None:
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * len(_LATENCY_BOUNDS)  # per bucket, not cumulative (as stored)
        self.requests, self.latency = requests, latency

    def flush(self) -> None:
        """Add what was counted to the Prometheus children, and start again from zero."""
        self.requests.inc(self.count)
        # Histogram.observe adds one observation; these add many: its sum and its buckets
        # (prometheus_client keeps them per bucket, and accumulates them when collected)
        self.latency._sum.inc(self.seconds)
        for value, count in zip(self.latency._buckets, self.buckets):
            if count:
                value.inc(count)
        self.count, self.seconds = 0, 0.0
        self.buckets = [0] * len(_LATENCY_BOUNDS)


# (module, function, status) -> its tally (its labelled children are found once, not per
# request: labels() validates and locks; the families never drop one)
_tallies: dict[tuple[str, str, int | str], _Tally] = {}
_flush_loop: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on


def observe(module: str, function: str, status: int | str, seconds: float,
            error_type: str | None = None) -> None:
    """Count one request and its latency (and its error type, if any).

    Called on an event loop's thread (the API's IOLoop: one thread per process counts, with
    no lock), the count reaches the shared metrics within :data:`FLUSH_SECONDS` (:func:`flush`,
    scheduled on that loop); called where no loop runs and no flush is due, at once."""
    key = (module, function, status)
    tally = _tallies.get(key)
    if tally is None:
        tally = _tallies[key] = _Tally(REQUESTS.labels(module, function, str(status)),
                                       LATENCY.labels(module, function))
    tally.count += 1
    tally.seconds += seconds
    tally.buckets[bisect_left(_LATENCY_BOUNDS, seconds)] += 1
    if error_type:
        ERRORS.labels(module, function, error_type).inc()
    if _flush_loop is None or _flush_loop.is_closed():
        _schedule_flush()


def _schedule_flush() -> None:
    """Flush in :data:`FLUSH_SECONDS` on the running loop, or now without one. (A loop closed
    before its flush took it with it: the next request schedules its own.)"""
    global _flush_loop
    loop = asyncio._get_running_loop()  # once a second, not per request: it calls getpid
    if loop is None:
        flush()
        return
    _flush_loop = loop
    loop.call_later(FLUSH_SECONDS, flush)


def flush() -> None:
    """Add every tally to the shared metrics now (:func:`render` does first, and the API
    process before it exits)."""
    global _flush_loop
    _flush_loop = None
    for tally in _tallies.values():
        if tally.count:
            tally.flush()


def set_model_versions(registry: Registry) -> None:
    """Publish the served model version of every module (old versions go to 0)."""
    for mod in registry.modules.values():
        for handle in mod.handles:
            key = (mod.name, handle.artifact)
            version = handle.version
            previous = _versions.get(key)
            if version == previous:
                continue
            if previous is not None:
                MODEL_VERSION.labels(mod.name, handle.artifact, previous).set(0)
            if version is not None:
                MODEL_VERSION.labels(mod.name, handle.artifact, version).set(1)
            _versions[key] = version


def render() -> tuple[bytes, str]:
    """The metrics in Prometheus text format, and its content type."""
    flush()
    if _MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
