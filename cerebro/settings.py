"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Settings: every environment variable Cerebro reads, with its default, in one place.
Tagline: One place to turn every knob.

Nothing else in Cerebro reads ``os.environ`` for configuration: services build a
:class:`Settings` once with :func:`load_settings` and pass it down explicitly.
``cerebro settings`` prints the table below with the values in force.

A value that does not parse fails loudly (``ValueError`` naming the variable;
``cerebro`` exits 2). Booleans are ``1/true/yes/on`` or ``0/false/no/off``, in any
case and with blanks ignored; any other word is refused, so a typo such as
``CEREBRO_PUBLISH_CONFIRM=enabled`` never silently turns a flag off. An empty
boolean (``CEREBRO_BATCHING=`` in an env file) means the same as an unset one:
its default. Log levels are ``DEBUG``, ``INFO``, ``WARNING``, ``ERROR`` or
``CRITICAL``, in any case.
"""

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _split(value):
    """Split a comma-separated string into a tuple of stripped, non-empty items."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _flag(value):
    """Read a boolean: 1/true/yes/on are true, 0/false/no/off false, anything else an error.

    An empty value never reaches here: :func:`load_settings` reads it as the default.
    """
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def parse_log_level(value):
    """Read a logging level name (any case) and return it upper-case, or raise ``ValueError``."""
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return level


def _seconds(value):
    """Read a duration in seconds: a finite number, zero or more (no nan, inf or negatives)."""
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError("expected a finite number of seconds, zero or more")
    return number


def _queue_type(value):
    """Read a RabbitMQ queue type Cerebro can declare: ``quorum`` or ``classic``."""
    text = value.strip().lower()
    if text not in ("quorum", "classic"):
        raise ValueError("expected quorum or classic")
    return text


def _tristate(value):
    """Read ``auto``, or a boolean as ``true``/``false`` (the words supervisord expects)."""
    text = value.strip().lower()
    if text == "auto":
        return "auto"
    if text in _TRUE:
        return "true"
    if text in _FALSE:
        return "false"
    raise ValueError("expected auto, true or false")


