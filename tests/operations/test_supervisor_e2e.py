"""The shipped supervisord.conf brought up by `cerebro up` on test ports with a temporary volume:
every program really ready, one smoke through every path (sync REST, async + callback, Kafka event
+ main-app call, an exception reaching Sherlock's file), the worker killed and restarted by
Supervisor then the smoke again, `cerebro status`, and a clean `cerebro down` leaving no process.

One bring-up for the whole module (tests run in file order and share it).
"""

import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from procs import wait_for
from stack import alive, descendants, running_stack
from support import http


@pytest.fixture(scope="module")
def stack(built_volume, tmp_path_factory):
    """`cerebro up` on test ports; torn down with `cerebro down` (and a hard stop if needed)."""
    with running_stack(built_volume, tmp_path_factory.mktemp("ops-e2e")) as stack:
        yield stack


def smoke(stack):
    """One pass through every path at once; returns what it sent."""
    tag = uuid.uuid4().hex[:8]
    from kafka import KafkaProducer
    modules = http("GET", stack.api + "/v1/modules")[2]["modules"]
    examples = {(m["name"], f["name"]): f["example"] for m in modules for f in m["functions"]}

    # 1. sync REST call
    status, _, body = http("POST", stack.api + "/v1/rent_predictor/predict",
                           examples[("rent_predictor", "predict")])
    assert status == 200 and body["rent"] > 0 and body["model_version"], body

    # 2. async call: 202, then the signed callback reaches the main app
    listing = dict(examples[("listing_enrichment", "enrich")], listing_id=f"L-{tag}")
    status, _, accepted = http("POST", stack.api + "/v1/listing_enrichment/enrich", listing)
    assert status == 202, accepted
    ok_task = accepted["task_id"]

    # 3. an exception: the amenities service answers garbage, the task fails and Sherlock has it
    status, _, accepted = http("POST", stack.api + "/v1/listing_enrichment/enrich",
                               dict(listing, latitude=0.0))
    assert status == 202, accepted
    bad_task = accepted["task_id"]

    # 4. a Kafka event: vigilante screens it and the consumer calls the main app
    event_id = f"ev-{tag}"
    event = dict(examples[("vigilante", "screen")], event_id=event_id)
    producer = KafkaProducer(bootstrap_servers=stack.kafka)
    producer.send("listings", json.dumps(event).encode()).get(timeout=10)
    producer.close()

    calls = wait_for(lambda: (lambda c: c if {ok_task, bad_task, event_id} <= set(c) else None)(
        stack.calls()), 60, what="callbacks and the event's main-app call")
    assert calls[ok_task][1] == "succeeded" and "/cerebro/callbacks/listing_enrichment/enrich" \
        in calls[ok_task][2]
    assert calls[bad_task][1] == "failed"
    assert calls[event_id][1] == "ok" and calls[event_id][2] == "/cerebro/events/vigilante/screen"
    record = wait_for(lambda: [r for r in stack.sherlock_records() if r.get("task_id") == bad_task],
                      20, what="the task's exception in Sherlock's file")[0]
    assert record["type"] == "KeyError" and record["service"] == "worker"
    assert record["module"] == "listing_enrichment"
    return tag


def test_every_program_is_running_and_ready(stack):
    """After `cerebro up` every program supervisord was told to start is RUNNING."""
    infos = stack.supervisor().processes()
    expected = {"epmd", "rabbitmq", "redis", "kafka", "api", "worker", "beat", "flower",
                "consumer", "subscriber"}
    assert {n for n, i in infos.items() if i["statename"] == "RUNNING"} == expected
    assert infos["bootstrap"]["statename"] == "EXITED" and infos["bootstrap"]["exitstatus"] == 0
    assert stack.up_seconds < 150
    assert http("GET", stack.api + "/readyz")[0] == 200


def test_smoke_through_every_path(stack):
    """Sync REST, async + callback, Kafka event + main-app call, exception -> Sherlock."""
    smoke(stack)


def test_killed_worker_is_restarted_and_smoke_passes_again(stack):
    """kill -9 of the worker: Supervisor starts a new one; everything works again."""
    sup = stack.supervisor()
    old = sup.processes()["worker"]["pid"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: (lambda i: i["statename"] == "RUNNING" and i["pid"] not in (0, old))(
        sup.processes()["worker"]), 30, what="the worker restarted")
    result = stack.cerebro("up", "--no-build", "--timeout", "60")   # waits for readiness again
    assert result.returncode == 0, result.stdout + result.stderr
    assert "already running" in result.stdout
    smoke(stack)


def test_status_shows_everything(stack):
    """`cerebro status --json`: programs, modules with versions, queues, Kafka group, Sherlock."""
    result = stack.cerebro("status", "--json", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["healthy"] and not report["errors"]
    assert {p["name"] for p in report["programs"] if p["state"] == "RUNNING"} >= {"api", "worker"}
    assert {m["name"] for m in report["modules"] if m["ready"] and m["models"]} == \
        {"listing_enrichment", "locality_score", "rent_predictor", "vigilante"}
    assert any(q["queue"].endswith(".listing_enrichment") and q["consumers"] >= 1
               for q in report["queues"])
    assert report["kafka"]["topics"] == ["listings"] and report["kafka"]["total_lag"] == 0
    assert report["sherlock"]["exceptions"] >= 2
    text = stack.cerebro("status", timeout=60).stdout
    assert "Programs (supervisord):" in text and "Kafka group" in text and "Sherlock:" in text


def test_down_stops_everything_and_leaves_no_process(stack):
    """`cerebro down`: supervisord and every process it started (children included) are gone."""
    pid = stack.supervisor().pid()
    below = descendants(pid)
    assert len(below) >= 10
    started = time.monotonic()
    result = stack.cerebro("down", timeout=120)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    # every program is stopped at once, each within 8 s: a `docker stop` (SIGTERM to
    # supervisord, SIGKILL after 10 s) ends cleanly
    assert took < 10, f"a clean stop took {took:.1f}s, past Docker's 10 s grace"
    left = [p for p in below | {pid} if alive(p)]
    assert not left, [Path(f"/proc/{p}/cmdline").read_bytes() for p in left]
    assert not stack.supervisor().alive()
