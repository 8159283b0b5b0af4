"""The consumer's restart gap: a `cerebro consume` killed with SIGKILL under a steady load and
started again at once (as supervisord does) handles events again within a few seconds, because
its static group membership (CEREBRO_KAFKA_INSTANCE_ID=auto: the same <host>-<n> again) gets its
partitions straight back instead of waiting for the dead member's session to expire and the
group to rebalance. Nothing is lost; duplicates stay within what was in flight at the kill."""

import threading
import time

from conftest import STATIC, events, wait_for

RATE = 400           # events per second, steady
POLL_RECORDS = 100   # CEREBRO_KAFKA_MAX_POLL_RECORDS: bounds what is in flight at the kill


class Load:
    """Produces ``RATE`` events a second (ids e0, e1, ...) on a thread until stopped."""

    def __init__(self, broker, topic):
        self.producer = broker.producer(acks="all")
        self.topic = topic
        self.sent = 0
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        """Send a tenth of a second's events every tenth of a second."""
        import json
        while not self.halt.wait(0.1):
            for event in events(RATE // 10, start=self.sent):
                self.producer.send(self.topic, json.dumps(event).encode())
            self.sent += RATE // 10
        self.producer.flush(30)

    def stop(self):
        """Stop producing; every event sent is acknowledged on return."""
        self.halt.set()
        self.thread.join(30)
        self.producer.close()
        return self.sent


class Calls:
    """Watches the receiver's call count: when it first moved after a moment."""

    def __init__(self, receiver):
        self.receiver = receiver

    def first_after(self, since, count, timeout=30):
        """Seconds from ``since`` (monotonic) until the call count exceeds ``count``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.receiver.stats()["calls"] > count:
                return time.monotonic() - since
            time.sleep(0.02)
        raise AssertionError(f"no main-app call within {timeout}s")


def test_kill_9_under_load_restarts_within_seconds(broker, receiver, consumers, topic):
    """Cold start, then kill -9 under load and an immediate restart: the gap without main-app
    calls is no longer than a cold start (no wait for the dead member's session) and a few
    seconds at most; every event is handled, duplicates bounded by what was in flight."""
    broker.create_topics(topic, partitions=4)
    main_app = receiver()
    calls = Calls(main_app)
    load = Load(broker, topic)
    try:
        started = time.monotonic()
        first = consumers(main_app.url, CEREBRO_KAFKA_MAX_POLL_RECORDS=str(POLL_RECORDS), **STATIC)
        cold = calls.first_after(started, 0)
        time.sleep(2)                       # a steady flow of calls
        assert first.alive()
        first.kill()
        killed, at_kill = time.monotonic(), main_app.stats()["calls"]
        second = consumers(main_app.url, CEREBRO_KAFKA_MAX_POLL_RECORDS=str(POLL_RECORDS), **STATIC)
        gap = calls.first_after(killed, at_kill)
        time.sleep(1)
    finally:
        sent = load.stop()
    wait_for(lambda: main_app.stats()["unique"] >= sent, 30, message=f"all {sent} events")
    assert second.terminate() == 0
    print(f"\ncold start {cold:.2f}s, restart gap {gap:.2f}s, {sent} events")
    static = "static member" in second.log()
    assert static, "the consumer did not use static group membership"
    stats = main_app.stats(keys=True)
    assert set(stats["keys"]) == {f"e{i}" for i in range(sent)}
    assert stats["duplicates"] <= 4 * POLL_RECORDS, stats["duplicates"]
    assert gap <= cold + 2.0, f"restart gap {gap:.2f}s, cold start {cold:.2f}s"
    assert gap <= 10.0, f"restart gap {gap:.2f}s"