# name -> (environment variable, default as text, parser, help)
_SPEC = {
    "data_volume": ("CEREBRO_DATA_VOLUME", str(PROJECT_ROOT / "data_volume"), Path,
                    "Root of the data volume holding every module's models."),
    "modules_package": ("CEREBRO_MODULES_PACKAGE", "modules", str,
                        "Python package whose sub-packages are the ML modules."),
    "modules": ("CEREBRO_MODULES", "", _split,
                "Comma-separated modules to serve (empty: every discovered module)."),
    "host": ("CEREBRO_HOST", "127.0.0.1", str, "Address the REST API binds."),
    "port": ("CEREBRO_PORT", "8000", int, "Port the REST API binds."),
    "processes": ("CEREBRO_PROCESSES", "0", int,
                  "REST API processes (0: one per CPU core)."),
    "threads": ("CEREBRO_THREADS", "1", int,
                "Threads per module per API process running model calls off the IOLoop."),
    "reuse_port": ("CEREBRO_REUSE_PORT", "true", _flag,
                   "Each API process listens on its own SO_REUSEPORT socket, so the kernel "
                   "spreads connections evenly (false: one shared socket)."),
    "cpu_affinity": ("CEREBRO_CPU_AFFINITY", "auto", _tristate,
                     "Pin API process i to CPU i (auto: when there is one process per CPU)."),
    "max_body_bytes": ("CEREBRO_MAX_BODY_BYTES", str(1024 * 1024), int,
                       "Largest accepted request body; larger bodies get 413."),
    "api_keys": ("CEREBRO_API_KEYS", "", _split,
                 "Comma-separated API keys; when set every /v1 call needs one."),
    "reload_interval": ("CEREBRO_RELOAD_INTERVAL", "2.0", _seconds,
                        "Seconds between checks of the data volume for new models."),
    "keep_versions": ("CEREBRO_KEEP_VERSIONS", "5", int,
                      "Model versions kept per module when a build publishes."),
    "log_level": ("CEREBRO_LOG_LEVEL", "INFO", parse_log_level,
                  "Python logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL."),
    "trust_proxy_headers": ("CEREBRO_TRUST_PROXY_HEADERS", "false", _flag,
                            "Take the client address from X-Real-Ip/X-Forwarded-For (behind a "
                            "proxy only; costs an address check per request)."),
    "access_log": ("CEREBRO_ACCESS_LOG", "false", _flag,
                   "Log every HTTP request (errors are always logged)."),
    "batching": ("CEREBRO_BATCHING", "true", _flag,
                 "Gather concurrent calls to batch functions (false: one call per request)."),
    # Kafka consumer (cerebro consume)
    "kafka_bootstrap": ("CEREBRO_KAFKA_BOOTSTRAP", "127.0.0.1:9092", _split,
                        "Comma-separated Kafka bootstrap servers (host:port)."),
    "kafka_group": ("CEREBRO_KAFKA_GROUP", "cerebro", str,
                    "Consumer group of `cerebro consume`; "
                    "processes in one group share partitions."),
    "kafka_topics": ("CEREBRO_KAFKA_TOPICS", "", _split,
                     "Comma-separated topics to consume (empty: every topic an expose function "
                     "declares)."),
    "kafka_api_version": ("CEREBRO_KAFKA_API_VERSION", "", str,
                          "Kafka broker version such as 3.7 (empty: negotiated with the broker)."),
    "kafka_session_timeout_ms": ("CEREBRO_KAFKA_SESSION_TIMEOUT_MS", "10000", int,
                                 "Consumer group session timeout (ms)."),
    "kafka_heartbeat_ms": ("CEREBRO_KAFKA_HEARTBEAT_MS", "3000", int,
                           "Consumer group heartbeat interval (ms); "
                           "about a third of the session timeout."),
    "kafka_max_poll_records": ("CEREBRO_KAFKA_MAX_POLL_RECORDS", "500", int,
                               "Largest batch of records one poll returns."),
    "kafka_max_poll_interval_ms": ("CEREBRO_KAFKA_MAX_POLL_INTERVAL_MS", "300000", int,
                                   "Longest time between polls before the group evicts the "
                                   "consumer (ms)."),
    "consumer_concurrency": ("CEREBRO_CONSUMER_CONCURRENCY", "16", int,
                             "Threads running handlers (batches, or single events) concurrently."),
    "consumer_http_connections": ("CEREBRO_CONSUMER_HTTP_CONNECTIONS", "8", int,
                                  "Kept-alive connections the consumer opens to the main app."),
    "consumer_http_pipeline": ("CEREBRO_CONSUMER_HTTP_PIPELINE", "16", int,
                               "Main-app calls pipelined per connection (1: one at a time)."),
    "consumer_retries": ("CEREBRO_CONSUMER_RETRIES", "3", int,
                         "Retries of a failing handler before its record goes to <topic>.dlq."),
    "consumer_retry_backoff": ("CEREBRO_CONSUMER_RETRY_BACKOFF", "0.2", _seconds,
                               "First retry delay in seconds (doubles on every retry)."),
    "consumer_max_backoff": ("CEREBRO_CONSUMER_MAX_BACKOFF", "30.0", _seconds,
                             "Longest wait in seconds between retries when the broker or main app "
                             "is down."),
    "consumer_callback_path": ("CEREBRO_CONSUMER_CALLBACK_PATH",
                               "/cerebro/events/{module}/{function}", str,
                               "Main-app path the consumer posts each outcome to ({module}, "
                               "{function}, {topic})."),
    "consumer_event_id_field": ("CEREBRO_CONSUMER_EVENT_ID_FIELD", "event_id", str,
                                "Event field used as idempotency key "
                                "(else topic-partition-offset)."),
    # Async path: RabbitMQ + Celery workers, callbacks to the main app, Flower
    "broker_url": ("CEREBRO_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//", str,
                   "RabbitMQ URL the API publishes async tasks to and workers consume from."),
    "result_backend": ("CEREBRO_RESULT_BACKEND", "redis://127.0.0.1:6379/0", str,
                       "Celery result backend holding task states for GET /v1/tasks/<id>."),
    "result_expires": ("CEREBRO_RESULT_EXPIRES", "86400", int,
                       "Seconds a task's state and result are kept for polling."),
    "queue_prefix": ("CEREBRO_QUEUE_PREFIX", "cerebro", str,
                     "Prefix of the per-module task queues (<prefix>.<module>)."),
    "queue_type": ("CEREBRO_QUEUE_TYPE", "quorum", _queue_type,
                   "Type of the task queues: quorum, or classic (the type before; existing "
                   "queues must be drained and deleted to switch, see docs/async.md)."),
    "broker_timeout": ("CEREBRO_BROKER_TIMEOUT", "1.0", _seconds,
                       "Seconds the API waits to connect/publish to RabbitMQ "
                       "before answering 503."),
    "publish_confirm": ("CEREBRO_PUBLISH_CONFIRM", "true", _flag,
                        "Wait for RabbitMQ's publisher confirm before answering 202."),
    "worker_concurrency": ("CEREBRO_WORKER_CONCURRENCY", "0", int,
                           "Celery worker processes (0: one per CPU core)."),
    "model_wait": ("CEREBRO_MODEL_WAIT", "300", _seconds,
                   "Seconds a worker keeps retrying a task whose model is not loaded yet."),
    "model_retry_delay": ("CEREBRO_MODEL_RETRY_DELAY", "5", _seconds,
                          "Seconds between those retries."),
    "main_app_url": ("CEREBRO_MAIN_APP_URL", "http://127.0.0.1:8080", str,
                     "Base URL of the main application that receives callbacks."),
    "callback_path": ("CEREBRO_CALLBACK_PATH", "/cerebro/callbacks/{module}/{function}", str,
                      "Main-app path of async task callbacks ({module}, {function})."),
    "callback_paths": ("CEREBRO_CALLBACK_PATHS", "", _split,
                       "Per-function callback paths: module.function=/path,..."),
    "callback_allowed_hosts": ("CEREBRO_CALLBACK_ALLOWED_HOSTS", "", _split,
                               "Hosts (host, host:port or *.domain) a request's callback_url may "
                               "name; the main app's host is always allowed."),
    "callback_secret": ("CEREBRO_CALLBACK_SECRET", "", str,
                        "Shared secret signing callbacks (HMAC-SHA256); required by workers."),
    "callback_timeout": ("CEREBRO_CALLBACK_TIMEOUT", "5.0", _seconds,
                         "Seconds one callback attempt may take."),
    "callback_retry_window": ("CEREBRO_CALLBACK_RETRY_WINDOW", "3600", _seconds,
                              "Seconds a callback keeps being retried before it is dead-lettered."),
    "callback_backoff": ("CEREBRO_CALLBACK_BACKOFF", "1.0", _seconds,
                         "First callback retry delay in seconds (doubles, with jitter)."),
    "callback_backoff_max": ("CEREBRO_CALLBACK_BACKOFF_MAX", "300", _seconds,
                             "Longest delay between callback retries, in seconds."),
    "callback_deadletter_dir": ("CEREBRO_CALLBACK_DEADLETTER_DIR", "", str,
                                "Where failed callbacks are kept "
                                "(empty: <data volume>/.callbacks/failed)."),
    "flower_user": ("CEREBRO_FLOWER_USER", "cerebro", str, "Flower basic-auth user."),
    "flower_password": ("CEREBRO_FLOWER_PASSWORD", "", str,
                        "Flower basic-auth password; `cerebro flower` refuses to start "
                        "without one."),
    "flower_address": ("CEREBRO_FLOWER_ADDRESS", "127.0.0.1", str, "Address Flower binds."),
    "flower_port": ("CEREBRO_FLOWER_PORT", "5555", int, "Port Flower binds."),
    # Pub-sub over RabbitMQ (cerebro subscribe); the broker is CEREBRO_BROKER_URL
    "pubsub_requests_exchange": ("CEREBRO_PUBSUB_REQUESTS_EXCHANGE", "cerebro.requests", str,
                                 "Topic exchange of requests (key <module>.<function>); module "
                                 "queues are <exchange>.<module>."),
    "pubsub_results_exchange": ("CEREBRO_PUBSUB_RESULTS_EXCHANGE", "cerebro.results", str,
                                "Topic exchange of results (key "
                                "<module>.<function>.<succeeded|failed>)."),
    "pubsub_dlx": ("CEREBRO_PUBSUB_DLX", "cerebro.dlx", str,
                   "Dead-letter exchange, and the queue of the same name keeping dead letters."),
    "pubsub_prefetch": ("CEREBRO_PUBSUB_PREFETCH", "128", int,
                        "Unacknowledged requests per module queue a subscriber holds at once."),
    "pubsub_retries": ("CEREBRO_PUBSUB_RETRIES", "3", int,
                       "Retries of a failing request (or redeliveries) before it is "
                       "dead-lettered."),
    "pubsub_retry_backoff": ("CEREBRO_PUBSUB_RETRY_BACKOFF", "0.5", _seconds,
                             "First retry delay in seconds (doubles on every retry)."),
    "pubsub_reconnect_backoff": ("CEREBRO_PUBSUB_RECONNECT_BACKOFF", "0.5", _seconds,
                                 "First reconnect delay in seconds after losing RabbitMQ "
                                 "(doubles)."),
    "pubsub_max_backoff": ("CEREBRO_PUBSUB_MAX_BACKOFF", "30.0", _seconds,
                           "Longest retry or reconnect delay in seconds."),
    "pubsub_heartbeat": ("CEREBRO_PUBSUB_HEARTBEAT", "30", int,
                         "AMQP heartbeat in seconds: how fast a silent broker is noticed."),
    # Operations: supervisord (supervisord.conf), cerebro up/down/status/beat
    "state_dir": ("CEREBRO_STATE_DIR", str(PROJECT_ROOT / "var"), Path,
                  "Runtime state: supervisord pid/socket, beat schedule, private RabbitMQ node, "
                  "generated dev secrets."),
    "log_dir": ("CEREBRO_LOG_DIR", str(PROJECT_ROOT / "logs"), Path,
                "Where supervisord and every program it runs write their logs."),
    "supervisor_port": ("CEREBRO_SUPERVISOR_PORT", "9001", int,
                        "Port of supervisord's web UI / XML-RPC (always bound to 127.0.0.1)."),
    "supervisor_user": ("CEREBRO_SUPERVISOR_USER", "cerebro", str,
                        "User name of supervisord's web UI."),
    "supervisor_password": ("CEREBRO_SUPERVISOR_PASSWORD", "", str,
                            "Password of supervisord's web UI (cerebro up generates one when "
                            "empty)."),
    "epmd_port": ("CEREBRO_EPMD_PORT", "4369", int,
                  "Erlang port mapper port of the RabbitMQ node supervisord runs."),
    "rabbitmq_management_port": ("CEREBRO_RABBITMQ_MANAGEMENT_PORT", "15672", int,
                                 "RabbitMQ management UI port of the node supervisord runs."),
    "run_rabbitmq": ("CEREBRO_RUN_RABBITMQ", "auto", _tristate,
                     "Run RabbitMQ under supervisord (auto: only when nothing answers at "
                     "CEREBRO_BROKER_URL)."),
    "run_redis": ("CEREBRO_RUN_REDIS", "auto", _tristate,
                  "Run Redis under supervisord (auto: only when nothing answers at "
                  "CEREBRO_RESULT_BACKEND)."),
    "run_kafka": ("CEREBRO_RUN_KAFKA", "auto", _tristate,
                  "Run the development Kafka broker (tansu) under supervisord (auto: when nothing "
                  "answers at CEREBRO_KAFKA_BOOTSTRAP and it is local)."),
    "programs": ("CEREBRO_PROGRAMS", "api,worker,beat,flower,consumer,subscriber,bootstrap", _split,
                 "Cerebro programs supervisord starts (api worker beat flower consumer "
                 "subscriber bootstrap)."),
    "ready_timeout": ("CEREBRO_READY_TIMEOUT", "180", _seconds,
                      "Seconds `cerebro up` waits for every program to be really ready."),
}


