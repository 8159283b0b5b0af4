"""The Kafka consumer against a real broker (tansu, or the external one of
CEREBRO_TEST_KAFKA_BOOTSTRAP), a real main-app receiver and real `cerebro consume` processes:
delivery, crashes, scale-out, dead letters, broker outages."""

import re
import time

import pytest
from kafka import KafkaAdminClient

from conftest import STATIC, events, produce, wait_for


def committed_total(broker, group, topic):
    """The sum of the group's committed offsets on ``topic``."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        offsets = admin.list_group_offsets(group)[group]
    finally:
        admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic)


def test_ten_thousand_events_each_dispatched_and_called_once(broker, receiver, consumers, topic):
    """10,000 events: every one dispatched and its main-app call made exactly once."""
    broker.create_topics(topic, partitions=4)
    produce(broker, topic, events(10_000))
    main_app = receiver()
    consumer = consumers(main_app.url)
    wait_for(lambda: main_app.stats()["unique"] >= 10_000, 120, message="10,000 calls")
    assert consumer.terminate() == 0
    stats = main_app.stats(keys=True)
    assert stats["calls"] == 10_000 and stats["duplicates"] == 0
    assert stats["by_status"] == {"ok": 10_000}
    assert stats["signature_errors"] == 0
    assert set(stats["keys"]) == {f"e{i}" for i in range(10_000)}
    assert {path for _c, _s, path in stats["keys"].values()} == {"/cerebro/events/events/handle"}
    assert committed_total(broker, consumers.group, topic) == 10_000


def test_kill_9_then_restart_loses_nothing(broker, receiver, consumers, topic):
    """A consumer killed part-way and restarted: every event processed at least once."""
    broker.create_topics(topic, partitions=4)
    produce(broker, topic, events(10_000))
    main_app = receiver()
    first = consumers(main_app.url, CEREBRO_KAFKA_MAX_POLL_RECORDS="200", **STATIC)
    wait_for(lambda: main_app.stats()["calls"] >= 3_000, 120, 0.05, message="3,000 calls")
    first.kill()
    at_kill = main_app.stats()["calls"]
    assert at_kill < 10_000, "the consumer finished before it could be killed"
    second = consumers(main_app.url, **STATIC)  # its predecessor's instance id: no rebalance
    wait_for(lambda: main_app.stats()["unique"] >= 10_000, 120, message="every event")
    second.terminate()
    stats = main_app.stats(keys=True)
    assert set(stats["keys"]) == {f"e{i}" for i in range(10_000)}
    # Duplicates are allowed (at-least-once) but bounded by what was in flight at the kill.
    assert stats["duplicates"] <= 4 * 200


def test_two_consumers_split_the_partitions(broker, receiver, consumers, topic):
    """Two processes in one group on one host share the partitions and together process
    everything: as static members (the default) each gets its own group instance id."""
    broker.create_topics(topic, partitions=4)
    main_app = receiver()
    one, two = consumers(main_app.url, **STATIC), consumers(main_app.url, **STATIC)
    all_partitions = {f"{topic}-{p}" for p in range(4)}

    def split():
        """True once the two last assignments are disjoint and cover every partition."""
        a, b = one.assigned(), two.assigned()
        return a is not None and b is not None and a and b and not (a & b) \
            and (a | b) == all_partitions

    wait_for(split, 60, message="the partitions to be split")
    produce(broker, topic, events(4_000))
    wait_for(lambda: main_app.stats()["unique"] >= 4_000, 60, message="4,000 calls")
    assert one.terminate() == 0 and two.terminate() == 0
    stats = main_app.stats()
    assert stats["unique"] == 4_000 and stats["duplicates"] == 0
    handled = [int(re.findall(r"consumer: (\d+) records", c.log())[-1]) for c in (one, two)]
    assert all(n > 0 for n in handled) and sum(handled) == 4_000, handled
    ids = {re.findall(r"static member (\S+)\)", c.log())[0] for c in (one, two)}
    assert len(ids) == 2, ids


def test_bad_records_are_dead_lettered_and_the_partition_moves_on(broker, receiver, consumers,
                                                                  topic):
    """Malformed JSON, an invalid payload and an always-failing handler land in <topic>.dlq
    with the error and the original bytes; the records after them are processed."""
    broker.create_topics(topic, partitions=1)
    malformed = b'{"event_id": "bad-json", "n": '
    bad = [malformed, {"event_id": "bad-n", "n": -1}, {"event_id": "no-n"},
           {"event_id": "boom", "n": 7, "explode": True}]
    produce(broker, topic, bad + events(5), partition=0)
    main_app = receiver()
    consumer = consumers(main_app.url, CEREBRO_CONSUMER_RETRIES="2")
    wait_for(lambda: main_app.stats()["unique"] >= 9, 60, message="9 outcomes")
    dead = broker.read_all(f"{topic}.dlq", expected=4)
    assert consumer.terminate() == 0
    assert consumer.alive() is False
    stats = main_app.stats(keys=True)
    assert {k for k, v in stats["keys"].items() if v[1] == "ok"} == {f"e{i}" for i in range(5)}
    assert {k for k, v in stats["keys"].items() if v[1] == "dead_lettered"} == \
        {f"{topic}-0-0", "bad-n", "no-n", "boom"}
    assert len(dead) == 4
    by_offset = {int(dict(r.headers)["cerebro-source-offset"]): r for r in dead}
    assert sorted(by_offset) == [0, 1, 2, 3]
    expected = {0: ("decode", "invalid_payload"), 1: ("validate", "invalid_payload"),
                2: ("validate", "invalid_payload"), 3: ("handler", "internal")}
    for offset, (stage, kind) in expected.items():
        headers = {k: v.decode() for k, v in by_offset[offset].headers}
        assert headers["cerebro-stage"] == stage
        assert headers["cerebro-error-type"] == kind
        assert headers["cerebro-source-topic"] == topic
        assert headers["cerebro-source-partition"] == "0"
        assert headers["cerebro-function"] == "events.handle"
        assert headers["cerebro-error"]
    assert by_offset[0].value == malformed
    assert "cerebro-error-id" in dict(by_offset[3].headers)
    log = consumer.log()
    assert "retry 2/2" in log and "retry 3/2" not in log


def test_main_app_outage_is_retried_not_lost(broker, receiver, consumers, topic):
    """The main app answering 503 for a while: events are retried later, none lost."""
    broker.create_topics(topic, partitions=2)
    produce(broker, topic, events(500))
    main_app = receiver(fail_first=300)
    consumer = consumers(main_app.url, CEREBRO_CONSUMER_RETRIES="1")
    wait_for(lambda: main_app.stats()["unique"] >= 500, 60, message="500 calls")
    assert consumer.terminate() == 0
    stats = main_app.stats(keys=True)
    assert stats["refused"] == 300
    assert set(stats["keys"]) == {f"e{i}" for i in range(500)}
    assert broker.read_all(f"{topic}.dlq", timeout=3) == []


def test_broker_restart_consumer_resumes_by_itself(broker, receiver, consumers, topic):
    """The broker stops and comes back (tansu: empty, memory only; Apache Kafka: as it was);
    the same process resumes."""
    if not broker.can_restart:
        pytest.skip("set CEREBRO_TEST_KAFKA_STOP and CEREBRO_TEST_KAFKA_START to restart "
                    "the external broker")
    broker.create_topics(topic, partitions=2)
    produce(broker, topic, events(300))
    main_app = receiver()
    consumer = consumers(main_app.url)
    wait_for(lambda: main_app.stats()["unique"] >= 300, 60, message="the first 300 events")
    broker.stop()
    time.sleep(4)
    assert consumer.alive()
    broker.start()
    broker.create_topics(topic, partitions=2)  # tansu forgot it; Apache Kafka still has it
    produce(broker, topic, events(300, start=300))
    wait_for(lambda: main_app.stats()["unique"] >= 600, 90, message="the 300 events after restart")
    assert consumer.alive()
    assert consumer.terminate() == 0
    assert set(main_app.stats(keys=True)["keys"]) == {f"e{i}" for i in range(600)}
