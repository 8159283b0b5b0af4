"""
Author:  Cerebro team
Date:    2026-11-24
Subject: kafka-python consumer, producer and admin keyword arguments, built from Settings.
Tagline: Every knob of the client turned in one place, never by hand at a call site.

Nothing here depends on the broker in use: the broker version is negotiated
unless ``CEREBRO_KAFKA_API_VERSION`` pins it (needed for some managed Kafka
services that do not answer ApiVersions), so the same consumer runs against
Apache Kafka in production and tansu in development.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cerebro.settings import ConfigurationError

if TYPE_CHECKING:
    from cerebro.settings import Settings


def api_version(text: str | None) -> tuple[int, ...] | None:
    """``"3.7"`` -> ``(3, 7)``; empty -> ``None`` (negotiate with the broker)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        raise ConfigurationError(f"CEREBRO_KAFKA_API_VERSION={text!r} is not a version "
                                 "such as 3.7") from None


def _common(settings: Settings, client_id: str) -> dict[str, object]:
    """Keyword arguments every kafka-python client gets."""
    kwargs = {
        "bootstrap_servers": list(settings.kafka_bootstrap),
        "client_id": client_id,
        # Reconnect quickly at first, then back off up to the configured cap so
        # an outage is neither hammered nor waited out for too long.
        "reconnect_backoff_ms": 100,
        "reconnect_backoff_max_ms": int(settings.max_backoff * 1000),
        "retry_backoff_ms": 200,
    }
    version = api_version(settings.kafka_api_version)
    if version is not None:
        kwargs["api_version"] = version
    return kwargs


def consumer_kwargs(settings: Settings, group: str, client_id: str = "cerebro-consumer",
                    instance_id: str | None = None) -> dict[str, object]:
    """Arguments of the :class:`kafka.KafkaConsumer`: manual commits, earliest reset,
    raw bytes (decoding is ours, so undecodable records can be dead-lettered), and static
    group membership when ``instance_id`` is given (see :mod:`.membership`)."""
    kwargs = _common(settings, client_id)
    if instance_id is not None:
        kwargs["group_instance_id"] = instance_id
    kwargs.update({
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_heartbeat_ms,
        "max_poll_records": settings.kafka_max_poll_records,
        "max_poll_interval_ms": settings.kafka_max_poll_interval_ms,
        "fetch_max_wait_ms": 100,
    })
    return kwargs


def producer_kwargs(settings: Settings, client_id: str = "cerebro-dlq") -> dict[str, object]:
    """Arguments of the dead-letter :class:`kafka.KafkaProducer`: every replica acknowledges."""
    kwargs = _common(settings, client_id)
    kwargs.update({"acks": "all", "linger_ms": 5})
    return kwargs


def admin_kwargs(settings: Settings, client_id: str = "cerebro-admin") -> dict[str, object]:
    """Arguments of the :class:`kafka.KafkaAdminClient` that creates dead-letter topics."""
    return _common(settings, client_id)
