"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Settings: every environment variable Cerebro reads, with its default, in one place.
Tagline: One place to turn every knob.

Nothing else in Cerebro reads ``os.environ`` for configuration: services build a
:class:`Settings` once with :func:`load_settings` and pass it down explicitly.
``cerebro settings`` prints the table below with the values in force.
"""

import os
from dataclasses import dataclass, fields
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _split(value):
    """Split a comma-separated string into a tuple of stripped, non-empty items."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _flag(value):
    """Read a boolean environment value: 1/true/yes/on are true."""
    return value.strip().lower() in ("1", "true", "yes", "on")


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
    "threads": ("CEREBRO_THREADS", "4", int,
                "Threads per API process that run model calls off the IOLoop."),
    "max_body_bytes": ("CEREBRO_MAX_BODY_BYTES", str(1024 * 1024), int,
                       "Largest accepted request body; larger bodies get 413."),
    "api_keys": ("CEREBRO_API_KEYS", "", _split,
                 "Comma-separated API keys; when set every /v1 call needs one."),
    "reload_interval": ("CEREBRO_RELOAD_INTERVAL", "2.0", float,
                        "Seconds between checks of the data volume for new models."),
    "keep_versions": ("CEREBRO_KEEP_VERSIONS", "5", int,
                      "Model versions kept per module when a build publishes."),
    "log_level": ("CEREBRO_LOG_LEVEL", "INFO", str, "Python logging level."),
    # Kafka consumer (cerebro consume)
    "kafka_bootstrap": ("CEREBRO_KAFKA_BOOTSTRAP", "127.0.0.1:9092", _split,
                        "Comma-separated Kafka bootstrap servers (host:port)."),
    "kafka_group": ("CEREBRO_KAFKA_GROUP", "cerebro", str,
                    "Consumer group of `cerebro consume`; processes in one group share partitions."),
    "kafka_topics": ("CEREBRO_KAFKA_TOPICS", "", _split,
                     "Comma-separated topics to consume (empty: every topic an expose function declares)."),
    "kafka_api_version": ("CEREBRO_KAFKA_API_VERSION", "", str,
                          "Kafka broker version such as 3.7 (empty: negotiated with the broker)."),
    "kafka_session_timeout_ms": ("CEREBRO_KAFKA_SESSION_TIMEOUT_MS", "10000", int,
                                 "Consumer group session timeout (ms)."),
    "kafka_heartbeat_ms": ("CEREBRO_KAFKA_HEARTBEAT_MS", "3000", int,
                           "Consumer group heartbeat interval (ms); about a third of the session timeout."),
    "kafka_max_poll_records": ("CEREBRO_KAFKA_MAX_POLL_RECORDS", "500", int,
                               "Largest batch of records one poll returns."),
    "kafka_max_poll_interval_ms": ("CEREBRO_KAFKA_MAX_POLL_INTERVAL_MS", "300000", int,
                                   "Longest time between polls before the group evicts the consumer (ms)."),
    "consumer_concurrency": ("CEREBRO_CONSUMER_CONCURRENCY", "16", int,
                             "Threads processing records and calling the main app concurrently."),
    "consumer_retries": ("CEREBRO_CONSUMER_RETRIES", "3", int,
                         "Retries of a failing handler before its record goes to <topic>.dlq."),
    "consumer_retry_backoff": ("CEREBRO_CONSUMER_RETRY_BACKOFF", "0.2", float,
                               "First retry delay in seconds (doubles on every retry)."),
    "consumer_max_backoff": ("CEREBRO_CONSUMER_MAX_BACKOFF", "30.0", float,
                             "Longest wait in seconds between retries when the broker or main app is down."),
    "consumer_callback_path": ("CEREBRO_CONSUMER_CALLBACK_PATH", "/cerebro/events/{module}/{function}", str,
                               "Main-app path the consumer posts each outcome to ({module}, {function}, {topic})."),
    "consumer_event_id_field": ("CEREBRO_CONSUMER_EVENT_ID_FIELD", "event_id", str,
                                "Event field used as idempotency key (else topic-partition-offset)."),
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
    max_body_bytes: int
    api_keys: tuple
    reload_interval: float
    keep_versions: int
    log_level: str
    kafka_bootstrap: tuple
    kafka_group: str
    kafka_topics: tuple
    kafka_api_version: str
    kafka_session_timeout_ms: int
    kafka_heartbeat_ms: int
    kafka_max_poll_records: int
    kafka_max_poll_interval_ms: int
    consumer_concurrency: int
    consumer_retries: int
    consumer_retry_backoff: float
    consumer_max_backoff: float
    consumer_callback_path: str
    consumer_event_id_field: str

    def replace(self, **changes):
        """Return a copy with some values changed (for tests and CLI flags)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)


def load_settings(environ=None):
    """Build :class:`Settings` from ``environ`` (default: ``os.environ``).

    A value that does not parse raises ``ValueError`` naming the variable, so a
    typo in a deployment fails loudly at start-up rather than silently later.
    """
    environ = os.environ if environ is None else environ
    values = {}
    for name, (var, default, parse, _help) in _SPEC.items():
        raw = environ.get(var, default)
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
        elif isinstance(value, tuple):
            value = ",".join(value)
        yield var, str(value), text
