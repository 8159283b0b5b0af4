"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Celery task messages published from the IOLoop on one long-lived, confirmed AMQP channel.
Tagline: One line kept open, every letter signed for.

:class:`TaskPublisher` keeps one connection and one channel per API process
(:class:`~cerebro.clients.amqp.AMQPConnection`, an asyncio protocol on the
running loop: no threads, no per-request pool checkout) and publishes Celery
*protocol 2* messages that the unchanged Celery worker consumes. The message is
exactly what ``app.send_task`` sends:

* properties ``correlation_id`` (the task id), ``content_type``
  ``application/json``, ``content_encoding`` ``utf-8``, ``delivery_mode`` 2
  (persistent), ``priority`` 0, headers ``lang``, ``task``, ``id``,
  ``root_id``, ``parent_id``, ``group``, ``retries``, ``eta``, ``expires``,
  ``timelimit``, ``argsrepr``, ``kwargsrepr``, ``origin``...;
* body ``[args, kwargs, {"callbacks", "errbacks", "chain", "chord"}]`` in JSON;
* published to the default exchange with the queue name as routing key:
  straight into the queue, as Celery routes a direct queue (for a queue on a
  topic exchange, as Cerebro's quorum queues are, Celery goes through that
  exchange, which routes to the same queue), after declaring the queue, its
  exchange and the binding with the very :class:`kombu.Queue` the Celery app
  builds for it (so both sides always agree on type, durability and arguments:
  RabbitMQ refuses a declaration that differs from the existing queue's).

With confirms on (the default), :meth:`TaskPublisher.publish` returns only
once RabbitMQ confirmed the message (``basic.ack``); it is also published
``mandatory``, so a message no queue took is an error, never a silent loss.
A nack, a return, a timeout or a lost connection raise :class:`BrokerUnavailable`.

The connection is supervised by a task on the loop: it connects (within
``timeout``), and when the connection or channel closes it reconnects with
exponential backoff. While it is down, :meth:`~TaskPublisher.publish` fails
at once; while a connection attempt is under way it waits for that attempt.
A broker that *refuses* the URL (``ACCESS_REFUSED``: wrong credentials;
``NOT_ALLOWED``: no such virtual host) is not retried: retrying cannot fix it.
The publisher stops, logs why (naming ``CEREBRO_BROKER_URL``) and calls its
``on_refused`` handler (the API stops with exit 2).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from pamqp import commands
from yarl import URL

from cerebro.clients.amqp import AMQPConnection, HandshakeLost, Nacked, Returned
from cerebro.clients.amqpcodec import (EncodedProperties, EncodedTable, PropertiesTemplate,
                                       TableTemplate, encode_properties)
from cerebro.clients.rabbitmq import probe, refusal, refused

if TYPE_CHECKING:
    from collections.abc import Callable

    from kombu import Queue
    from pamqp.common import FieldTable

    from cerebro.settings import ConfigurationError

log = logging.getLogger(__name__)

# What a publish or connection attempt may raise when the broker is away or refuses.
AMQP_ERRORS = (ConnectionError, OSError, TimeoutError, asyncio.TimeoutError, Returned, Nacked)

_EMBED = b'{"callbacks":null,"errbacks":null,"chain":null,"chord":null}'
# the properties of every task message (persistent JSON), and their encoding but for the ids
_TASK_FIXED: dict[str, Any] = {"content_type": "application/json",
                               "content_encoding": "utf-8", "delivery_mode": 2, "priority": 0}
_TASK_PROPERTIES = PropertiesTemplate(**_TASK_FIXED)
_REPR_MAX = 1024  # Celery's argsrepr_maxsize


class BrokerUnavailable(Exception):
    """RabbitMQ did not take the message: down, reconnecting, refused, or no confirm in time."""


def task_headers(task_id: str, name: str, argsrepr: str, origin: str) -> FieldTable:
    """The headers of a Celery protocol-2 task message with no kwargs, workflow or ETA."""
    return {
        "lang": "py", "task": name, "id": task_id, "shadow": None, "eta": None,
        "expires": None, "group": None, "group_index": None, "retries": 0,
        "timelimit": [None, None], "root_id": task_id, "parent_id": None,
        "argsrepr": argsrepr[:_REPR_MAX], "kwargsrepr": "{}", "origin": origin,
        "ignore_result": None, "replaced_task_nesting": 0, "stamped_headers": None,
        "stamps": {},
    }


@functools.lru_cache(maxsize=64)
def _headers_template(name: str, origin: str) -> TableTemplate:
    """The encoding of :func:`task_headers` for one task name and origin: only the id (twice)
    and the argsrepr change from message to message."""
    return TableTemplate(task_headers("", name, "", origin), ("id", "root_id", "argsrepr"))


def task_message(task_id: str, name: str, args_json: bytes, argsrepr: str,
                 origin: str) -> tuple[EncodedTable, bytes]:
    """``(headers, body)`` of a Celery protocol-2 message with no kwargs, workflow or ETA:
    :func:`task_headers`, encoded as an AMQP table, and the body.

    ``args_json`` is the JSON array of the positional arguments (bytes),
    ``argsrepr`` their ``repr`` (shown by Flower and the worker's logs).
    """
    headers = _headers_template(name, origin).encode(
        {"id": task_id, "root_id": task_id, "argsrepr": argsrepr[:_REPR_MAX]})
    return headers, b"[" + args_json + b",{}," + _EMBED + b"]"


def _properties(headers: EncodedTable | FieldTable, task_id: str) -> EncodedProperties:
    """The task message's properties, encoded (from the template when ``headers`` are)."""
    if isinstance(headers, EncodedTable):
        return _TASK_PROPERTIES.encode(headers, task_id, task_id)
    return encode_properties(**_TASK_FIXED, correlation_id=task_id, message_id=task_id,
                             headers=headers)


def _unpublishable(queue: str, exchange_type: str) -> BrokerUnavailable | None:
    """Why ``queue`` cannot be published to (its exchange is neither direct nor topic)."""
    if exchange_type in ("direct", "topic"):
        return None
    return BrokerUnavailable(f"queue {queue} uses a {exchange_type} exchange; only queues on "
                             "direct or topic exchanges are published to")


def _failed(error: BaseException) -> asyncio.Future[None]:
    """A future failed with ``error`` (a publish that could not start)."""
    failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    failed.set_exception(error)
    return failed


def origin_nodename() -> str:
    """This process's node name as Celery writes it in ``origin`` (``gen<pid>@<host>``)."""
    return f"gen{os.getpid()}@{socket.gethostname()}"


class TaskPublisher:
    """Publish task messages on one supervised, confirmed AMQP channel of this process.

    ``queue_spec(name)`` returns the :class:`kombu.Queue` the Celery app uses
    for queue ``name`` (declared once per connection before the first publish).
    ``on_refused(error)`` is called once when RabbitMQ refuses the URL (see the
    module docstring; without one, the error is logged); :attr:`refused` keeps it.
    """

    def __init__(self, url: str | URL, queue_spec: Callable[[str], Queue], *,
                 confirm: bool = True, timeout: float = 1.0, backoff: float = 0.1,
                 max_backoff: float = 2.0, heartbeat: int = 30,
                 on_refused: Callable[[ConfigurationError], object] | None = None) -> None:
        self.given_url = str(url)  # as configured: what a refusal is probed with
        url = URL(url)
        if "heartbeat" not in url.query:
            url = url.update_query(heartbeat=str(heartbeat))
        self.url = url
        self.on_refused = on_refused
        self.refused: ConfigurationError | None = None
        self.queue_spec = queue_spec
        self.confirm = confirm
        self.timeout = timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.down_reason: str | None = "not connected yet"
        self._connection: AMQPConnection | None = None
        # queue -> its declaration (the exchange type), once per connection
        self._declared: dict[str, asyncio.Future[str]] = {}
        self._attempt: asyncio.Future[bool] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closed = False
        self._outage_logged = False

    # -- connection -------------------------------------------------------

    def start(self) -> None:
        """Start the connection supervisor on the running loop (idempotent)."""
        if self._supervisor is None and not self._closed:
            loop = asyncio.get_running_loop()
            self._attempt = loop.create_future()  # requests from now on wait for it
            self._supervisor = loop.create_task(self._supervise(), name="cerebro-amqp-publisher")

    def usable(self) -> bool:
        """True when a publish may succeed now: connected, or a connection attempt is under way."""
        if self._closed:
            return False
        self.start()
        connection = self._connection
        if connection is not None and not connection.is_closed:
            return True
        return self._attempt is not None and not self._attempt.done()

    async def _supervise(self) -> None:
        """Connect, wait for the connection to close, reconnect with backoff; forever."""
        delay = self.backoff
        loop = asyncio.get_running_loop()
        while not self._closed and not _cancelling():
            if self._attempt is None or self._attempt.done():
                self._attempt = loop.create_future()
            try:
                connection = await asyncio.wait_for(self._open(), self.timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # anything: the supervisor must never die
                if await self._stop_if_refused(exc):
                    return
                self._set_down(exc)
                self._attempt.set_result(False)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            self._connection, self._declared = connection, {}
            self._attempt.set_result(True)
            delay = self.backoff
            self.down_reason = None
            if self._outage_logged:
                log.warning("RabbitMQ reachable again (%s): async calls are accepted",
                            self._where())
                self._outage_logged = False
            await asyncio.wait([connection.closing])
            if _cancelling():  # the loop is being torn down: not an outage, never reconnect
                await _close_quietly(connection)
                raise asyncio.CancelledError
            self._set_down(connection.closing.exception() or "connection closed")
            await _close_quietly(connection)

    async def _open(self) -> AMQPConnection:
        """One connection with one channel in confirm mode (or not, per ``confirm``)."""
        return await AMQPConnection.open(self.url, timeout=self.timeout, confirm=self.confirm,
                                         name=f"cerebro-api-{os.getpid()}")

    async def _stop_if_refused(self, exc: Exception) -> bool:
        """True (and the publisher stopped, its handler called) when ``exc`` is RabbitMQ
        refusing the URL. A broker may drop a connection it was opening without saying why
        (no ``Connection.Close``): that case is asked again with py-amqp, which finds out."""
        reason = refusal(exc)
        if reason is None and isinstance(exc, HandshakeLost):
            loop = asyncio.get_running_loop()
            try:
                reason = await loop.run_in_executor(None, probe, self.given_url, self.timeout)
            except Exception as again:  # noqa: BLE001 - unreachable now: transient after all
                log.debug("RabbitMQ probe after %s: %s", type(exc).__name__, again)
        if reason is None:
            return False
        self.refused = refused(reason, self.given_url)
        self.down_reason = str(self.refused)
        if self._attempt is not None and not self._attempt.done():
            self._attempt.set_result(False)
        if self.on_refused is None:
            log.critical("%s", self.refused)
        else:
            self.on_refused(self.refused)
        return True

    def _set_down(self, exc: BaseException | str) -> None:
        """Remember why the broker is unusable; say so once per outage (with the exception)."""
        reason = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self.down_reason = reason
        log.debug("RabbitMQ (%s) not usable: %s", self._where(), reason)
        if not self._outage_logged and not self._closed:
            self._outage_logged = True
            log.error("RabbitMQ unreachable (%s): async calls answer 503 until it is back "
                      "(reconnecting with backoff): %s", self._where(), reason,
                      exc_info=None if isinstance(exc, str) else exc)

    def _where(self) -> str:
        """The broker's address without credentials."""
        return f"{self.url.host}:{self.url.port}"

    async def _ready_connection(self) -> AMQPConnection:
        """The open connection, waiting for a connection attempt under way; else raise at once."""
        connection = self._connection
        if connection is not None and not connection.is_closed:
            return connection
        self.start()
        attempt = self._attempt
        if attempt is not None and not attempt.done():
            await asyncio.shield(attempt)
            connection = self._connection
            if connection is not None and not connection.is_closed:
                return connection
        raise BrokerUnavailable(self.down_reason or "connection closed")

    async def _declare(self, connection: AMQPConnection, name: str) -> str:
        """Declare ``name``'s exchange, queue and binding as Celery does, once per connection."""
        queue = self.queue_spec(name)
        exchange = queue.exchange
        if exchange.name:
            await connection.rpc(commands.Exchange.Declare(
                exchange=exchange.name, exchange_type=exchange.type, durable=exchange.durable,
                auto_delete=exchange.auto_delete, arguments=exchange.arguments),
                commands.Exchange.DeclareOk)
        await connection.rpc(commands.Queue.Declare(
            queue=queue.name, durable=queue.durable, exclusive=queue.exclusive,
            auto_delete=queue.auto_delete, arguments=queue.queue_arguments),
            commands.Queue.DeclareOk)
        if exchange.name:
            await connection.rpc(commands.Queue.Bind(
                queue=queue.name, exchange=exchange.name, routing_key=queue.routing_key or "",
                arguments=queue.binding_arguments), commands.Queue.BindOk)
        return exchange.type

    # -- publishing -------------------------------------------------------

    async def _declared_type(self, connection: AMQPConnection, queue: str) -> str:
        """Declare ``queue`` once per connection (shared by concurrent callers); its exchange
        type."""
        declared = self._declared.get(queue)
        if declared is None:
            declared = self._declared[queue] = asyncio.ensure_future(
                self._declare(connection, queue))
        try:
            return await asyncio.shield(declared)
        except BaseException:
            if self._declared.get(queue) is declared and declared.done():
                del self._declared[queue]
            raise

    async def prepare(self, queue: str) -> bool:
        """Declare ``queue`` now, as before its first publish (a module just added); False
        when the broker is not usable now (the first publish declares it then)."""
        try:
            await self._declared_type(await self._ready_connection(), queue)
        except (BrokerUnavailable, *AMQP_ERRORS) as exc:
            log.debug("queue %s not declared ahead: %s: %s", queue, type(exc).__name__, exc)
            return False
        return True

    def forget(self, queue: str) -> None:
        """Declare ``queue`` again before its next publish (its module was removed)."""
        self._declared.pop(queue, None)

    async def publish(self, queue: str, task_id: str, headers: EncodedTable | FieldTable,
                      body: bytes) -> None:
        """Publish one persistent task message to ``queue``; return once RabbitMQ confirmed it.

        Raises :class:`BrokerUnavailable` when it cannot be (or was not) confirmed.
        """
        try:
            confirmed = self.publish_now(queue, task_id, headers, body)
            if confirmed is None:  # not connected, or the queue not declared yet: wait for it
                connection = await self._ready_connection()
                denial = _unpublishable(queue, await self._declared_type(connection, queue))
                if denial is not None:
                    raise denial
                confirmed = connection.publish(queue, _properties(headers, task_id), body,
                                               mandatory=True)
            await confirmed
        except BaseException as exc:
            error = self.failure(queue, exc)
            if error is exc:
                raise
            raise error from exc

    def publish_now(self, queue: str, task_id: str, headers: EncodedTable | FieldTable,
                    body: bytes) -> asyncio.Future[None] | None:
        """:meth:`publish` without a coroutine when the connection is open and ``queue`` is
        declared, as nearly always: the message is written now and the future settles with
        RabbitMQ's confirm (an error it fails with goes through :meth:`failure`); ``None``
        when :meth:`publish` has to wait for the connection or the declaration first."""
        if self._closed:
            return _failed(BrokerUnavailable("the publisher is closed"))
        connection = self._connection
        exchange_type = self._declared_now(queue)
        if connection is None or connection.is_closed or exchange_type is None:
            return None
        denial = _unpublishable(queue, exchange_type)
        if denial is not None:
            return _failed(denial)
        return connection.publish(queue, _properties(headers, task_id), body, mandatory=True)

    def failure(self, queue: str, exc: BaseException) -> BaseException:
        """What a publish to ``queue`` that failed with ``exc`` raises: an AMQP error (a
        connection gone, a return, a nack, no confirm in time) as :class:`BrokerUnavailable`,
        with the queue declared again before its next publish (a return: the queue is gone);
        anything else as itself."""
        if isinstance(exc, AMQP_ERRORS) and not isinstance(exc, BrokerUnavailable):
            self._declared.pop(queue, None)
            error = BrokerUnavailable(f"{type(exc).__name__}: {exc}")
            error.__cause__ = exc
            return error
        return exc

    def _declared_now(self, queue: str) -> str | None:
        """``queue``'s exchange type when its declaration is done and succeeded (no wait)."""
        declared = self._declared.get(queue)
        if declared is not None and declared.done() and not declared.cancelled() \
                and declared.exception() is None:
            return declared.result()
        return None

    async def close(self) -> None:
        """Stop reconnecting and close the connection."""
        self._closed = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            try:
                await self._supervisor
            except asyncio.CancelledError:
                if _cancelling():  # this close itself was cancelled (its time is up): go
                    raise
        if self._connection is not None:
            await _close_quietly(self._connection)


def _cancelling() -> bool:
    """True when the running task has been asked to cancel (its connection's tasks may be
    cancelled first: the loop is being torn down)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _close_quietly(connection: AMQPConnection) -> None:
    """Close ``connection`` (within 1 s); a broker already gone is no news (it was logged)."""
    await connection.close(1.0)
