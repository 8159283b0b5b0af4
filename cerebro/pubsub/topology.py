"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Declare the pub-sub topology: exchanges, queues, bindings, retry queues, dead letters.
Tagline: Lay the pipes before the water runs.

Everything is durable and declaring is idempotent, so every subscriber (and
the main app, or ``cerebro subscribe --declare-only``) may declare at start
and after every reconnect. Per module::

    <requests>.<module>        durable; bound by <module>.<function> for every function,
                               and by <module>.* so a request for an unknown function is
                               answered (not_found) instead of vanishing;
                               x-dead-letter-exchange = <dlx>
    <requests>.<module>.retry  durable, no consumer: a retried request waits here for its
                               per-message TTL, then is dead-lettered back to the queue above

and once: the topic exchanges ``<requests>``, ``<results>`` and ``<dlx>``, and
the durable queue ``<dlx>`` bound to ``<dlx>`` by ``#``, keeping every dead letter.

:func:`declare` does it all on a blocking channel (at start and after every
reconnect); :func:`declare_module` declares one module's queues on a channel
of the subscriber's running connection (a module folder added while it runs).
A broker refusing the URL itself (wrong credentials, no such virtual host) is
a :class:`ConfigurationError` too (:func:`declare_with`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import pika
import pika.exceptions

from cerebro.clients.rabbitmq import refusal, refused
from cerebro.names import request_key
from cerebro.settings import ConfigurationError

if TYPE_CHECKING:
    from pika.adapters.blocking_connection import BlockingChannel
    from pika.channel import Channel
    from pika.frame import Method
    from pika.spec import Queue

    from cerebro.names import Names
    from cerebro.settings import Settings

log = logging.getLogger(__name__)


def parameters(settings: Settings, name: str = "cerebro-subscribe") -> pika.URLParameters:
    """Connection parameters from ``CEREBRO_BROKER_URL`` with Cerebro's timeouts."""
    params = pika.URLParameters(settings.broker_url.get_secret_value())
    if not params.virtual_host:  # kombu's "amqp://host//" means the vhost "/"
        params.virtual_host = "/"
    params.heartbeat = settings.pubsub_heartbeat
    params.blocked_connection_timeout = max(60, 2 * settings.pubsub_heartbeat)
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.client_properties = {"connection_name": name}
    return params


def queue_arguments(names: Names) -> dict[str, str]:
    """The arguments of a module queue (they must match wherever it is declared)."""
    return {"x-dead-letter-exchange": names.dlx}


def retry_queue_arguments(names: Names, module: str) -> dict[str, str]:
    """The arguments of a module's retry queue: expired messages go back to the module queue."""
    return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": names.queue(module)}


def declare(channel: BlockingChannel, names: Names,
            functions: Mapping[str, Iterable[str]]) -> None:
    """Declare everything on a blocking ``channel``; ``functions`` maps module -> function names.

    A queue that exists with other arguments closes the channel; that is a
    deployment mistake and raises :class:`ConfigurationError` naming it.
    """
    for exchange in (names.requests, names.results, names.dlx):
        channel.exchange_declare(exchange, "topic", durable=True)
    channel.queue_declare(names.dead_letter_queue, durable=True)
    channel.queue_bind(names.dead_letter_queue, names.dlx, "#")
    for module, funcs in sorted(functions.items()):
        queue = names.queue(module)
        try:
            channel.queue_declare(queue, durable=True, arguments=queue_arguments(names))
            channel.queue_declare(names.retry_queue(module), durable=True,
                                  arguments=retry_queue_arguments(names, module))
        except pika.exceptions.ChannelClosedByBroker as exc:
            raise ConfigurationError(f"queue {queue} (or its retry queue) exists with other "
                                     f"arguments: {exc.reply_text}; delete it or change "
                                     f"CEREBRO_PUBSUB_REQUESTS_EXCHANGE") from None
        for function in sorted(funcs):
            channel.queue_bind(queue, names.requests, request_key(module, function))
        channel.queue_bind(queue, names.requests, f"{module}.*")


def declare_module(channel: Channel, names: Names, module: str, functions: Iterable[str],
                   done: Callable[[Method[Queue.BindOk]], object]) -> None:
    """Declare one module's queue, retry queue and bindings on an open channel of a running
    (asynchronous) connection; ``done`` is called once the last binding is confirmed.

    The exchanges exist already (:func:`declare` ran at connection). A queue that
    exists with other arguments closes the channel (its close callback says why);
    pika queues each call until the one before is answered, so they run in order.
    """
    queue = names.queue(module)
    channel.queue_declare(queue, durable=True, arguments=queue_arguments(names))
    channel.queue_declare(names.retry_queue(module), durable=True,
                          arguments=retry_queue_arguments(names, module))
    for function in sorted(functions):
        channel.queue_bind(queue, names.requests, request_key(module, function))
    channel.queue_bind(queue, names.requests, f"{module}.*", callback=done)


def declare_with(settings: Settings, names: Names,
                 functions: Mapping[str, Iterable[str]]) -> None:
    """Open a short blocking connection and :func:`declare`; raises pika's AMQP errors, and
    :class:`ConfigurationError` when RabbitMQ refuses the URL's credentials or vhost."""
    try:
        connection = pika.BlockingConnection(parameters(settings, "cerebro-declare"))
    except pika.exceptions.AMQPError as exc:
        reason = refusal(exc)
        if reason is not None:
            raise refused(reason, settings.broker_url.get_secret_value()) from None
        raise
    try:
        declare(connection.channel(), names, functions)
    finally:
        if connection.is_open:
            connection.close()
    log.info("declared %s -> %s, results %s, dead letters %s", names.requests,
             ", ".join(names.queue(m) for m in sorted(functions)), names.results, names.dlx)
