"""Chaos: the whole stack under supervisord with a steady mixed load (sync calls, async
submits, Kafka events) while each Cerebro program is killed with SIGKILL in turn.

Asserts: no async task and no Kafka event lost (counted at the main-app simulator), sync
failures only inside the kill windows, every program back to ready after each kill, and no
process left after `cerebro down`. Bounded: about two minutes.
"""

import json
import os
import signal
import time
import uuid

import pytest

from procs import Senders, wait_for
from stack import alive, descendants, running_stack
from support import http

# Cerebro's own programs. The brokers are not killed: tansu keeps everything in memory (a
# restart is a new, empty cluster, unlike Apache Kafka), so a kill would lose events by design.
VICTIMS = ("api", "worker", "consumer", "subscriber", "beat", "flower", "rabbitmq", "redis")
SETTLE_SECONDS = 2.0  # load keeps flowing between one program back to ready and the next kill


class Load(Senders):
    """Three threads of steady traffic, each recording what the stack accepted."""

    def __init__(self, stack):
        super().__init__(self._sync, self._async, self._kafka)
        self.stack = stack
        self.sync = []            # (monotonic time, ok)
        self.accepted = set()     # task ids answered 202
        self.refused = 0          # async submits not accepted (the API was down)
        self.produced = set()     # event ids the broker acknowledged
        modules = http("GET", stack.api + "/v1/modules")[2]["modules"]
        self.examples = {(m["name"], f["name"]): f["example"]
                         for m in modules for f in m["functions"]}

    def _sync(self):
        """rent_predictor.predict, back to back."""
        payload = self.examples[("rent_predictor", "predict")]
        while not self.stop.is_set():
            try:
                ok = http("POST", self.stack.api + "/v1/rent_predictor/predict", payload,
                          timeout=5)[0] == 200
            except OSError:
                ok = False
            self.sync.append((time.monotonic(), ok))
            if not ok:
                time.sleep(0.05)

    def _async(self):
        """listing_enrichment.enrich every 50 ms, each with its own listing id."""
        base = self.examples[("listing_enrichment", "enrich")]
        while not self.stop.wait(0.05):
            listing = dict(base, listing_id=f"L-{uuid.uuid4().hex[:10]}")
            try:
                status, _, body = http("POST", self.stack.api + "/v1/listing_enrichment/enrich",
                                       listing, timeout=5)
            except OSError:
                status, body = 0, None
            if status == 202:
                self.accepted.add(body["task_id"])
            else:
                self.refused += 1

    def _kafka(self):
        """vigilante events on `listings` every 20 ms, each acknowledged by the broker."""
        from kafka import KafkaProducer
        producer = KafkaProducer(bootstrap_servers=self.stack.kafka, acks="all", linger_ms=5)
        base = self.examples[("vigilante", "screen")]
        try:
            while not self.stop.wait(0.02):
                event_id = f"ev-{uuid.uuid4().hex[:10]}"
                producer.send("listings", json.dumps(dict(base, event_id=event_id)).encode()) \
                    .get(timeout=10)
                self.produced.add(event_id)
        finally:
            producer.close()


def _kill_and_wait(stack, name):
    """SIGKILL program ``name``; returns (killed at, ready again at) in monotonic seconds."""
    from cerebro.ops import probes, programs
    from cerebro.settings import load_settings
    settings = load_settings(stack.env)
    probe = next(row.probe for row in programs.table() if row.name == name)
    sup = stack.supervisor()
    old = sup.processes()[name]["pid"]
    killed = time.monotonic()
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: (lambda i: i["statename"] == "RUNNING" and i["pid"] not in (0, old))(
        sup.processes()[name]), 60, what=f"{name} restarted by supervisord")
    wait_for(lambda: probe is None or probes.check(probe, settings, stack.env)[0], 60,
             what=f"{name} ready again")
    return killed, time.monotonic()


@pytest.fixture(scope="module")
def stack(built_volume, tmp_path_factory):
    """The stack with the main-app simulator, two API processes, on test ports."""
    with running_stack(built_volume, tmp_path_factory.mktemp("chaos"), simulator=True,
                       CEREBRO_PROCESSES=2) as stack:
        yield stack


def test_killing_every_program_in_turn_loses_nothing(stack):
    """Each program is SIGKILLed in turn under load; nothing accepted is lost."""
    stack.reset_received()
    load = Load(stack).start()
    windows = {}
    try:
        time.sleep(SETTLE_SECONDS)
        for name in VICTIMS:
            windows[name] = _kill_and_wait(stack, name)
            time.sleep(SETTLE_SECONDS)
    finally:
        load.finish()
    expected = load.accepted | load.produced
    seen = wait_for(lambda: (lambda keys: keys if expected <= keys else None)(
        stack.received_keys()), 120, what="every accepted task and event at the main app")
    report = {name: round(ready - killed, 1) for name, (killed, ready) in windows.items()}
    failures = [t for t, ok in load.sync if not ok]
    outside = [t for t in failures
               if not any(killed - 0.5 <= t <= ready + 1.0 for killed, ready in windows.values())]
    print(f"\nchaos: {len(load.sync)} sync calls ({len(failures)} failed, all in kill windows), "
          f"{len(load.accepted)} async tasks accepted ({load.refused} refused), "
          f"{len(load.produced)} Kafka events; back to ready after kill -9 (s): {report}; "
          f"main app saw {len(seen)} unique keys")
    assert len(load.accepted) > 100 and len(load.produced) > 300 and len(load.sync) > 500
    assert not outside, f"sync failures outside the kill windows at {outside}"
    stats = stack.received()
    assert stats["bad_signatures"] == 0
    assert stack.cerebro("up", "--no-build", "--timeout", "60").returncode == 0  # all ready


def test_down_leaves_no_process_after_the_chaos(stack):
    """`cerebro down` after the kills: supervisord, every program and every orphan gone."""
    from cerebro.ops import leftovers
    pid = stack.supervisor().pid()
    below = descendants(pid)
    result = stack.cerebro("down", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [p for p in below | {pid} if alive(p)]
    assert leftovers.find(stack.state) == []
