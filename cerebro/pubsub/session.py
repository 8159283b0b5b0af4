"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The AMQP session: consume queues, publish with confirms, ack once confirmed, reconnect.
Tagline: Hold the line open; when it drops, dial again and pick up where you were.

A :class:`Session` owns one pika ``SelectConnection`` at a time and runs its
IOLoop on its own thread; nothing else touches the connection. Deliveries go
to an inbox queue for the worker; the worker hands outcomes back with
:meth:`Session.submit` (thread-safe). Every outcome message is published
persistent and mandatory on a channel in confirm mode, and the request is
acked when all its messages are confirmed (nacked back to the queue when the
broker refuses one), so nothing is acked before its answer is safe.

Losing the connection (or the channel) stops the IOLoop; the thread declares
the topology again and reconnects with capped exponential backoff, forever.
Deliveries and outcomes of a lost connection are dropped by generation: the
broker redelivers those requests. ``basic_qos`` caps the unacknowledged
requests per module queue (``CEREBRO_PUBSUB_PREFETCH``); several processes
consuming the same queues share the work.

A broker that *refuses* the connection (``ACCESS_REFUSED``: wrong user or
password; ``NOT_ALLOWED``: no such virtual host), or a topology it refuses at
start (a queue declared with other arguments), is not an outage: retrying
cannot fix it. The session keeps the error in :attr:`Session.fatal` and sets
the stop event; ``cerebro subscribe`` then exits 2 with that message.

Module folders added or removed while it runs (:meth:`Session.modules_changed`,
thread-safe, from the core's reloader) are applied on the IOLoop: a new module's
queues are declared on a channel of their own (a refusal closes only that
channel: the module is reported and left out, the others go on), then consumed
like the others; a removed module's consumer is cancelled (its requests wait in
its queue). Changes made while disconnected are applied once the next
connection consumes.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Self, TypeVarTuple, Unpack, cast

import pika
import pika.exceptions
from pika.spec import Basic

from cerebro.clients.rabbitmq import refusal, refused
from cerebro.outcomes import backoff_delay
from cerebro.pubsub import topology
from cerebro.pubsub.contract import Delivery
from cerebro.reporting import report
from cerebro.settings import ConfigurationError

if TYPE_CHECKING:
    import queue

    from pika.channel import Channel
    from pika.frame import Method
    from pika.spec import BasicProperties, Confirm, Queue

    from cerebro.names import Names
    from cerebro.pubsub.contract import Outcome
    from cerebro.settings import Settings

log = logging.getLogger(__name__)

_Args = TypeVarTuple("_Args")


