"""The roster of `cerebro status --all`, against a real Redis: heartbeats, liveness by Redis's
clock, a clean stop leaving no trace, tidying, malformed entries, `--forget`, and what a Kafka
consumer announces when partitions are revoked or lost."""

import json
import os
import time
import uuid

import pytest
from kafka import TopicPartition

from cerebro import roster
from cerebro.consumer.runner import Runner
from cerebro.ops import deployment
from cerebro.registry import Registry
from cerebro.settings import load_settings
from procs import wait_for


@pytest.fixture
def settings(redis_url):
    """Settings with a roster of their own in the shared Redis, one-second heartbeats."""
    return load_settings({"CEREBRO_RESULT_BACKEND": redis_url, "CEREBRO_NODE": "node-a",
                          "CEREBRO_QUEUE_PREFIX": f"roster-{uuid.uuid4().hex[:8]}",
                          "CEREBRO_NODE_HEARTBEAT": "1"})


@pytest.fixture
def client(settings):
    """A Redis client; the roster's keys are removed after the test."""
    redis = roster.redis_client(settings)
    yield redis
    keys = list(redis.scan_iter(f"{settings.queue_prefix}:roster*"))
    if keys:
        redis.delete(*keys)
    redis.close()


def _beacon(settings, service="api"):
    """A beacon of an empty registry."""
    return roster.Beacon(settings, service, Registry(settings, {}))


def test_a_heartbeat_is_alive_and_a_clean_stop_leaves_nothing(settings, client):
    """start() writes this process with its alive key; stop() removes both at once."""
    beacon = _beacon(settings)
    beacon.start()
    key = roster.roster_key(settings)
    found = wait_for(lambda: roster.entries(client, key), 5, interval=0.05,
                     what="this process in the roster")
    assert [(e["node"], e["service"], e["pid"], e["alive"]) for e in found] == \
        [("node-a", "api", os.getpid(), True)]
    assert 1 <= client.ttl(roster.alive_key(key, beacon.field)) <= 4
    beacon.stop()
    assert roster.entries(client, key) == []
    assert not client.exists(roster.alive_key(key, beacon.field))


def test_a_silent_process_is_lost_by_redis_clock_and_then_forgotten(settings, client):
    """An entry whose alive key expired is LOST, whatever its own clock claimed ("seen" in the
    future); `--forget` removes the node."""
    key = roster.roster_key(settings)
    entry = {"node": "node-b", "service": "worker", "pid": 4242, "host": "elsewhere",
             "seen": time.time() + 3600, "started": time.time(), "modules": {}}
    field = roster.field_name("node-b", "worker", 4242)
    client.hset(key, field, json.dumps(entry))
    client.set(roster.alive_key(key, field), "1", px=300)
    assert roster.entries(client, key)[0]["alive"] is True
    time.sleep(0.5)
    assert roster.entries(client, key)[0]["alive"] is False
    report = deployment.collect(settings)
    assert not report["healthy"] and not report["nodes"][0]["alive"]
    assert "LOST" in deployment.render(report)
    assert deployment.forget(settings, "node-b") == 1
    assert roster.entries(client, key) == []


def test_tidying_removes_dead_processes_of_this_node_and_malformed_entries(settings, client):
    """A field of this node and host whose pid no longer exists, and unreadable entries, go;
    another node's field and this process's stay."""
    key = roster.roster_key(settings)
    dead = _dead_pid()
    mine = {"node": "node-a", "service": "worker", "pid": dead, "host": os.uname().nodename,
            "seen": time.time()}
    other = dict(mine, node="node-b", seen=time.time())
    client.hset(key, mapping={roster.field_name("node-a", "worker", dead): json.dumps(mine),
                              roster.field_name("node-b", "worker", dead): json.dumps(other),
                              "junk": "not json", "nulls": json.dumps({"seen": None})})
    beacon = _beacon(settings)
    assert beacon.beat()
    fields = {f.decode() for f in client.hkeys(key)}
    assert fields == {roster.field_name("node-b", "worker", dead), beacon.field}


def test_a_consumer_announces_what_it_keeps_not_what_it_gives_up(settings):
    """kafka-python calls the revoke and lost listeners before it clears the assignment: the
    roster is told the assignment less those partitions, and nothing once closed."""
    told = []

    class Assigned:
        """The part of a KafkaConsumer the announcement reads: its assignment."""

        def __init__(self, partitions):
            self.partitions = set(partitions)

        def assignment(self):
            """The partitions assigned."""
            return set(self.partitions)

    runner = Runner(settings, router=None, processor=_Forgetful(), group="g",
                    consumer=Assigned([TopicPartition("t", p) for p in range(4)]),
                    announce=lambda **facts: told.append(facts))
    runner.on_partitions_revoked([TopicPartition("t", 2), TopicPartition("t", 3)])
    assert told[-1] == {"group": "g", "assignment": {"t": [0, 1]}}
    runner.on_partitions_lost([TopicPartition("t", 0), TopicPartition("t", 1),
                               TopicPartition("t", 2), TopicPartition("t", 3)])
    assert told[-1] == {"group": "g", "assignment": {}}


class _Forgetful:
    """A processor as the revoke listener uses it (it forgets revoked partitions)."""

    def forget(self, _partitions):
        """Nothing held."""


def _dead_pid():
    """A pid no process has."""
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1
