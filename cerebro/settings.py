"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Settings: every environment variable Cerebro reads, declared once with type, default, help.
Tagline: One place to turn every knob.

Nothing else in Cerebro reads ``os.environ`` for configuration: a process
builds its :class:`Settings` once (:func:`load_settings`, done by the core's
start-up, :mod:`cerebro.core`) and passes it down explicitly. Each setting is
declared once below: its environment variable, type, default and help.
``cerebro settings`` prints the table with the values in force.

The rules are :mod:`envsettings`' (shared with Sherlock): a value that does
not parse fails loudly (``ValueError`` naming the variable; ``cerebro``
exits 2). Booleans are ``1/true/yes/on`` or ``0/false/no/off``, in any case
and with blanks ignored; any other word is refused, so a typo such as
``CEREBRO_PUBLISH_CONFIRM=enabled`` never silently turns a flag off. An empty
boolean (``CEREBRO_BATCHING=`` in an env file) means its default. Log levels
are ``DEBUG``, ``INFO``, ``WARNING``, ``ERROR`` or ``CRITICAL``, in any case.

Secrets are typed as secrets (the API keys, the callback secret, the Flower
and supervisor passwords, and the broker, Redis and main-app URLs, which may
carry passwords): ``repr``, ``cerebro settings``, ``cerebro up``/``status``,
logs and Sherlock records never show them; code that needs one calls
``.get_secret_value()`` where it hands it over.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PositiveInt

from envsettings import (Csv, EnvSettings, Flag, SecretCsv, SecretStr, SecretURL, Seconds, choice,
                         parse_flag, setting)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_log_level(value: object) -> str:
    """Read a logging level name (any case) and return it upper-case, or raise ``ValueError``."""
    level = str(value).strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return level


def parse_tristate(value: object) -> str:
    """``auto``, or a boolean as ``true``/``false`` (the words supervisord expects)."""
    if str(value).strip().lower() == "auto":
        return "auto"
    try:
        return "true" if parse_flag(value) else "false"
    except ValueError:
        raise ValueError("expected auto, true or false") from None


LogLevel = Annotated[str, BeforeValidator(parse_log_level)]
QueueType = Annotated[str, choice("quorum", "classic")]
EventLoop = Annotated[str, choice("uvloop", "asyncio")]
Tristate = Annotated[str, BeforeValidator(parse_tristate)]
MIN_API_KEY_LENGTH = 16