class Session:
    """The subscriber's AMQP connection and its IOLoop thread (see the module docstring)."""

    def __init__(self, settings: Settings, names: Names, functions: Mapping[str, Iterable[str]],
                 inbox: queue.SimpleQueue[Delivery], stop_event: threading.Event) -> None:
        self.settings = settings
        self.names = names
        # module -> its functions; changed on the session's thread only
        self.functions = {module: sorted(funcs) for module, funcs in functions.items()}
        self.inbox = inbox
        self.stop_event = stop_event
        self.params = topology.parameters(settings, f"cerebro-subscribe-{os.getpid()}")
        self.generation = 0
        self.connection: pika.SelectConnection | None = None
        self.channel: Channel | None = None
        self.consumer_tags: dict[str, str] = {}  # module -> its consumer's tag
        self.pending: dict[int, Outcome] = {}
        self.sequence = 0
        self.consuming = threading.Event()
        self.paused = threading.Event()
        self.received = 0
        self.settled = 0
        self.returned = 0
        self.acked = 0
        self.nacked = 0
        self.fatal: ConfigurationError | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._paused_io = False  # consumers cancelled by _pause (IOLoop side)
        self._added: dict[str, list[str]] = {}  # module changes not applied yet (under _lock)
        self._removed: set[str] = set()

    # -- the thread --

    def start(self) -> Self:
        """Start the connection thread; returns at once (see :attr:`consuming`)."""
        self._thread = threading.Thread(target=self._run, name="cerebro-amqp", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        """Declare, connect and run the IOLoop until stopped; reconnect after every loss."""
        while not self.stop_event.is_set():
            try:
                self._declare()
                connection = self._connect()
                connection.ioloop.start()
                connection.ioloop.close()
            except ConfigurationError as exc:  # e.g. a queue declared with other arguments
                self._stop_fatal(exc)
            except Exception as exc:
                self._failed(exc)
            finally:
                with self._lock:
                    self.connection = self.channel = None
                self.consuming.clear()
            if self.stop_event.is_set():
                break
            delay = backoff_delay(self._failures, self.settings.pubsub_reconnect_backoff,
                                  self.settings.max_backoff)
            self._failures += 1
            log.warning("reconnecting to RabbitMQ in %.1fs", delay)
            self.stop_event.wait(delay)
        log.info("subscriber connection closed")

    def _failed(self, exc: Exception) -> None:
        """A connection (or declaration) failed: stop on a refusal, else log it (retried)."""
        if refusal(exc) is not None:
            self._stop_fatal(exc)
        elif isinstance(exc, pika.exceptions.AMQPError) or isinstance(exc, OSError):
            log.warning("RabbitMQ at %s: %s", self._where(), exc or type(exc).__name__)
        else:
            report(exc, f"subscriber connection failed: {type(exc).__name__}: {exc}",
                   service="subscriber")

    def _stop_fatal(self, exc: BaseException) -> None:
        """Retrying cannot fix ``exc``: keep it as :attr:`fatal` and stop everything."""
        reason = refusal(exc)
        error = exc if isinstance(exc, ConfigurationError) else \
            refused(reason or str(exc), self.settings.broker_url.get_secret_value())
        if self.fatal is None:
            self.fatal = error
            log.critical("stopping the subscriber (exit 2): %s", error)
        self.stop_event.set()

    def _declare(self) -> None:
        """Declare the topology with a short blocking connection (idempotent)."""
        with pika.BlockingConnection(self.params) as connection:
            topology.declare(connection.channel(), self.names, self.functions)

    def _connect(self) -> pika.SelectConnection:
        """A new SelectConnection for a new generation (its callbacks do the rest)."""
        with self._lock:
            self.generation += 1
            self.pending = {}
            self.sequence = 0
            self.consumer_tags = {}
            self.received = self.settled = 0
            self.connection = pika.SelectConnection(
                self.params, on_open_callback=self._on_open,
                on_open_error_callback=self._on_open_error, on_close_callback=self._on_closed)
            return self.connection

    def _where(self) -> str:
        """host:port/vhost of the broker, for logs (never the credentials)."""
        return f"{self.params.host}:{self.params.port}/{self.params.virtual_host}"

    # -- IOLoop callbacks --

    def _on_open(self, connection: pika.SelectConnection) -> None:
        """Connection open: open the channel."""
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_open_error(self, connection: pika.SelectConnection, error: BaseException) -> None:
        """Could not connect: stop the loop; the thread retries (unless RabbitMQ refused)."""
        if refusal(error) is not None:
            self._stop_fatal(error)
        else:
            log.warning("cannot connect to RabbitMQ at %s: %s", self._where(), error)
        connection.ioloop.stop()

    def _on_closed(self, connection: pika.SelectConnection, reason: BaseException) -> None:
        """Connection lost or closed: stop the loop; the thread reconnects unless stopping."""
        self.consuming.clear()
        dropped = len({id(o) for o in self.pending.values()})
        if self.stop_event.is_set():
            log.info("connection closed: %s", reason)
        else:
            log.warning("connection to RabbitMQ lost: %s%s", reason,
                        f" ({dropped} request(s) awaiting confirms will be redelivered)"
                        if dropped else "")
        connection.ioloop.stop()

    def _on_channel_open(self, channel: Channel) -> None:
        """Channel open: confirm mode, then prefetch, then consume."""
        self.channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.add_on_cancel_callback(self._on_cancelled)
        channel.confirm_delivery(self._on_confirm, callback=self._on_confirm_mode)

    def _on_confirm_mode(self, _frame: Method[Confirm.SelectOk]) -> None:
        """Confirm mode on: set the prefetch limit (per consumer)."""
        # the channel's own callbacks run only once _on_channel_open has set it
        cast("Channel", self.channel).basic_qos(prefetch_count=self.settings.pubsub_prefetch,
                                                callback=self._on_qos)

    def _on_qos(self, _frame: Method[Basic.QosOk]) -> None:
        """Prefetch set: apply module changes not applied yet, consume every module queue."""
        self._paused_io = False
        self._apply_changes(self.generation)
        self._consume_all()
        self._failures = 0
        self.consuming.set()
        log.info("consuming %s from %s (prefetch %d per queue)",
                 ", ".join(self.names.queue(m) for m in sorted(self.functions)), self._where(),
                 self.settings.pubsub_prefetch)

    def _consume_all(self) -> None:
        """Start one consumer per module queue."""
        for module in sorted(self.functions):
            self._consume(module)

    def _consume(self, module: str) -> None:
        """Start the consumer of one module queue (on an open channel: after basic_qos, or
        checked by the caller)."""
        queue = self.names.queue(module)
        callback = functools.partial(self._on_message, module, queue, self.generation)
        self.consumer_tags[module] = cast("Channel", self.channel).basic_consume(queue, callback)

    def _pause(self, generation: int) -> None:
        """Cancel every consumer; set :attr:`paused` once the broker confirmed every cancel
        (deliveries sent before that are in the inbox by then)."""
        channel = self.channel
        if generation != self.generation or channel is None or not channel.is_open:
            return
        tags, self.consumer_tags = list(self.consumer_tags.values()), {}
        self._paused_io = True
        remaining = {"count": len(tags)}

        def cancelled(_frame: Method[Basic.CancelOk]) -> None:
            """One consumer cancelled."""
            remaining["count"] -= 1
            if remaining["count"] == 0:
                self.paused.set()

        for tag in tags:
            channel.basic_cancel(tag, callback=cancelled)
        if not tags:
            self.paused.set()

    def _resume(self, generation: int) -> None:
        """Consume again after a pause."""
        channel = self.channel
        self.paused.clear()
        self._paused_io = False
        if generation == self.generation and channel is not None and channel.is_open \
                and not self.consumer_tags and not self.stop_event.is_set():
            self._consume_all()

    # -- module folders added or removed (IOLoop side) --

    def _apply_changes(self, generation: int) -> None:
        """Apply the module changes not applied yet: cancel removed modules' consumers,
        declare (then consume) added ones. On a lost connection they wait for the next."""
        connection, channel = self.connection, self.channel
        if generation != self.generation or connection is None or channel is None \
                or not channel.is_open:
            return
        with self._lock:
            added, removed = self._added, self._removed
            self._added, self._removed = {}, set()
        for module in sorted(removed):
            self._drop(module)
        for module, funcs in sorted(added.items()):
            connection.channel(on_open_callback=functools.partial(
                self._declare_module, generation, module, funcs))

    def _drop(self, module: str) -> None:
        """Stop serving a removed module: its requests wait in its queue."""
        served = self.functions.pop(module, None)
        tag = self.consumer_tags.pop(module, None)
        if served is None and tag is None:
            return
        channel = self.channel
        if tag is not None and channel is not None and channel.is_open:
            channel.basic_cancel(tag)
        log.info("module %s removed: no longer consuming %s", module, self.names.queue(module))

    def _declare_module(self, generation: int, module: str, funcs: list[str],
                        channel: Channel) -> None:
        """A channel of its own is open: declare the new module's queues on it."""
        done = {"declared": False}
        channel.add_on_close_callback(functools.partial(
            self._on_declare_closed, module, funcs, done))
        topology.declare_module(channel, self.names, module, funcs, functools.partial(
            self._module_declared, generation, module, funcs, channel, done))

    def _module_declared(self, generation: int, module: str, funcs: list[str],
                         channel: Channel, done: dict[str, bool],
                         _frame: Method[Queue.BindOk]) -> None:
        """The new module's queues exist: consume its queue (unless paused: resume will)."""
        done["declared"] = True
        channel.close()
        main = self.channel
        if generation != self.generation or main is None or not main.is_open:
            self._requeue(module, funcs)
            return
        self.functions[module] = funcs
        if not self._paused_io and module not in self.consumer_tags:
            self._consume(module)
        log.info("new module %s: consuming %s", module, self.names.queue(module))

    def _on_declare_closed(self, module: str, funcs: list[str], done: dict[str, bool],
                           _channel: Channel, reason: Exception) -> None:
        """The declaring channel closed: fine once declared; refused by the broker (a queue
        with other arguments), the module is reported and left out; else try again later."""
        if done["declared"]:
            return
        if isinstance(reason, pika.exceptions.ChannelClosedByBroker):
            report(reason, f"new module {module}: its queues cannot be declared, so it is not "
                           f"served: {reason}", service="subscriber", module=module)
            return
        self._requeue(module, funcs)

    def _requeue(self, module: str, funcs: list[str]) -> None:
        """Keep an addition for the next connection (this one was lost meanwhile)."""
        with self._lock:
            if module not in self._removed:
                self._added.setdefault(module, funcs)

    def _on_channel_closed(self, channel: Channel, reason: Exception) -> None:
        """The broker closed the channel: close the connection so everything starts afresh."""
        if not self.stop_event.is_set():
            log.warning("channel closed by RabbitMQ: %s", reason)
        if self.connection is not None and self.connection.is_open:
            self.connection.close()

    def _on_cancelled(self, frame: Method[Basic.Cancel]) -> None:
        """The broker cancelled a consumer (its queue was deleted): reconnect and redeclare."""
        log.warning("consumer cancelled by RabbitMQ (%s): reconnecting", frame.method)
        if self.connection is not None and self.connection.is_open:
            self.connection.close()

    def _on_message(self, module: str, queue: str, generation: int, _channel: Channel,
                    method: Basic.Deliver, properties: BasicProperties, body: bytes) -> None:
        """A request: hand it to the worker."""
        self.received += 1
        # a Deliver the broker sent always carries its delivery tag and routing key
        self.inbox.put(Delivery(generation, module, queue, cast(int, method.delivery_tag),
                                cast(str, method.routing_key), method.redelivered, properties,
                                body))

    def _on_return(self, _channel: Channel, method: Basic.Return, properties: BasicProperties,
                   _body: bytes) -> None:
        """A mandatory message no queue took (the broker still confirms it)."""
        self.returned += 1
        log.warning("message %s for correlation id %s returned unroutable by %r/%r: %s "
                    "(is the reply_to queue or the results queue declared?)",
                    properties.message_id, properties.correlation_id, method.exchange,
                    method.routing_key, method.reply_text)

    def _on_confirm(self, frame: Method[Basic.Ack | Basic.Nack]) -> None:
        """A publisher confirm (ack or nack, maybe for several messages): settle requests."""
        method = frame.method
        ok = isinstance(method, Basic.Ack)
        if method.multiple:
            done = []
            for sequence in self.pending:
                if sequence > method.delivery_tag:
                    break
                done.append(sequence)
        else:
            done = [method.delivery_tag]
        for sequence in done:
            outcome = self.pending.pop(sequence, None)
            if outcome is None:
                continue
            outcome.waiting -= 1
            outcome.nacked = outcome.nacked or not ok
            if outcome.waiting == 0:
                self._settle(outcome)

    def _settle(self, outcome: Outcome) -> None:
        """Ack a request whose messages were all confirmed, else put it back in its queue."""
        tag = outcome.delivery.tag
        # on the IOLoop with the channel open (its confirms, or _publish, which checked)
        if outcome.nacked or not outcome.publishes:
            log.warning("request %s: %s; requeued", outcome.delivery.message_id,
                        "RabbitMQ refused its outcome" if outcome.nacked else "not handled")
            cast("Channel", self.channel).basic_nack(tag, requeue=True)
            self.nacked += 1
        else:
            cast("Channel", self.channel).basic_ack(tag)
            self.acked += 1
        self.settled += 1

    def _publish(self, outcomes: list[Outcome], generation: int) -> None:
        """IOLoop side of :meth:`submit`: publish every message, remember what awaits confirms."""
        channel = self.channel
        if generation != self.generation or channel is None or not channel.is_open:
            log.info("dropping %d outcome(s) of a lost connection: RabbitMQ redelivers them",
                     len(outcomes))
            return
        for outcome in outcomes:
            if not outcome.publishes:
                self._settle(outcome)
                continue
            for message in outcome.publishes:
                channel.basic_publish(message.exchange, message.routing_key, message.body,
                                      message.properties, mandatory=message.mandatory)
                self.sequence += 1
                self.pending[self.sequence] = outcome
                outcome.waiting += 1

    # -- called from other threads --

    def modules_changed(self, added: Mapping[str, Iterable[str]], removed: Iterable[str]) -> None:
        """Serve the modules ``added`` (module -> function names) and stop serving those
        ``removed``, on the IOLoop (thread-safe; applied on the next connection when down)."""
        with self._lock:
            for module in removed:
                self._added.pop(module, None)
                self._removed.add(module)
            for module, funcs in added.items():
                self._added[module] = sorted(funcs)
                self._removed.discard(module)
            generation = self.generation
        self._call(generation, self._apply_changes, generation)

    def submit(self, outcomes: list[Outcome], generation: int) -> bool:
        """Hand outcomes of deliveries of ``generation`` to the IOLoop (thread-safe)."""
        return self._call(generation, self._publish, outcomes, generation)

    def _call(self, generation: int, func: Callable[[Unpack[_Args]], object],
              *args: Unpack[_Args]) -> bool:
        """Run ``func(*args)`` on the IOLoop of ``generation``; False when it is gone."""
        with self._lock:
            connection = self.connection
            if connection is None or generation != self.generation:
                return False
            try:
                connection.ioloop.add_callback_threadsafe(functools.partial(func, *args))
            except Exception as exc:  # the loop is closing: the requests are redelivered
                log.info("connection closing: %s", exc)
                return False
        return True

    def pause(self, generation: int, timeout: float = 10.0) -> bool:
        """Stop deliveries and wait until the broker confirmed it; False when the connection
        was lost (or the wait timed out) meanwhile."""
        self.paused.clear()
        if not self._call(generation, self._pause, generation):
            return False
        return self.paused.wait(timeout) and generation == self.generation

    def resume(self, generation: int) -> None:
        """Consume again after :meth:`pause` (a no-op on a lost connection)."""
        self._call(generation, self._resume, generation)

    def wait_settled(self, generation: int, held: int = 0, timeout: float = 10.0) -> bool:
        """Wait until every delivery of ``generation`` but ``held`` is acked or requeued;
        False when the connection was lost or the wait timed out."""
        deadline = time.monotonic() + timeout
        while generation == self.generation and time.monotonic() < deadline:
            if self.received - self.settled <= held:
                return True
            time.sleep(0.002)
        return False

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop consuming, wait (up to ``timeout``) for outstanding confirms, close, join."""
        deadline = time.monotonic() + timeout

        def cancel() -> None:
            """Cancel every consumer so no new requests arrive."""
            if self.channel is not None and self.channel.is_open:
                for tag in self.consumer_tags.values():
                    self.channel.basic_cancel(tag)

        def close_when_settled() -> None:
            """Close once nothing awaits a confirm (or the deadline passed)."""
            connection = self.connection
            if connection is None:
                return
            if self.pending and time.monotonic() < deadline:
                connection.ioloop.call_later(0.05, close_when_settled)
                return
            if self.pending:
                log.warning("closing with %d message(s) unconfirmed: their requests will be "
                            "redelivered", len(self.pending))
            if connection.is_open:
                connection.close()
            else:
                connection.ioloop.stop()

        self.stop_event.set()
        with self._lock:
            connection = self.connection
            if connection is not None:
                try:
                    connection.ioloop.add_callback_threadsafe(cancel)
                    connection.ioloop.add_callback_threadsafe(close_when_settled)
                except Exception as exc:
                    log.info("connection already closing: %s", exc)
        if self._thread is not None:
            self._thread.join(timeout + 5)
