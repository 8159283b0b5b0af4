"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Prometheus metrics: requests, errors, latency per endpoint, and model versions.
Tagline: What is measured can be mended.

With several API processes, ``cerebro serve`` points ``PROMETHEUS_MULTIPROC_DIR``
at a fresh folder before this module is imported, so one scrape of any process
sums all of them.
"""

from __future__ import annotations

import os
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
LATENCY = Histogram("cerebro_request_seconds", "Request latency by endpoint.",
                    ["module", "function"], registry=REGISTRY,
                    buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
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


# (module, function, status) -> its request counter and latency histogram: a labelled child
# is found once, not per request (labels() validates and locks); the families never drop one
_children: dict[tuple[str, str, int | str], tuple[Any, Any]] = {}


def observe(module: str, function: str, status: int | str, seconds: float,
            error_type: str | None = None) -> None:
    """Count one request and its latency (and its error type, if any)."""
    key = (module, function, status)
    children = _children.get(key)
    if children is None:
        children = _children[key] = (REQUESTS.labels(module, function, str(status)),
                                     LATENCY.labels(module, function))
    children[0].inc()
    children[1].observe(seconds)
    if error_type:
        ERRORS.labels(module, function, error_type).inc()


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
    if _MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
