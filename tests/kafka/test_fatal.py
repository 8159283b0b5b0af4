"""Misconfiguration fails loudly: what retrying cannot fix stops `cerebro consume` with exit code
2 and a message naming what to change, instead of a warning and a retry forever; transient
trouble is still retried.

The sorting is checked against kafka-python's own error classes; the refusals end to end against
a real broker and real `cerebro consume` processes: a group another application uses (the broker
answers INCONSISTENT_GROUP_PROTOCOL, tansu as Apache Kafka does), client settings kafka-python
refuses, an instance id already used on this host, and, on a broker enforcing
group.min.session.timeout.ms (Apache Kafka; tansu does not), a 2 s session timeout; and the
start-up topic checks against a real broker."""

import threading
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka import errors as kerr
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

from cerebro.consumer.fatal import Context, refusal
from cerebro.consumer.topics import prepare
from cerebro.settings import ConfigurationError, load_settings
from conftest import wait_for
from kafka_broker import fresh_name

CONTEXT = Context(group="g1", instance="host-0", session=2000, bootstrap="b:9092")

# (an error kafka-python raises, a setting the message must name)
REFUSALS = [
    (kerr.InvalidSessionTimeoutError(), "CEREBRO_KAFKA_SESSION_TIMEOUT_MS=2000"),
    (kerr.FencedInstanceIdError(("g1", "host-0")), "CEREBRO_KAFKA_INSTANCE_ID"),
    (kerr.InconsistentGroupProtocolError(), "CEREBRO_KAFKA_GROUP"),
    (kerr.GroupAuthorizationFailedError("g1"), "CEREBRO_KAFKA_GROUP"),
    (kerr.TopicAuthorizationFailedError({"events"}), "CEREBRO_KAFKA_TOPICS"),
    (kerr.ClusterAuthorizationFailedError(), "CREATE"),
    (kerr.SaslAuthenticationFailedError("bad password"), "credentials"),
    (kerr.UnsupportedSaslMechanismError(), "credentials"),
    (kerr.InvalidGroupIdError(), "CEREBRO_KAFKA_GROUP"),
    (kerr.GroupMaxSizeReachedError(), "group.max.size"),
    (kerr.InvalidTopicError("bad topic"), "CEREBRO_KAFKA_TOPICS"),
    (kerr.InvalidReplicationFactorError(), ".dlq"),
    (kerr.PolicyViolationError(), ".dlq"),
    (kerr.UnsupportedVersionError(), "CEREBRO_KAFKA_API_VERSION"),
    (kerr.KafkaConfigurationError("Heartbeat interval must be lower than the session timeout"),
     "CEREBRO_KAFKA_HEARTBEAT_MS"),
]

# Transient: a broker away, a coordinator moving, a rebalance, a topic being created.
RETRIED = [kerr.KafkaConnectionError(), kerr.NodeNotReadyError(1), kerr.KafkaTimeoutError(),
           kerr.RequestTimedOutError(), kerr.CoordinatorNotAvailableError(),
           kerr.NotCoordinatorError(), kerr.CoordinatorLoadInProgressError(),
           kerr.RebalanceInProgressError(), kerr.UnknownMemberIdError(),
           kerr.IllegalGenerationError(), kerr.MemberIdRequiredError(), kerr.CommitFailedError(),
           kerr.LeaderNotAvailableError(), kerr.UnknownTopicOrPartitionError(),
           kerr.NotLeaderForPartitionError(), kerr.BrokerNotAvailableError(),
           kerr.UnknownError(), RuntimeError("not Kafka's"), OSError("socket")]


@pytest.mark.parametrize(("error", "names"), REFUSALS, ids=lambda v: type(v).__name__)
def test_refusals_are_configuration_errors_naming_what_to_change(error, names):
    """Each refusal no retry fixes gives a ConfigurationError naming the error and the fix."""
    found = refusal(error, CONTEXT, "the Kafka consumer of group g1")
    assert isinstance(found, ConfigurationError)
    assert type(error).__name__ in str(found) and names in str(found), str(found)
    assert str(found).startswith("the Kafka consumer of group g1 failed: ")
    assert "No retry can fix this" in str(found)


@pytest.mark.parametrize("error", RETRIED, ids=lambda v: type(v).__name__)
def test_transient_trouble_is_retried(error):
    """A broker away, a rebalance or a coordinator moving is not a configuration error."""
    assert refusal(error, CONTEXT, "polling") is None


class OtherApplication(RoundRobinPartitionAssignor):
    """The partition assignor of another application sharing the group name."""

    name = "other-application"


def _other_member(broker, group, topic):
    """A live member of ``group``, assigning partitions its own way; returns (consumer, stop)."""
    member = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                           session_timeout_ms=6000, heartbeat_interval_ms=1000,
                           partition_assignment_strategy=[OtherApplication])
    stop = threading.Event()
    deadline = time.monotonic() + 30
    while not member.assignment():  # poll back to back: the join completes inside poll()
        assert time.monotonic() < deadline, "the other application's member did not join"
        member.poll(timeout_ms=200)

    def keep_polling():
        """Stay in the group while the test runs."""
        while not stop.is_set():
            member.poll(timeout_ms=200)

    threading.Thread(target=keep_polling, daemon=True).start()
    return member, stop


