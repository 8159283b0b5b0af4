"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Kafka errors retrying cannot fix, turned into a ConfigurationError saying what to change.
Tagline: Knock again when nobody is home; when the door says no, go and fetch the right key.

kafka-python raises broker refusals from ``poll()``, ``commit()``, the client
constructors and the admin calls, and keeps retrying transient trouble (no
broker, a coordinator moving, a rebalance) by itself. :func:`refusal` sorts an
exception into one of the two: ``None`` for what the runner may retry, or a
:class:`~cerebro.settings.ConfigurationError` naming the setting (or the broker
permission) to change, for what no retry can fix: a session timeout outside
the broker's bounds, authentication and authorisation failures, a group used by
another application or another consumer with the same group instance id, a
topic name Kafka refuses, a client configuration kafka-python refuses, an API
the broker does not have. ``cerebro consume`` then stops with exit code 2.

Errors outside the list are retried, even when kafka-python does not call them
retriable (a member id the group forgot, a commit after a rebalance, a broker
restarting): a false alarm would stop a consumer supervisord does not restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kafka import errors as kerr

from cerebro.settings import ConfigurationError

if TYPE_CHECKING:
    from cerebro.settings import Settings

_AUTHENTICATION = (kerr.SaslAuthenticationFailedError, kerr.UnsupportedSaslMechanismError,
                   kerr.IllegalSaslStateError, kerr.UnacceptableCredentialError,
                   kerr.SecurityDisabledError)
_TOPIC_CREATION = (kerr.InvalidReplicationFactorError, kerr.InvalidReplicationAssignmentError,
                   kerr.InvalidPartitionsError, kerr.InvalidConfigurationError,
                   kerr.PolicyViolationError)

#: Each kind of refusal and what to do about it ({group}, {instance}, {session},
#: {bootstrap} and {api_version} are filled in). The first matching row wins.
ADVICE: tuple[tuple[tuple[type[kerr.KafkaError], ...], str], ...] = (
    ((kerr.InvalidSessionTimeoutError,),
     "the broker refuses CEREBRO_KAFKA_SESSION_TIMEOUT_MS={session}: set it between the "
     "broker's group.min.session.timeout.ms (6000 by default) and group.max.session.timeout.ms "
     "(1800000 by default)"),
    ((kerr.FencedInstanceIdError,),
     "another consumer joined group {group} with the same group instance id {instance}: give "
     "each process its own CEREBRO_KAFKA_INSTANCE_ID (auto does), or set it to off"),
    ((kerr.InconsistentGroupProtocolError,),
     "group {group} is in use by another application (its members assign partitions another "
     "way): give Cerebro a consumer group of its own with CEREBRO_KAFKA_GROUP"),
    ((kerr.InvalidGroupIdError,),
     "the broker refuses the group id {group!r}: change CEREBRO_KAFKA_GROUP"),
    ((kerr.GroupMaxSizeReachedError,),
     "group {group} already has the broker's group.max.size members: run fewer consumer "
     "processes in it, or raise group.max.size"),
    ((kerr.GroupAuthorizationFailedError,),
     "this client may not use consumer group {group}: grant it READ on the group, or change "
     "CEREBRO_KAFKA_GROUP"),
    ((kerr.TopicAuthorizationFailedError,),
     "this client may not use a topic: grant it READ on the consumed topics and WRITE on their "
     "<topic>.dlq topics, or change CEREBRO_KAFKA_TOPICS"),
    ((kerr.AuthorizationError,),
     "this client lacks a permission on the cluster (creating the <topic>.dlq topics needs "
     "CREATE): grant it, or create the dead-letter topics yourself"),
    (_AUTHENTICATION,
     "the brokers at {bootstrap} refused to authenticate this client: check the security "
     "protocol and credentials the cluster expects"),
    ((kerr.InvalidTopicError,),
     "Kafka refuses a topic name: rename it in the module's @endpoint(topics=...) or in "
     "CEREBRO_KAFKA_TOPICS"),
    (_TOPIC_CREATION,
     "the broker refuses to create the dead-letter topics as asked: create the <topic>.dlq "
     "topics yourself"),
    ((kerr.UnsupportedVersionError,),
     "the broker lacks an API the consumer needs (Kafka 0.10.1 or later is required), or "
     "CEREBRO_KAFKA_API_VERSION={api_version!r} pins the wrong version: set the broker's "
     "version, or leave it empty to negotiate"),
    ((kerr.KafkaConfigurationError,),
     "kafka-python refuses the client settings: check CEREBRO_KAFKA_SESSION_TIMEOUT_MS, "
     "CEREBRO_KAFKA_HEARTBEAT_MS (below the session timeout), "
     "CEREBRO_KAFKA_MAX_POLL_INTERVAL_MS and CEREBRO_KAFKA_INSTANCE_ID"),
)


@dataclass(frozen=True)
class Context:
    """What the advice names: the consumer's group, instance id and client settings."""

    group: str = ""
    instance: str | None = None
    session: int = 0
    bootstrap: str = ""
    api_version: str = ""

    @classmethod
    def of(cls, settings: Settings, group: str = "", instance: str | None = None) -> Context:
        """The context of a client built from ``settings``."""
        return cls(group or settings.kafka_group, instance, settings.kafka_session_timeout_ms,
                   ",".join(settings.kafka_bootstrap), settings.kafka_api_version)


def advice(exc: BaseException) -> str | None:
    """The advice template of a refusal retrying cannot fix, or None (retry it)."""
    if not isinstance(exc, kerr.KafkaError) or exc.retriable:
        return None
    for kinds, text in ADVICE:
        if isinstance(exc, kinds):
            return text
    return None


def refusal(exc: BaseException, context: Context, doing: str) -> ConfigurationError | None:
    """A :class:`ConfigurationError` explaining ``exc`` (raised by ``doing``, such as "the
    Kafka consumer of group g") when no retry can fix it; None when it is worth retrying."""
    text = advice(exc)
    if text is None:
        return None
    fields = {"group": context.group, "instance": context.instance or "-",
              "session": context.session, "bootstrap": context.bootstrap,
              "api_version": context.api_version}
    return ConfigurationError(f"{doing} failed: {exc}. No retry can fix this: "
                              f"{text.format(**fields)}")


def check(exc: BaseException, context: Context, doing: str) -> None:
    """Raise the :func:`refusal` of ``exc`` (from it) when there is one; else return."""
    error = refusal(exc, context, doing)
    if error is not None:
        raise error from exc
