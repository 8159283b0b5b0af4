"""
Author:  Cerebro team
Date:    2026-11-30
Subject: Celery's monitoring events, sent without waiting for a publisher confirm.
Tagline: A postcard to Flower needs no signature.

Cerebro's Celery connections run with publisher confirms
(``broker_transport_options["confirm_publish"]``): a countdown task (a
callback retry, a wait for a model) must never be lost. py-amqp applies that
to every channel of a connection, so the worker's event dispatcher waited for
RabbitMQ's ``basic.ack`` after every ``task-received``, ``task-started`` and
``task-succeeded`` event, blocking the worker's main loop: half of its samples
in a profile, and a broker round trip between two tasks.

Events are monitoring data for Flower: transient messages
(``delivery_mode`` 1) on the ``celeryev`` topic exchange, which RabbitMQ
drops anyway when no one listens or the broker restarts. :class:`EventDispatcher`
publishes them on a channel of their own, without confirms; everything else on
the connection keeps them.
"""

from __future__ import annotations

from typing import Any

from celery.app.events import Events as CeleryEvents
from celery.events.dispatcher import EventDispatcher as CeleryEventDispatcher
from kombu import Connection


def unconfirmed_channel(connection: Connection) -> Any:
    """A new channel of ``connection`` whose publishes never wait for a confirm.

    py-amqp makes a channel of a ``confirm_publish`` connection confirm by binding
    ``basic_publish_confirm`` over ``basic_publish`` on the channel itself; removing that
    binding gives the channel py-amqp's plain ``basic_publish`` back.
    """
    channel = connection.channel()
    vars(channel).pop("basic_publish", None)
    return channel


class EventDispatcher(CeleryEventDispatcher):
    """Celery's dispatcher, sending on an unconfirmed channel of its connection when it was
    given a connection and no channel (the worker's own dispatcher: a connection of its own)."""

    def enable(self) -> None:
        """Open the unconfirmed channel (once), then enable as Celery does."""
        channel: Any = getattr(self, "channel", None)  # Celery's __init__ sets it first
        if channel is None and self.connection is not None and _is_amqp(self.connection):
            self.channel = unconfirmed_channel(self.connection)
        super().enable()


def _is_amqp(connection: Connection) -> bool:
    """True when ``connection`` runs on py-amqp (the channels this module changes)."""
    return connection.transport.driver_name == "py-amqp"


class Events(CeleryEvents):
    """The app's events, whose dispatcher is :class:`EventDispatcher`."""

    dispatcher_cls = f"{__name__}:EventDispatcher"