def _exits_2(consumer, timeout=40):
    """Wait for the consumer to exit; assert code 2 and return its output."""
    code = consumer.proc.wait(timeout)
    output = consumer.log()
    assert code == 2, output[-3000:]
    return output


def test_group_of_another_application_stops_the_consumer(broker, receiver, consumers, topic):
    """The broker refuses the join (INCONSISTENT_GROUP_PROTOCOL): exit 2, naming the setting."""
    broker.create_topics(topic, partitions=2)
    member, stop = _other_member(broker, consumers.group, topic)
    try:
        consumer = consumers(receiver().url)
        output = _exits_2(consumer)
    finally:
        stop.set()
        member.close(autocommit=False)
    assert f"cerebro consume: the Kafka consumer of group {consumers.group} failed" in output
    assert "InconsistentGroupProtocolError" in output and "CEREBRO_KAFKA_GROUP" in output
    assert "retrying in" not in output


def test_settings_kafka_python_refuses_stop_the_consumer(broker, receiver, consumers, topic):
    """A heartbeat not below the session timeout: exit 2 at once, not 'no broker reachable'."""
    consumer = consumers(receiver().url, CEREBRO_KAFKA_HEARTBEAT_MS="7000")
    output = _exits_2(consumer, timeout=30)
    assert "KafkaConfigurationError" in output and "CEREBRO_KAFKA_HEARTBEAT_MS" in output
    assert "no broker reachable" not in output


def test_an_instance_id_used_twice_on_a_host_stops_the_second(broker, receiver, consumers,
                                                              topic):
    """Two processes given the same literal group instance id: the second stops at once, before
    the broker fences either (the first keeps consuming)."""
    broker.create_topics(topic, partitions=2)
    main_app = receiver()
    first = consumers(main_app.url, CEREBRO_KAFKA_INSTANCE_ID="twin")
    wait_for(lambda: "static member twin" in first.log(), 30, message="the first to claim twin")
    second = consumers(main_app.url, CEREBRO_KAFKA_INSTANCE_ID="twin")
    output = _exits_2(second, timeout=30)
    assert "CEREBRO_KAFKA_INSTANCE_ID=twin is in use by another consumer" in output
    assert first.alive() and first.terminate() == 0


def _refuses_two_second_sessions(broker, topic):
    """True when the broker refuses a consumer with a 2 s session timeout (Apache Kafka, whose
    group.min.session.timeout.ms is 6 s, does; tansu does not)."""
    probe = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=fresh_name("probe"),
                          session_timeout_ms=2000, heartbeat_interval_ms=500)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not probe.assignment():
            probe.poll(timeout_ms=200)
        return False
    except kerr.InvalidSessionTimeoutError:
        return True
    finally:
        probe.close(autocommit=False)


def test_a_session_timeout_the_broker_refuses_stops_the_consumer(broker, receiver, consumers,
                                                                 topic):
    """A broker refusing a 2 s session timeout (Apache Kafka: group.min.session.timeout.ms is
    6 s) stops the consumer: exit 2, naming CEREBRO_KAFKA_SESSION_TIMEOUT_MS. Skipped on a
    broker that accepts it (tansu)."""
    broker.create_topics(topic, partitions=2)
    if not _refuses_two_second_sessions(broker, topic):
        pytest.skip("this broker accepts a 2 s session timeout (tansu does, Apache Kafka not)")
    consumer = consumers(receiver().url, CEREBRO_KAFKA_SESSION_TIMEOUT_MS="2000",
                         CEREBRO_KAFKA_HEARTBEAT_MS="500")
    output = _exits_2(consumer)
    assert "InvalidSessionTimeoutError" in output
    assert "CEREBRO_KAFKA_SESSION_TIMEOUT_MS=2000" in output


def test_start_up_topic_checks_against_the_broker(broker):
    """The start-up checks (cerebro.consumer.topics) on a real broker: a consumed topic the broker
    will create is no error, and its dead-letter topic is created; a topic name the broker
    refuses (its INVALID_TOPIC_EXCEPTION) is a ConfigurationError naming the setting."""
    settings = load_settings({"CEREBRO_KAFKA_BOOTSTRAP": broker.bootstrap})
    later = fresh_name("later")
    try:
        assert prepare(settings, [later]) is True
    except ConfigurationError as exc:  # an external broker that does not create topics
        assert "auto.create.topics.enable=false" in str(exc) and later in str(exc)
    else:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        try:
            assert f"{later}.dlq" in admin.list_topics()
        finally:
            admin.close()
    with pytest.raises(ConfigurationError, match="InvalidTopicError.*CEREBRO_KAFKA_TOPICS"):
        prepare(settings, ["not a topic!"])