class ConfigurationError(Exception):
    """A setting names something that does not exist or cannot work."""


@dataclass(frozen=True)
class Settings:
    """Cerebro's configuration, read from the environment by :func:`load_settings`."""

    data_volume: Path
    modules_package: str
    modules: tuple
    host: str
    port: int
    processes: int
    threads: int
    cpu_affinity: str
    reuse_port: bool
    max_body_bytes: int
    api_keys: tuple
    reload_interval: float
    keep_versions: int
    log_level: str
    trust_proxy_headers: bool
    access_log: bool
    batching: bool
    kafka_bootstrap: tuple
    kafka_group: str
    kafka_topics: tuple
    kafka_api_version: str
    kafka_session_timeout_ms: int
    kafka_heartbeat_ms: int
    kafka_max_poll_records: int
    kafka_max_poll_interval_ms: int
    consumer_concurrency: int
    consumer_http_connections: int
    consumer_http_pipeline: int
    consumer_retries: int
    consumer_retry_backoff: float
    consumer_max_backoff: float
    consumer_callback_path: str
    consumer_event_id_field: str
    broker_url: str
    result_backend: str
    result_expires: int
    queue_prefix: str
    queue_type: str
    broker_timeout: float
    publish_confirm: bool
    worker_concurrency: int
    model_wait: float
    model_retry_delay: float
    main_app_url: str
    callback_path: str
    callback_paths: tuple
    callback_allowed_hosts: tuple
    callback_secret: str
    callback_timeout: float
    callback_retry_window: float
    callback_backoff: float
    callback_backoff_max: float
    callback_deadletter_dir: str
    flower_user: str
    flower_password: str
    flower_address: str
    flower_port: int
    pubsub_requests_exchange: str
    pubsub_results_exchange: str
    pubsub_dlx: str
    pubsub_prefetch: int
    pubsub_retries: int
    pubsub_retry_backoff: float
    pubsub_reconnect_backoff: float
    pubsub_max_backoff: float
    pubsub_heartbeat: int
    state_dir: Path
    log_dir: Path
    supervisor_port: int
    supervisor_user: str
    supervisor_password: str
    epmd_port: int
    rabbitmq_management_port: int
    run_rabbitmq: str
    run_redis: str
    run_kafka: str
    programs: tuple
    ready_timeout: float

    def replace(self, **changes):
        """Return a copy with some values changed (for tests and CLI flags)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)


def load_settings(environ=None):
    """Build :class:`Settings` from ``environ`` (default: ``os.environ``).

    A value that does not parse raises ``ValueError`` naming the variable, so a
    typo in a deployment fails loudly at start-up rather than silently later.
    An empty boolean is read as its default (see the module docstring).
    """
    environ = os.environ if environ is None else environ
    values = {}
    for name, (var, default, parse, _help) in _SPEC.items():
        raw = environ.get(var, default)
        if parse is _flag and not raw.strip():
            raw = default
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            raise ValueError(f"{var}={raw!r} is not valid: {exc}") from None
    return Settings(**values)


def describe(settings):
    """Yield ``(variable, value, help)`` rows for documentation and ``cerebro settings``."""
    for name, (var, _default, _parse, text) in _SPEC.items():
        value = getattr(settings, name)
        if name == "api_keys":
            value = f"<{len(value)} keys>" if value else ""
        elif name in ("callback_secret", "flower_password", "supervisor_password"):
            value = "<set>" if value else ""
        elif isinstance(value, tuple):
            value = ",".join(value)
        yield var, str(value), text
