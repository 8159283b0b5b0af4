"""The consumer's partition holds, in process: a partition rewound to retry later is paused only
until its records are due, and a rebalance never leaves it paused for good (kafka-python keeps a
partition's paused flag when the same consumer gets it back). The partition state is
kafka-python's own SubscriptionState; no broker is needed."""

import threading
from collections import namedtuple
from types import SimpleNamespace

from kafka import TopicPartition
from kafka.consumer.subscription_state import SubscriptionState

from cerebro.consumer.processor import RETRY, Outcome
from cerebro.consumer.runner import Runner
from cerebro.settings import load_settings

Record = namedtuple("Record", "topic partition offset")
TP = TopicPartition("listings", 0)


class Assigned:
    """The part of KafkaConsumer the runner's holds use, over a real SubscriptionState."""

    def __init__(self):
        self.state = SubscriptionState()
        self.state.subscribe(topics=["listings"])

    def assign(self, partitions):
        """What a group (re)join does to the state."""
        self.state.assign_from_subscribed(partitions)

    def assignment(self):
        """The partitions assigned."""
        return self.state.assigned_partitions()

    def paused(self):
        """The partitions paused."""
        return self.state.paused_partitions()

    def pause(self, *partitions):
        """Pause fetching from these."""
        for tp in partitions:
            self.state.pause(tp)

    def resume(self, *partitions):
        """Fetch from these again."""
        for tp in partitions:
            self.state.resume(tp)


def _runner():
    """A runner whose consumer state is real and whose processor only forgets."""
    settings = load_settings({"CEREBRO_RETRY_BACKOFF": "0.05"})
    processor = SimpleNamespace(forget=lambda partitions: None)
    consumer = Assigned()
    consumer.assign([TP])
    return Runner(settings, None, processor, "g", threading.Event(), consumer), consumer


def _waiting(seconds):
    """The outcome of a record whose model is not loaded: retry after ``seconds``."""
    return Outcome(Record("listings", 0, 7), status=RETRY, retry_after=seconds)


def test_a_held_partition_resumes_when_due():
    """Held for the policy's delay, then resumed by the next round's release."""
    runner, consumer = _runner()
    runner.hold({TP: 7}, [_waiting(0.01)])
    assert consumer.paused() == {TP}
    threading.Event().wait(0.02)
    runner.release()
    assert consumer.paused() == set() and runner.held == {}


def test_a_rebalance_never_leaves_a_held_partition_paused():
    """Held, revoked, then assigned back to the same consumer: it flows again at once."""
    runner, consumer = _runner()
    runner.hold({TP: 7}, [_waiting(60.0)])
    runner.on_partitions_revoked([TP])
    consumer.assign([TP])           # kafka-python keeps the paused flag across the rejoin
    runner.on_partitions_assigned([TP])
    assert consumer.paused() == set() and runner.held == {}
