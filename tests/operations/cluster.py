"""Several whole Cerebro nodes on this machine, for the multi-node tests.

Each node is what one machine of a deployment runs: its own supervisord (`cerebro up`) with
its own state directory, logs, ports and node name, running the API, the worker, beat, the
Kafka consumer and the pub-sub subscriber. The nodes share what a deployment shares: one
RabbitMQ (a private node), one Redis (private), one Kafka-compatible broker (tansu, or the
Apache Kafka named by CEREBRO_TEST_KAFKA_BOOTSTRAP), one data volume, one Sherlock directory
(each node writes its own sub-directory, SHERLOCK_NODE) and one shared runtime directory
(CEREBRO_SHARED_DIR). The main app is Cerebro's simulator, run outside the nodes (it counts
every callback and Kafka outcome by idempotency key, duplicates apart), and the amenities
service of listing_enrichment is the tests' own, answering after a delay so that tasks are
in flight when a node dies.

The consumer group's settings are valid on Apache Kafka (a 6 s session timeout, its minimum):
nothing here depends on tansu.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

from kafka_broker import test_broker
from procs import Inbox, Proc, Senders, wait_for
from rabbit import RabbitNode, RedisNode
from stack import alive, descendants, port_open
from support import REPO, AmenitiesServer, cerebro_env, free_port, http

SECRET = "multinode-callback-secret"
CEREBRO = [sys.executable, "-m", "cerebro"]
TOPIC = "listings"            # vigilante.screen's topic
PARTITIONS = 6                # split across the nodes' consumers
PROGRAMS = "api,worker,beat,consumer,subscriber"   # Flower only watches: left out to save CPU
DIGEST_EVERY = 4              # seconds between Sherlock digests (SHERLOCK_DIGEST_EVERY)


class Node:
    """One node: its own supervisord, state directory, logs, ports and name."""

    def __init__(self, cluster, index):
        self.cluster = cluster
        self.name = f"node-{index}"
        self.dir = cluster.tmp / self.name
        self.state = self.dir / "state"
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}"
        self.env = cerebro_env(**cluster.shared_env(), CEREBRO_NODE=self.name,
                               SHERLOCK_NODE=self.name, CEREBRO_STATE_DIR=self.state,
                               CEREBRO_LOG_DIR=self.dir / "logs", CEREBRO_PORT=self.port,
                               CEREBRO_SUPERVISOR_PORT=free_port(),
                               CEREBRO_FLOWER_PORT=free_port())
        for var in ("CEREBRO_FLOWER_PASSWORD", "CEREBRO_SUPERVISOR_PASSWORD", "CEREBRO_MODULES"):
            self.env.pop(var, None)
        self.killed = False

    def cerebro(self, *args, timeout=240):
        """Run a `cerebro` command with this node's environment."""
        return subprocess.run([*CEREBRO, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, cwd=self.dir)

    def start_up(self, timeout):
        """Start `cerebro up --no-build` (returns the running command)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen([*CEREBRO, "up", "--no-build", "--timeout", str(timeout)],
                                env=self.env, cwd=self.dir, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def supervisord_pid(self):
        """supervisord's pid, or None."""
        try:
            return int((self.state / "supervisord.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def kill(self):
        """The whole node dies at once: SIGKILL to supervisord and every process under it
        (nothing is stopped cleanly, nothing deregisters). Returns how many processes."""
        pid = self.supervisord_pid()
        victims = ({pid} | descendants(pid)) if pid else set()
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_for(lambda: not any(alive(v) for v in victims), 20, what=f"{self.name} dead")
        self.killed = True
        return len(victims)

    def teardown(self):
        """Stop whatever runs (`cerebro down`, then SIGKILL)."""
        pid = self.supervisord_pid()
        if pid and alive(pid):
            below = descendants(pid)
            self.cerebro("down", timeout=120)
            for leftover in [p for p in below | {pid} if alive(p)]:
                os.kill(leftover, signal.SIGKILL)


class Cluster:
    """The shared brokers, volume and main app, and ``size`` nodes using them."""

    def __init__(self, tmp, built_volume, size):
        self.tmp = tmp
        self.volume = tmp / "volume"
        shutil.copytree(built_volume, self.volume)
        self.sherlock = tmp / "sherlock"
        self.shared = tmp / "shared"
        self.prefix = f"mn-{uuid.uuid4().hex[:6]}"
        self.group = f"mn-{uuid.uuid4().hex[:6]}"
        self.rabbit = RabbitNode(tmp / "rabbit")
        self.redis = None
        self.kafka = None
        self.simulator = None
        self.amenities = AmenitiesServer(delay=0.8)
        self.inbox = Inbox(free_port())
        self.main_port = free_port()
        self.main_url = f"http://127.0.0.1:{self.main_port}"
        self.size = size
        self.nodes = []

    def shared_env(self):
        """What every node has in common."""
        return dict(
            PYTHONPATH=str(REPO), CEREBRO_DATA_VOLUME=self.volume, SHERLOCK_DIR=self.sherlock,
            CEREBRO_SHARED_DIR=self.shared, CEREBRO_PROCESSES=1, CEREBRO_WORKER_CONCURRENCY=1,
            CEREBRO_BROKER_URL=self.rabbit.url, CEREBRO_RESULT_BACKEND=self.redis.url,
            CEREBRO_QUEUE_PREFIX=self.prefix, CEREBRO_KAFKA_BOOTSTRAP=self.kafka.bootstrap,
            CEREBRO_KAFKA_GROUP=self.group, CEREBRO_KAFKA_SESSION_TIMEOUT_MS=6000,
            CEREBRO_KAFKA_HEARTBEAT_MS=1000, CEREBRO_KAFKA_INSTANCE_ID="off",
            CEREBRO_CALLBACK_SECRET=SECRET, CEREBRO_MAIN_APP_URL=self.main_url,
            CEREBRO_CALLBACK_BACKOFF=0.2, CEREBRO_RELOAD_INTERVAL=0.5,
            CEREBRO_NODE_HEARTBEAT=1, CEREBRO_PROGRAMS=PROGRAMS,
            CEREBRO_RUN_RABBITMQ="false", CEREBRO_RUN_REDIS="false", CEREBRO_RUN_KAFKA="false",
            CEREBRO_RUN_SIMULATOR="false", LISTING_ENRICHMENT_AMENITIES_URL=self.amenities.url,
            CEREBRO_BEAT_LOCK_TIMEOUT=10, SHERLOCK_DIGEST_EVERY=DIGEST_EVERY,
            SHERLOCK_PROJECT="Cerebro", SHERLOCK_RECIPIENTS="oncall@example.com",
            SHERLOCK_SENDER="sherlock@example.com", SHERLOCK_SMTP_HOST="127.0.0.1",
            SHERLOCK_SMTP_PORT=self.inbox.port, SHERLOCK_SMTP_TIMEOUT=5, SHERLOCK_ALERTS="")

    # -- bring-up ---------------------------------------------------------------------

    def start(self, up_timeout=180):
        """Start the shared parts, then every node at once; fails when one is not ready."""
        self.rabbit.start()
        self.redis = RedisNode(self.tmp)
        self.kafka = test_broker(self.tmp / "kafka.log")  # started already
        self.kafka.create_topics(TOPIC, partitions=PARTITIONS)
        self.inbox.start()
        self.simulator = Proc(["cerebro", "simulate"], dict(
            PYTHONPATH=str(REPO), CEREBRO_MAIN_APP_URL=self.main_url,
            CEREBRO_CALLBACK_SECRET=SECRET, CEREBRO_SIMULATOR_KEEP=10),
            self.tmp / "simulator.log").start()
        wait_for(lambda: port_open(self.main_port), 30, what="the main-app simulator")
        self.nodes = [Node(self, i) for i in range(1, self.size + 1)]
        started = time.monotonic()
        ups = [node.start_up(up_timeout) for node in self.nodes]
        outputs = [up.communicate(timeout=up_timeout + 60)[0] for up in ups]
        self.up_seconds = time.monotonic() - started
        for node, up, out in zip(self.nodes, ups, outputs):
            assert up.returncode == 0, f"cerebro up of {node.name} failed:\n{out}"
        return self

    def teardown(self):
        """Stop every node, the main app and the shared parts."""
        for node in self.nodes:
            node.teardown()
        if self.simulator is not None:
            self.simulator.stop()
        self.amenities.stop()
        self.inbox.stop()
        if self.kafka is not None:
            self.kafka.close()
        if self.redis is not None:
            self.redis.close()
        self.rabbit.close()

    # -- looking at it ----------------------------------------------------------------

    def alive_nodes(self):
        """The nodes not killed."""
        return [node for node in self.nodes if not node.killed]

    def status_all(self, node=None):
        """`cerebro status --all --json` asked on ``node`` (default: the first alive)."""
        import json
        node = node or self.alive_nodes()[0]
        result = node.cerebro("status", "--all", "--json", timeout=60)
        return result.returncode, json.loads(result.stdout)

    def received(self, keys=False):
        """What the simulator received (``GET /simulator/received``)."""
        return http("GET", self.main_url + "/simulator/received" + ("?keys=1" if keys else ""),
                    timeout=30)[2]

    def key_counts(self):
        """``{idempotency key: times received}`` over every main-app path."""
        counts = {}
        for keys in self.received(keys=True)["keys"].values():
            for key, count in keys.items():
                counts[key] = counts.get(key, 0) + count
        return counts

    def examples(self):
        """``{(module, function): example payload}`` from the first alive node's API."""
        modules = http("GET", self.alive_nodes()[0].api + "/v1/modules")[2]["modules"]
        return {(m["name"], f["name"]): f["example"] for m in modules for f in m["functions"]}


class Traffic(Senders):
    """Kafka events and async calls sent at a steady pace, each counted when accepted."""

    def __init__(self, cluster, apis, event_every=0.02, task_every=0.1):
        super().__init__(self._events, self._tasks)
        self.cluster = cluster
        self.apis = apis
        self.event_every = event_every
        self.task_every = task_every
        self.produced = set()       # event ids the broker acknowledged
        self.accepted = set()       # task ids an API answered 202
        self.refused = 0
        examples = cluster.examples()
        self.event = examples[("vigilante", "screen")]
        self.listing = examples[("listing_enrichment", "enrich")]

    def _events(self):
        """vigilante events on the topic, each acknowledged by the broker (acks=all)."""
        import json
        producer = self.cluster.kafka.producer(acks="all")
        try:
            while not self.stop.wait(self.event_every):
                event_id = f"ev-{uuid.uuid4().hex[:12]}"
                producer.send(TOPIC, json.dumps(dict(self.event, event_id=event_id)).encode(),
                              key=event_id.encode()).get(timeout=10)
                self.produced.add(event_id)
        finally:
            producer.close()

    def _tasks(self):
        """listing_enrichment.enrich calls, round robin over the APIs given."""
        turn = 0
        while not self.stop.wait(self.task_every):
            api = self.apis[turn % len(self.apis)]
            turn += 1
            listing = dict(self.listing, listing_id=f"L-{uuid.uuid4().hex[:12]}")
            try:
                status, _, body = http("POST", api + "/v1/listing_enrichment/enrich", listing,
                                       timeout=5)
            except OSError:
                status, body = 0, None
            if status == 202:
                self.accepted.add(body["task_id"])
            else:
                self.refused += 1