def _long_keys(keys: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
    """Refuse API keys shorter than :data:`MIN_API_KEY_LENGTH` (guessable)."""
    short = sum(1 for key in keys if len(key.get_secret_value()) < MIN_API_KEY_LENGTH)
    if short:
        raise ValueError(f"{short} key(s) shorter than {MIN_API_KEY_LENGTH} characters; "
                         "make them long and random, e.g. `openssl rand -hex 24`")
    return keys


ApiKeys = Annotated[SecretCsv, AfterValidator(_long_keys)]


def _node_name(value: object) -> str:
    """A node name: empty (the host name) or letters, digits, ``.``, ``_`` and ``-``, at most
    63 characters (a host name, a pod name), so it is safe in a path and a Redis key."""
    name = str(value).strip()
    if name and not (len(name) <= 63 and name.replace("-", "").replace("_", "").replace(
            ".", "").isalnum() and name.isascii() and name not in (".", "..")):
        raise ValueError("expected letters, digits, '.', '_' and '-' (at most 63), such as "
                         "node-1")
    return name


NodeName = Annotated[str, BeforeValidator(_node_name)]


def _long_key(key: SecretStr) -> SecretStr:
    """Refuse a signing key shorter than :data:`MIN_API_KEY_LENGTH` (empty: unset is allowed)."""
    _long_keys((key,) if key.get_secret_value() else ())
    return key


SigningKey = Annotated[SecretStr, AfterValidator(_long_key)]


class ConfigurationError(ValueError):
    """A setting does not parse, names something that does not exist, or cannot work."""


class Settings(EnvSettings):
    """Cerebro's configuration: one declaration per environment variable."""

    error = ConfigurationError

    data_volume: Path = setting(
        "CEREBRO_DATA_VOLUME", PROJECT_ROOT / "data_volume",
        "Root of the data volume holding every module's models.")
    modules_package: str = setting(
        "CEREBRO_MODULES_PACKAGE", "modules",
        "Python package whose sub-packages are the ML modules.")
    modules: Csv = setting(
        "CEREBRO_MODULES", (), "Comma-separated modules to serve (empty: every discovered module).")
    host: str = setting("CEREBRO_HOST", "127.0.0.1", "Address the REST API binds.")
    port: int = setting("CEREBRO_PORT", 8000, "Port the REST API binds.")
    processes: int = setting("CEREBRO_PROCESSES", 0, "REST API processes (0: one per CPU core).")
    threads: int = setting(
        "CEREBRO_THREADS", 1,
        "Threads per module per API process running model calls off the IOLoop.")
    reuse_port: Flag = setting(
        "CEREBRO_REUSE_PORT", True,
        "Each API process listens on its own SO_REUSEPORT socket, so the kernel spreads "
        "connections evenly (false: one shared socket).")
    cpu_affinity: Tristate = setting(
        "CEREBRO_CPU_AFFINITY", "auto",
        "Pin API process i to CPU i (auto: when there is one process per CPU).")
    event_loop: EventLoop = setting(
        "CEREBRO_EVENT_LOOP", "uvloop",
        "The API processes' event loop: uvloop (libuv; less CPU per request) or asyncio (the "
        "standard library's).")
    max_body_bytes: int = setting(
        "CEREBRO_MAX_BODY_BYTES", 1024 * 1024,
        "Largest accepted request body; larger bodies get 413.")
    api_keys: ApiKeys = setting(
        "CEREBRO_API_KEYS", (),
        f"Comma-separated API keys of at least {MIN_API_KEY_LENGTH} characters; when set "
        "every /v1 call, /openapi.json and /metrics need one.")
    auth_failure_limit: int = setting(
        "CEREBRO_AUTH_FAILURE_LIMIT", 20,
        "Wrong API keys accepted from one client address per minute (per API process); "
        "more answer 429 until the minute is over.")
    idle_timeout: Seconds = setting(
        "CEREBRO_IDLE_TIMEOUT", 75.0,
        "Seconds a connection may wait without a complete request head (an idle keep-alive "
        "connection, or headers sent slowly) before it is closed.")
    body_timeout: Seconds = setting(
        "CEREBRO_BODY_TIMEOUT", 30.0,
        "Seconds a client may take to send a request body before the connection is closed.")
    max_connections: int = setting(
        "CEREBRO_MAX_CONNECTIONS", 1000,
        "Open connections per API process; over it new ones get 503 at once and are closed.")
    reload_interval: Seconds = setting(
        "CEREBRO_RELOAD_INTERVAL", 2.0,
        "Seconds between checks of the data volume for new models and of the "
        "modules package for module folders added or removed.")
    model_signing_key: SigningKey = setting(
        "CEREBRO_MODEL_SIGNING_KEY", SecretStr(""),
        "Key that signs every published model version (HMAC-SHA256 over its metadata) and "
        "that serving processes check before loading one: a version not signed with it is "
        "refused. Keep it with the builds and services, never on the data volume. Unset: "
        "versions are neither signed nor checked (a warning says so).")
    keep_versions: int = setting(
        "CEREBRO_KEEP_VERSIONS", 5,
        "Model versions kept per module when a build publishes (the current one, the "
        "candidate and pinned versions are kept besides).")

    # Prediction monitoring (cerebro drift, GET /v1/modules/<m>/drift, the digest's drift part)
    drift_sample: float = setting(
        "CEREBRO_DRIFT_SAMPLE", 0.1,
        "Share of served calls profiled for drift, per process and module (0: monitoring off; "
        "a module's Monitoring(sample=...) overrides it).")
    drift_refresh: Seconds = setting(
        "CEREBRO_DRIFT_REFRESH", 30.0,
        "Seconds between two computations of the drift gauges by each API process.")
    prediction_log_dir: str = setting(
        "CEREBRO_PREDICTION_LOG_DIR", "",
        "Root of the opt-in prediction logs (<root>/<module>/predictions/); empty: the data "
        "volume.")
    prediction_log_days: int = setting(
        "CEREBRO_PREDICTION_LOG_DAYS", 14, "Days of prediction log kept per module.")

    # Model lifecycle (cerebro versions/rollback/promote/shadow/canary)
    shadow_queue: int = setting(
        "CEREBRO_SHADOW_QUEUE", 256,
        "Groups of live calls waiting for the shadow candidate per process; when full, shadow "
        "calls are dropped and counted (never the live ones).")
    shadow_gather: Seconds = setting(
        "CEREBRO_SHADOW_GATHER", 0.1,
        "Seconds the shadow thread gathers live calls before running them on the candidate "
        "together (fewer, larger candidate calls; the live path meets short bursts).")
    shadow_budget: float = setting(
        "CEREBRO_SHADOW_BUDGET", 0.1,
        "Share of one core's time a process may spend running shadow calls (beyond it they "
        "are dropped and counted): what a shadow may take from the live path at most.")
    canary_window: Seconds = setting(
        "CEREBRO_CANARY_WINDOW", 60.0,
        "Seconds of calls over which a canary's error rate and p99 are judged.")
    canary_min_calls: int = setting(
        "CEREBRO_CANARY_MIN_CALLS", 50,
        "Calls the candidate must have served in the window before it is judged.")
    canary_max_error_delta: float = setting(
        "CEREBRO_CANARY_MAX_ERROR_DELTA", 0.05,
        "A canary is rolled back when its server-error rate exceeds the current version's by "
        "more than this (0.05: five percentage points).")
    canary_max_p99_ratio: float = setting(
        "CEREBRO_CANARY_MAX_P99_RATIO", 2.0,
        "... or when its p99 latency exceeds the current version's times this ratio plus "
        "CEREBRO_CANARY_P99_SLACK.")
    canary_p99_slack: Seconds = setting(
        "CEREBRO_CANARY_P99_SLACK", 0.005,
        "Seconds added to the allowed canary p99 (so sub-millisecond noise never trips it).")
    log_level: LogLevel = setting(
        "CEREBRO_LOG_LEVEL", "INFO",
        "Python logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    trust_proxy_headers: Flag = setting(
        "CEREBRO_TRUST_PROXY_HEADERS", False,
        "Take the client address from X-Real-Ip/X-Forwarded-For (behind a proxy only; costs an "
        "address check per request).")
    access_log: Flag = setting(
        "CEREBRO_ACCESS_LOG", False, "Log every HTTP request (errors are always logged).")
    batching: Flag = setting(
        "CEREBRO_BATCHING", True,
        "Gather concurrent calls to batch functions (false: one call per request).")

    # The outcome policy (cerebro.errors): what queued work does with each kind of error,
    # the same on every transport (Celery tasks, Kafka events, pub-sub requests)
    retries: int = setting(
        "CEREBRO_RETRIES", 3,
        "Retries, with exponential backoff, of queued work failing with a retryable error (a "
        "bug, a dependency unavailable) before it is final (failed result, dead letter).",
        aliases=("CEREBRO_CONSUMER_RETRIES", "CEREBRO_PUBSUB_RETRIES"))
    retry_backoff: Seconds = setting(
        "CEREBRO_RETRY_BACKOFF", 0.5,
        "First retry delay in seconds (doubles on every retry, with jitter); also the first "
        "reconnect delay of the consumer.",
        aliases=("CEREBRO_CONSUMER_RETRY_BACKOFF", "CEREBRO_PUBSUB_RETRY_BACKOFF"))
    max_backoff: Seconds = setting(
        "CEREBRO_MAX_BACKOFF", 30.0,
        "Longest delay in seconds between retries, and between reconnects to a broker.",
        aliases=("CEREBRO_CONSUMER_MAX_BACKOFF", "CEREBRO_PUBSUB_MAX_BACKOFF"))
    model_wait: Seconds = setting(
        "CEREBRO_MODEL_WAIT", 300.0,
        "Seconds queued work waits for a model that is not loaded yet (retried every "
        "CEREBRO_MODEL_RETRY_DELAY) before it fails with model_not_ready.")
    model_retry_delay: Seconds = setting(
        "CEREBRO_MODEL_RETRY_DELAY", 5.0,
        "Seconds between two attempts of queued work waiting for its model.")

    # Kafka consumer (cerebro consume)
    kafka_bootstrap: Csv = setting(
        "CEREBRO_KAFKA_BOOTSTRAP", ("127.0.0.1:9092",),
        "Comma-separated Kafka bootstrap servers (host:port).")
    kafka_group: str = setting(
        "CEREBRO_KAFKA_GROUP", "cerebro",
        "Consumer group of `cerebro consume`; processes in one group share partitions.")
    kafka_topics: Csv = setting(
        "CEREBRO_KAFKA_TOPICS", (),
        "Comma-separated topics to consume (empty: every topic an expose function declares).")
    kafka_api_version: str = setting(
        "CEREBRO_KAFKA_API_VERSION", "",
        "Kafka broker version such as 3.7 (empty: negotiated with the broker).")
    kafka_session_timeout_ms: int = setting(
        "CEREBRO_KAFKA_SESSION_TIMEOUT_MS", 10000, "Consumer group session timeout (ms).")
    kafka_heartbeat_ms: int = setting(
        "CEREBRO_KAFKA_HEARTBEAT_MS", 3000,
        "Consumer group heartbeat interval (ms); about a third of the session timeout.")
    kafka_max_poll_records: int = setting(
        "CEREBRO_KAFKA_MAX_POLL_RECORDS", 500, "Largest batch of records one poll returns.")
    kafka_max_poll_interval_ms: int = setting(
        "CEREBRO_KAFKA_MAX_POLL_INTERVAL_MS", 300000,
        "Longest time between polls before the group evicts the consumer (ms).")
    kafka_instance_id: str = setting(
        "CEREBRO_KAFKA_INSTANCE_ID", "auto",
        "Static group membership (group.instance.id): a consumer restarted within the session "
        "timeout gets its partitions back without a rebalance. auto: <host>-<n>, n the lowest "
        "number no other consumer of the group on this host holds; off: dynamic membership; "
        "else the id itself ({host} and {n} are filled in; unique per process).")
    consumer_concurrency: int = setting(
        "CEREBRO_CONSUMER_CONCURRENCY", 16,
        "Threads running handlers (batches, or single events) concurrently.")
    consumer_http_connections: int = setting(
        "CEREBRO_CONSUMER_HTTP_CONNECTIONS", 8,
        "Kept-alive connections a process (consumer, worker) opens to the main app.")
    consumer_http_pipeline: int = setting(
        "CEREBRO_CONSUMER_HTTP_PIPELINE", 16,
        "Main-app calls pipelined per connection (1: one at a time).")
    consumer_callback_path: str = setting(
        "CEREBRO_CONSUMER_CALLBACK_PATH", "/cerebro/events/{module}/{function}",
        "Main-app path the consumer posts each outcome to ({module}, {function}, {topic}).")
    consumer_event_id_field: str = setting(
        "CEREBRO_CONSUMER_EVENT_ID_FIELD", "event_id",
        "Event field used as idempotency key (else topic-partition-offset).")

    # Async path: RabbitMQ + Celery workers, callbacks to the main app, Flower
    broker_url: SecretURL = setting(
        "CEREBRO_BROKER_URL", SecretURL("amqp://guest:guest@127.0.0.1:5672//"),
        "RabbitMQ URL the API publishes async tasks to and workers consume from.")
    result_backend: SecretURL = setting(
        "CEREBRO_RESULT_BACKEND", SecretURL("redis://127.0.0.1:6379/0"),
        "Celery result backend holding task states for GET /v1/tasks/<id>.")
    result_expires: int = setting(
        "CEREBRO_RESULT_EXPIRES", 86400, "Seconds a task's state and result are kept for polling.")
    queue_prefix: str = setting(
        "CEREBRO_QUEUE_PREFIX", "cerebro",
        "Prefix of the per-module task queues (<prefix>.<module>).")
    queue_type: QueueType = setting(
        "CEREBRO_QUEUE_TYPE", "quorum",
        "Type of the task queues: quorum, or classic (the type before; existing queues must be "
        "drained and deleted to switch, see docs/async.md).")
    broker_timeout: Seconds = setting(
        "CEREBRO_BROKER_TIMEOUT", 1.0,
        "Seconds the API waits to connect/publish to RabbitMQ before answering 503.")
    publish_confirm: Flag = setting(
        "CEREBRO_PUBLISH_CONFIRM", True,
        "Wait for RabbitMQ's publisher confirm before answering 202.")
    worker_concurrency: int = setting(
        "CEREBRO_WORKER_CONCURRENCY", 0, "Celery worker processes (0: one per CPU core).")
    worker_prefetch: PositiveInt = setting(
        "CEREBRO_WORKER_PREFETCH", 1,
        "Tasks each worker process holds from RabbitMQ at once: 1, one at a time (a long task "
        "never holds another back while an idle worker could run it); 2 lets the next task "
        "arrive while one runs (measured: 1.3x the tasks/s of one process for short tasks).")
    beat_lock_timeout: Seconds = setting(
        "CEREBRO_BEAT_LOCK_TIMEOUT", 20.0,
        "Seconds the active `cerebro beat` keeps its Redis lock without renewing it; when it "
        "dies a standby beat takes over within this plus a quarter of it (at least 2).")
    main_app_url: SecretURL = setting(
        "CEREBRO_MAIN_APP_URL", SecretURL("http://127.0.0.1:8080"),
        "Base URL of the main application that receives callbacks.")
    callback_path: str = setting(
        "CEREBRO_CALLBACK_PATH", "/cerebro/callbacks/{module}/{function}",
        "Main-app path of async task callbacks ({module}, {function}).")
    callback_paths: Csv = setting(
        "CEREBRO_CALLBACK_PATHS", (), "Per-function callback paths: module.function=/path,...")
    callback_allowed_hosts: Csv = setting(
        "CEREBRO_CALLBACK_ALLOWED_HOSTS", (),
        "Where a request's callback_url may point: host, host:port or *.domain, each with an "
        "optional path prefix (main.example:8443/cerebro/callbacks/). The main app's host and "
        "port are allowed with any path unless an entry names them.")
    callback_secret: SecretStr = setting(
        "CEREBRO_CALLBACK_SECRET", SecretStr(""),
        "Shared secret signing every main-app call (HMAC-SHA256, scheme v2) and sealing the "
        "workers' callback retries; required by workers and the consumer.")
    callback_timeout: Seconds = setting(
        "CEREBRO_CALLBACK_TIMEOUT", 5.0, "Seconds one callback attempt may take.")
    callback_retry_window: Seconds = setting(
        "CEREBRO_CALLBACK_RETRY_WINDOW", 3600.0,
        "Seconds a callback keeps being retried before it is dead-lettered.")
    callback_backoff: Seconds = setting(
        "CEREBRO_CALLBACK_BACKOFF", 1.0,
        "First callback retry delay in seconds (doubles, with jitter).")
    callback_backoff_max: Seconds = setting(
        "CEREBRO_CALLBACK_BACKOFF_MAX", 300.0,
        "Longest delay between callback retries, in seconds.")
    callback_deadletter_dir: str = setting(
        "CEREBRO_CALLBACK_DEADLETTER_DIR", "",
        "Where failed callbacks are kept (empty: <data volume>/.callbacks/failed).")
    flower_user: str = setting("CEREBRO_FLOWER_USER", "cerebro", "Flower basic-auth user.")
    flower_password: SecretStr = setting(
        "CEREBRO_FLOWER_PASSWORD", SecretStr(""),
        "Flower basic-auth password; `cerebro flower` refuses to start without one.")
    flower_address: str = setting("CEREBRO_FLOWER_ADDRESS", "127.0.0.1", "Address Flower binds.")
    flower_port: int = setting("CEREBRO_FLOWER_PORT", 5555, "Port Flower binds.")

    # Pub-sub over RabbitMQ (cerebro subscribe); the broker is CEREBRO_BROKER_URL
    pubsub_requests_exchange: str = setting(
        "CEREBRO_PUBSUB_REQUESTS_EXCHANGE", "cerebro.requests",
        "Topic exchange of requests (key <module>.<function>); module queues are "
        "<exchange>.<module>.")
    pubsub_results_exchange: str = setting(
        "CEREBRO_PUBSUB_RESULTS_EXCHANGE", "cerebro.results",
        "Topic exchange of results (key <module>.<function>.<succeeded|failed>).")
    pubsub_dlx: str = setting(
        "CEREBRO_PUBSUB_DLX", "cerebro.dlx",
        "Dead-letter exchange, and the queue of the same name keeping dead letters.")
    pubsub_prefetch: int = setting(
        "CEREBRO_PUBSUB_PREFETCH", 128,
        "Unacknowledged requests per module queue a subscriber holds at once.")
    pubsub_reconnect_backoff: Seconds = setting(
        "CEREBRO_PUBSUB_RECONNECT_BACKOFF", 0.5,
        "First reconnect delay in seconds after losing RabbitMQ (doubles).")
    pubsub_heartbeat: int = setting(
        "CEREBRO_PUBSUB_HEARTBEAT", 30,
        "AMQP heartbeat in seconds: how fast a silent broker is noticed.")

    # Operations: supervisord (supervisord.conf), cerebro up/down/status/beat
    state_dir: Path = setting(
        "CEREBRO_STATE_DIR", PROJECT_ROOT / "var",
        "Runtime state: supervisord pid/socket, beat schedule, private RabbitMQ node, generated "
        "dev secrets.")
    shared_dir: str = setting(
        "CEREBRO_SHARED_DIR", "",
        "Runtime records every node must see, on a volume shared by the nodes (canary stops, "
        "shadow tallies, drift counts); empty: CEREBRO_STATE_DIR (one node).")
    node: NodeName = setting(
        "CEREBRO_NODE", "",
        "This node's name in `cerebro status --all` (letters, digits, . _ -; empty: the host "
        "name).")
    node_heartbeat: Seconds = setting(
        "CEREBRO_NODE_HEARTBEAT", 5.0,
        "Seconds between the heartbeats each process writes to Redis for `cerebro status "
        "--all`; a process silent for 3 of them is shown as lost (0: no heartbeats).")
    log_dir: Path = setting(
        "CEREBRO_LOG_DIR", PROJECT_ROOT / "logs",
        "Where supervisord and every program it runs write their logs.")
    supervisor_port: int = setting(
        "CEREBRO_SUPERVISOR_PORT", 9001,
        "Port of supervisord's web UI / XML-RPC (always bound to 127.0.0.1).")
    supervisor_user: str = setting(
        "CEREBRO_SUPERVISOR_USER", "cerebro", "User name of supervisord's web UI.")
    supervisor_password: SecretStr = setting(
        "CEREBRO_SUPERVISOR_PASSWORD", SecretStr(""),
        "Password of supervisord's web UI (cerebro up generates one when empty).")
    epmd_port: int = setting(
        "CEREBRO_EPMD_PORT", 4369, "Erlang port mapper port of the RabbitMQ node supervisord runs.")
    rabbitmq_management_port: int = setting(
        "CEREBRO_RABBITMQ_MANAGEMENT_PORT", 15672,
        "RabbitMQ management UI port of the node supervisord runs.")
    run_rabbitmq: Tristate = setting(
        "CEREBRO_RUN_RABBITMQ", "auto",
        "Run RabbitMQ under supervisord (auto: only when nothing answers at CEREBRO_BROKER_URL).")
    run_redis: Tristate = setting(
        "CEREBRO_RUN_REDIS", "auto",
        "Run Redis under supervisord (auto: only when nothing answers at "
        "CEREBRO_RESULT_BACKEND).")
    run_kafka: Tristate = setting(
        "CEREBRO_RUN_KAFKA", "auto",
        "Run the development Kafka broker (tansu) under supervisord (auto: when nothing answers "
        "at CEREBRO_KAFKA_BOOTSTRAP and it is local).")
    programs: Csv = setting(
        "CEREBRO_PROGRAMS", (),
        "Cerebro programs supervisord starts (empty: every one that runs by default; "
        "`cerebro programs` lists them).")
    ready_timeout: Seconds = setting(
        "CEREBRO_READY_TIMEOUT", 180.0,
        "Seconds `cerebro up` waits for every program to be really ready.")
    run_simulator: Tristate = setting(
        "CEREBRO_RUN_SIMULATOR", "auto",
        "Run the main-app simulator (`cerebro simulate`, development only) under supervisord "
        "at CEREBRO_MAIN_APP_URL (auto: when that is http on this machine and nothing answers "
        "there; the Docker image sets false).")
    simulator_keep: int = setting(
        "CEREBRO_SIMULATOR_KEEP", 100,
        "Main-app calls (bodies included) the simulator keeps for GET /simulator/received.")

    @property
    def node_name(self) -> str:
        """This node's name: ``CEREBRO_NODE``, else the host name."""
        return self.node or socket.gethostname()

    @property
    def shared_state_dir(self) -> Path:
        """Where the records every node must see are kept: ``CEREBRO_SHARED_DIR``, else
        ``CEREBRO_STATE_DIR``."""
        return Path(self.shared_dir) if self.shared_dir else self.state_dir


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """The :class:`Settings` in ``environ`` (default: ``os.environ``).

    A value that does not parse raises ``ValueError`` naming the variable, so a
    typo in a deployment fails loudly at start-up rather than silently later.
    """
    return Settings.load(environ)
