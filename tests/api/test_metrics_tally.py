"""The request metrics' tally (:mod:`cerebro.metrics`): what a flush adds to the Prometheus
families is exactly what one ``observe`` per request would have, and it is flushed on its
own (on the loop within a second, at once without one, and before a scrape)."""

import asyncio
import random

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from cerebro import metrics


def test_a_flushed_tally_equals_one_observe_per_request():
    random.seed(7)
    # every bound itself (le is "<="), just over it, 0, and a spread of ordinary latencies
    samples = [*metrics.LATENCY_BUCKETS, *(b * 1.0001 for b in metrics.LATENCY_BUCKETS),
               0.0, 42.0, *(random.expovariate(200) for _ in range(500))]
    direct = CollectorRegistry()
    requests = Counter("cerebro_requests", "r", ["module", "function", "status"],
                       registry=direct).labels("tally-a", "f", "200")
    latency = Histogram("cerebro_request_seconds", "l", ["module", "function"], registry=direct,
                        buckets=metrics.LATENCY_BUCKETS).labels("tally-a", "f")
    for seconds in samples:
        requests.inc()
        latency.observe(seconds)

    async def main():  # on a loop: tallied until flushed, in several flushes
        for i, seconds in enumerate(samples):
            metrics.observe("tally-a", "f", 200, seconds)
            if i % 100 == 0:
                metrics.flush()
        metrics.flush()
        metrics.flush()  # a flush of nothing adds nothing

    asyncio.run(main())
    got, want = _samples(metrics.REGISTRY, "tally-a"), _samples(direct, "tally-a")
    assert got.keys() == want.keys() and len(want) == len(metrics.LATENCY_BUCKETS) + 4
    for key, value in want.items():  # counts exact; the sum up to the order of its additions
        assert got[key] == pytest.approx(value, rel=1e-12), key


def _samples(registry, module):
    """``{(name, labels): value}`` of one module's request and latency samples, but their
    creation times."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples
            if s.labels.get("module") == module and not s.name.endswith("_created")
            and s.name.startswith(("cerebro_requests", "cerebro_request_seconds"))}


def _count(text, module, function="f", status="200"):
    """The request count of one endpoint in a scrape (0.0 when absent)."""
    key = (f'cerebro_requests_total{{function="{function}",module="{module}",'
           f'status="{status}"}} ')
    for line in text.splitlines():
        if line.startswith(key):
            return float(line[len(key):])
    return 0.0


def _scrape():
    """The API's metrics as collected now, without a flush."""
    return generate_latest(metrics.REGISTRY).decode()


def test_a_tally_is_flushed_within_a_second_on_the_loop_and_by_a_scrape():
    async def main():
        metrics.observe("tally-b", "f", 200, 0.001)
        metrics.observe("tally-b", "f", 200, 0.002)
        held = _count(_scrape(), "tally-b")
        await asyncio.sleep(metrics.FLUSH_SECONDS + 0.3)
        flushed = _count(_scrape(), "tally-b")
        metrics.observe("tally-b", "f", 200, 0.003)
        rendered = _count(metrics.render()[0].decode(), "tally-b")
        return held, flushed, rendered

    assert asyncio.run(main()) == (0.0, 2.0, 3.0)


def test_without_a_loop_a_request_is_counted_at_once():
    metrics.observe("tally-c", "f", 200, 0.001, error_type="ValueError")
    text = _scrape()
    assert _count(text, "tally-c") == 1.0
    assert 'cerebro_errors_total{function="f",module="tally-c",type="ValueError"} 1.0' in text


def test_a_loop_that_stopped_before_its_flush_does_not_stop_the_counting():
    async def short():
        metrics.observe("tally-d", "f", 200, 0.001)  # its flush is due on this loop only

    asyncio.run(short())
    held = _count(_scrape(), "tally-d")
    metrics.observe("tally-d", "f", 200, 0.001)  # no loop: at once, with the one held
    assert (held, _count(_scrape(), "tally-d")) == (0.0, 2.0)
