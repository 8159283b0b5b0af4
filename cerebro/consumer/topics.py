"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The topics a consumer needs: consumed topics that exist, dead-letter topics created.
Tagline: Check the mailboxes are there before opening the post office.

At start-up :func:`prepare` asks the cluster, through one admin client, about
every consumed topic and creates the missing ``<topic>.dlq`` topics (a broker
without topic auto-creation would refuse the first dead letter otherwise).

What no retry can fix stops the consumer (a
:class:`~cerebro.settings.ConfigurationError`, see :mod:`.fatal`): a topic this
client may not read, a topic name Kafka refuses, a consumed topic that does not
exist on brokers that do not create topics (``auto.create.topics.enable=false``),
dead-letter topics the broker refuses to create. A broker that does not answer
is not such a case: it is logged, and the runner waits for it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kafka import KafkaAdminClient
from kafka import errors as kerr
from kafka.admin import ConfigResource, ConfigResourceType

from cerebro.consumer import fatal
from cerebro.consumer.config import admin_kwargs
from cerebro.names import dlq_topic
from cerebro.settings import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from cerebro.settings import Settings

log = logging.getLogger(__name__)

AUTO_CREATE = "auto.create.topics.enable"


def prepare(settings: Settings, topics: Iterable[str], check_sources: bool = True) -> bool:
    """Check the consumed ``topics`` (when ``check_sources``) and create their missing
    dead-letter topics; True when done, False when the cluster could not be asked (logged).
    Raises :class:`ConfigurationError` for what retrying cannot fix."""
    topics = list(topics)
    context = fatal.Context.of(settings)
    try:
        admin = KafkaAdminClient(**admin_kwargs(settings))
    except kerr.KafkaError as exc:
        fatal.check(exc, context, "creating the Kafka admin client")
        log.warning("could not connect to check topics %s: %s", topics, exc)
        return False
    try:
        if check_sources:
            check_consumed(admin, topics, context)
        ensure_dead_letter_topics(admin, topics, context)
        return True
    except kerr.KafkaError as exc:
        fatal.check(exc, context, "checking the consumed and dead-letter topics")
        log.warning("could not check topics %s or create their dead-letter topics: %s",
                    topics, exc)
        return False
    finally:
        admin.close()


def check_consumed(admin: KafkaAdminClient, topics: Sequence[str],
                   context: fatal.Context) -> None:
    """Raise :class:`ConfigurationError` for a consumed topic that is refused, or missing on
    brokers that will not create it; log the ones missing that a broker may create."""
    missing = []
    for described in admin.describe_topics(list(topics)):
        kind = kerr.for_code(described["error_code"])
        if kind is kerr.UnknownTopicOrPartitionError:
            missing.append(described["name"])
        elif kind is not kerr.NoError:
            fatal.check(kind(described["name"]), context, f"using topic {described['name']}")
    if not missing:
        return
    names = ", ".join(missing)
    creates = auto_creates(admin)
    if creates is False:
        raise ConfigurationError(
            f"topic(s) {names} do not exist and the brokers do not create topics "
            f"({AUTO_CREATE}=false): create them, or consume only existing topics "
            "(CEREBRO_KAFKA_TOPICS, or remove the modules declaring them)")
    log.warning("topic(s) %s do not exist yet: consumed once created%s", names,
                "" if creates else f" (could not read the brokers' {AUTO_CREATE})")


def auto_creates(admin: KafkaAdminClient) -> bool | None:
    """The brokers' ``auto.create.topics.enable``; None when they do not say (no permission
    to describe broker configs, or a broker without that API)."""
    try:
        brokers = admin.describe_cluster().get("brokers") or []
        if not brokers:
            return None
        node = str(brokers[0]["broker_id"])
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.BROKER, node, [AUTO_CREATE])],
            config_filter="all")
    except kerr.KafkaError as exc:
        log.debug("describing the broker's %s failed: %s", AUTO_CREATE, exc)
        return None
    entry = described.get("broker", {}).get(node, {}).get(AUTO_CREATE) or {}
    value = entry.get("value")
    return None if value is None else str(value).strip().lower() == "true"


def ensure_dead_letter_topics(admin: KafkaAdminClient, topics: Iterable[str],
                              context: fatal.Context) -> None:
    """Create the ``<topic>.dlq`` topics missing (one partition, up to three replicas)."""
    names = [dlq_topic(t) for t in topics]
    existing = set(admin.list_topics())
    missing = [n for n in names if n not in existing]
    if not missing:
        return
    brokers = len(admin.describe_cluster().get("brokers", [])) or 1
    try:
        admin.create_topics({n: {"num_partitions": 1, "replication_factor": min(3, brokers)}
                            for n in missing}, wait_for_metadata=True)
    except kerr.TopicAlreadyExistsError:
        return
    except kerr.KafkaError as exc:
        fatal.check(exc, context, f"creating the dead-letter topics {', '.join(missing)}")
        raise
    log.info("created dead-letter topics %s", missing)
