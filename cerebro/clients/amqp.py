"""
Author:  Cerebro team
Date:    2026-11-29
Subject: One AMQP 0-9-1 connection that publishes with confirms, as an asyncio protocol over pamqp.
Tagline: Three frames out, one ack back, no hops between.

:class:`AMQPConnection` is the API's publishing connection to RabbitMQ: one
TCP (or TLS) connection with one channel, in confirm mode, written to and read
from by an :class:`asyncio.Protocol`. pamqp (the codec aiormq itself uses)
marshals and parses the frames; this module only keeps the protocol's state:

* the handshake (``Connection.Start``/``StartOk`` with PLAIN credentials,
  ``Tune``/``TuneOk``, ``Open``), channel 1 and ``Confirm.Select``;
* one RPC at a time (declarations: :meth:`AMQPConnection.rpc`);
* :meth:`AMQPConnection.publish` writes a message's three frames (method,
  header, body: more body frames past ``frame_max``; encoded by
  :mod:`~cerebro.clients.amqpcodec`, pamqp's bytes at less cost) in one ``write`` and returns
  a future settled in :meth:`~AMQPConnection.data_received` by the broker's
  ``Basic.Ack`` (``None``), ``Basic.Nack`` (:class:`Nacked`) or, for a
  ``mandatory`` message no queue took, ``Basic.Return`` (:class:`Returned`,
  matched by ``message_id`` as the broker returns the message before acking
  it); a timer fails it with :class:`TimeoutError` after ``timeout``;
* heartbeats: one every half interval, and a connection silent for three
  intervals is dropped as dead;
* the broker closing the channel or the connection (``Channel.Close``,
  ``Connection.Close``, with its reply code and text) or the socket going away
  fails every waiting future with :class:`ConnectionClosed` and resolves
  :attr:`AMQPConnection.closing`.

Why not aiormq (which it replaced, measured in ``bench/async_ack.py``): aiormq
routes every frame through a writer task and a queue, and every confirm through
a reader task, a frame receiver and a per-channel queue; a publish with its
confirm cost 141 µs of CPU there and 81 µs here, on the API's hot path.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
from typing import TYPE_CHECKING, TypeVar

from pamqp import commands, frame, header
from pamqp.body import ContentBody
from pamqp.constants import FRAME_BODY, FRAME_END, FRAME_HEADER_SIZE
from pamqp.heartbeat import Heartbeat
from yarl import URL

from cerebro.clients import amqpcodec
from cerebro.clients.amqpcodec import EncodedProperties
from cerebro.sweep import SWEEPS_PER_TIMEOUT, Sweep

if TYPE_CHECKING:
    from pamqp.base import Frame
    from pamqp.common import FieldTable

log = logging.getLogger(__name__)
_Reply = TypeVar("_Reply", bound="Frame")

DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671}
DEFAULT_FRAME_MAX = 131072
SILENT_INTERVALS = 3  # heartbeat intervals without a byte from the broker: the link is dead
CHANNEL = 1
_FRAME_HEAD = struct.Struct(">BHI")  # type, channel, size
_CAPABILITIES: FieldTable = {"publisher_confirms": True, "basic.nack": True,
                             "authentication_failure_close": True,
                             "consumer_cancel_notify": True}


class ConnectionClosed(ConnectionError):
    """The broker closed the connection or the channel (``reply_code`` and ``reply_text`` say
    why: e.g. 403 ACCESS_REFUSED, 530 NOT_ALLOWED, 320 CONNECTION_FORCED), or it was lost
    (``reply_code`` 0)."""

    def __init__(self, reply_text: str, reply_code: int = 0) -> None:
        super().__init__(f"{reply_code} {reply_text}" if reply_code else reply_text)
        self.reply_code = reply_code
        self.reply_text = reply_text


class HandshakeLost(ConnectionClosed):
    """The broker dropped the connection while it was being opened, without saying why."""


class Returned(Exception):
    """The broker returned a ``mandatory`` message: no queue took it."""


class Nacked(Exception):
    """The broker refused to take responsibility for a message (``Basic.Nack``)."""


def vhost_of(url: URL) -> str:
    """The virtual host a broker URL names (``amqp://h//`` and ``amqp://h/`` are ``/``)."""
    if url.path in ("", "/"):
        return "/"
    return url.path[1:].replace("%2F", "/")


class AMQPConnection(asyncio.Protocol):
    """One connection with one channel; build it with :meth:`open`."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        # its loop, kept: asyncio.get_running_loop() costs a getpid system call on Python 3.11
        self.loop = asyncio.get_running_loop()
        self.closing: asyncio.Future[None] = self.loop.create_future()
        self.confirm = False
        self.frame_max = DEFAULT_FRAME_MAX
        self.heartbeat = 0
        self._buffer = bytearray()
        self._reply: asyncio.Future[Frame] | None = None  # the one RPC under way
        self._rpc_lock = asyncio.Lock()
        self._tag = 0
        # delivery tag -> (its confirm, its message id, its deadline), oldest first
        self._confirms: dict[int, tuple[asyncio.Future[None], str | None, float]] = {}
        self._sweep = Sweep(timeout / SWEEPS_PER_TIMEOUT, self._expire_late)
        self._tags: dict[str, int] = {}  # message_id -> delivery tag, for returns
        # (exchange, routing key, mandatory) -> its Basic.Publish frame, written once
        self._publish_frames: dict[tuple[str, str, bool], bytes] = {}
        self._returned: commands.Basic.Return | None = None  # a return whose header is next
        self._returned_left = 0  # its body bytes still to come
        self._returned_id: str | None = None
        self._last_read = 0.0
        self._opened = False  # past Connection.OpenOk
        self._beat: asyncio.TimerHandle | None = None

    # -- opening -------------------------------------------------------------

    @classmethod
    async def open(cls, url: URL, *, timeout: float, confirm: bool = True,
                   name: str = "cerebro") -> AMQPConnection:
        """Connect to ``url`` (its ``heartbeat`` query parameter sets the interval, in
        seconds), log in, open channel 1 and, with ``confirm``, turn publisher confirms on.

        Raises :class:`ConnectionClosed` when the broker refuses (its reply code and text
        tell why), :class:`OSError` or :class:`TimeoutError` when it cannot be reached.
        """
        scheme = url.scheme or "amqp"
        context = ssl.create_default_context() if scheme == "amqps" else None
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            lambda: cls(timeout), url.host or "127.0.0.1", url.port or DEFAULT_PORTS[scheme],
            ssl=context)
        try:
            await connection._handshake(url, name, int(url.query.get("heartbeat", "60")))
            await connection.rpc(commands.Channel.Open(), commands.Channel.OpenOk)
            if confirm:
                await connection.rpc(commands.Confirm.Select(), commands.Confirm.SelectOk)
                connection.confirm = True
        except BaseException:
            connection.abort()
            raise
        return connection

    async def _handshake(self, url: URL, name: str, heartbeat: int) -> None:
        """Protocol header, ``Start``/``StartOk``, ``Tune``/``TuneOk``, ``Open``/``OpenOk``."""
        start = await self._call(None, commands.Connection.Start, 0)
        if b"PLAIN" not in start.mechanisms.encode().split():
            raise ConnectionClosed(f"the broker offers no PLAIN login ({start.mechanisms})")
        credentials = f"\0{url.user or 'guest'}\0{url.password or 'guest'}"
        tune = await self._call(
            commands.Connection.StartOk(
                client_properties={"product": "cerebro", "connection_name": name,
                                   "capabilities": _CAPABILITIES},
                mechanism="PLAIN", response=credentials, locale="en_US"),
            commands.Connection.Tune, 0)
        self.frame_max = tune.frame_max or DEFAULT_FRAME_MAX
        self.heartbeat = min(heartbeat, tune.heartbeat) if tune.heartbeat else heartbeat
        self._send(commands.Connection.TuneOk(channel_max=tune.channel_max,
                                              frame_max=self.frame_max,
                                              heartbeat=self.heartbeat), 0)
        await self._call(commands.Connection.Open(virtual_host=vhost_of(url)),
                         commands.Connection.OpenOk, 0)
        self._opened = True
        if self.heartbeat > 0:
            self._beat = asyncio.get_running_loop().call_later(self.heartbeat / 2,
                                                               self._heartbeat)

    async def _call(self, method: Frame | None, expected: type[_Reply], channel: int) -> _Reply:
        """Send ``method`` (the protocol header when None) and wait for the ``expected``
        reply, within the timeout."""
        if self.closing.done():
            raise self._closed_error()
        reply: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._reply = reply
        if method is None:
            self._write(header.ProtocolHeader().marshal())
        else:
            self._send(method, channel)
        try:
            answer = await asyncio.wait_for(asyncio.shield(reply), self.timeout)
        finally:
            self._reply = None
        if not isinstance(answer, expected):
            raise ConnectionClosed(f"expected {expected.__name__}, the broker sent "
                                   f"{type(answer).__name__}")
        return answer

    async def rpc(self, method: Frame, expected: type[_Reply]) -> _Reply:
        """One synchronous method on the channel (a declaration); its reply."""
        async with self._rpc_lock:
            return await self._call(method, expected, CHANNEL)

    # -- publishing ------------------------------------------------------------

    def publish(self, routing_key: str,
                properties: commands.Basic.Properties | EncodedProperties, body: bytes,
                exchange: str = "", mandatory: bool = True) -> asyncio.Future[None]:
        """Write one message; the future settles with the broker's confirm (at once when
        confirms are off). The message id (``properties.message_id``) must be unique among
        messages in flight (a return names the message by it). ``properties`` may come
        encoded already (:func:`~cerebro.clients.amqpcodec.encode_properties`: the publish
        path's, at a fraction of pamqp's cost)."""
        loop = self.loop
        settled: asyncio.Future[None] = loop.create_future()
        if self.closing.done():
            settled.set_exception(self._closed_error())
            return settled
        if not isinstance(properties, EncodedProperties):
            properties = EncodedProperties(properties.marshal(), properties.message_id)
        message_id = properties.message_id
        key = (exchange, routing_key, mandatory)
        method = self._publish_frames.get(key)
        if method is None:
            method = self._publish_frames[key] = amqpcodec.method_frame(commands.Basic.Publish(
                exchange=exchange, routing_key=routing_key, mandatory=mandatory), CHANNEL)
        step = self.frame_max - FRAME_HEADER_SIZE - 1
        parts = [method, amqpcodec.header_frame(CHANNEL, len(body), properties.data)]
        parts += [amqpcodec.frame(FRAME_BODY, CHANNEL, body[at:at + step])
                  for at in range(0, len(body), step)]
        if not self.confirm:
            self._write(b"".join(parts))
            settled.set_result(None)
            return settled
        self._tag += 1
        tag = self._tag
        self._confirms[tag] = (settled, message_id, loop.time() + self.timeout)
        if message_id:
            self._tags[message_id] = tag
        self._sweep.start()
        self._write(b"".join(parts))
        return settled

    def _expire_late(self) -> bool:
        """The sweep: fail the confirms overdue (the oldest first: one timeout for all, so the
        deadlines are in tag order); True while confirms are awaited."""
        now = asyncio.get_running_loop().time()
        for tag, (_, _, deadline) in list(self._confirms.items()):
            if deadline > now:
                return True
            self._settle(tag, False, TimeoutError(
                f"no confirm from RabbitMQ in {self.timeout:g}s"))
        return False

    def _forget(self, tag: int) -> tuple[asyncio.Future[None], str | None, float] | None:
        """Drop the bookkeeping of ``tag`` (settled); what it was, or None."""
        pending = self._confirms.pop(tag, None)
        if pending is not None and pending[1] and self._tags.get(pending[1]) == tag:
            del self._tags[pending[1]]
        return pending

    # -- reading ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = transport  # type: ignore[assignment]  # a stream transport
        self._last_read = self.loop.time()

    def data_received(self, data: bytes) -> None:
        """Parse every complete frame received and act on it."""
        self._last_read = self.loop.time()
        buffer = self._buffer
        buffer += data
        while len(buffer) >= FRAME_HEADER_SIZE:
            size = FRAME_HEADER_SIZE + _FRAME_HEAD.unpack_from(buffer)[2] + 1
            if len(buffer) < size:
                return
            if buffer[size - 1] != FRAME_END:
                self._lost(ConnectionClosed("malformed frame from the broker"))
                return
            ack = amqpcodec.ack_of(buffer[:size])  # the frame nearly every read brings
            if ack is not None:
                del buffer[:size]
                self._settle(ack[0], ack[1], None)
                continue
            try:
                _, channel, value = frame.unmarshal(bytes(buffer[:size]))
            except Exception as exc:  # noqa: BLE001 - pamqp's errors: a broken stream
                self._lost(ConnectionClosed(f"unreadable frame from the broker: {exc}"))
                return
            del buffer[:size]
            self._on_frame(channel, value)

    def _on_frame(self, channel: int, value: object) -> None:
        """One frame from the broker."""
        if isinstance(value, commands.Basic.Ack):
            self._settle(value.delivery_tag, value.multiple, None)
        elif isinstance(value, commands.Basic.Nack):
            self._settle(value.delivery_tag, value.multiple, Nacked("RabbitMQ nacked it"))
        elif isinstance(value, commands.Basic.Return):
            self._returned, self._returned_id = value, None
        elif isinstance(value, header.ContentHeader):
            self._returned_left = value.body_size
            self._returned_id = value.properties.message_id
            self._returned_done()
        elif isinstance(value, ContentBody):
            self._returned_left -= len(value.value or b"")
            self._returned_done()
        elif isinstance(value, Heartbeat):
            return
        elif isinstance(value, commands.Connection.Close):
            self._send(commands.Connection.CloseOk(), 0)
            self._lost(ConnectionClosed(value.reply_text, value.reply_code or 0))
        elif isinstance(value, commands.Channel.Close):
            self._send(commands.Channel.CloseOk(), channel)
            self._lost(ConnectionClosed(f"channel closed: {value.reply_text}",
                                        value.reply_code or 0))
        elif isinstance(value, commands.Connection.CloseOk):
            self._lost(ConnectionClosed("connection closed"))
        elif self._reply is not None and not self._reply.done():
            self._reply.set_result(value)  # type: ignore[arg-type]  # a method frame
        else:
            log.debug("AMQP frame ignored on channel %d: %r", channel, value)

    def _returned_done(self) -> None:
        """A returned message was read whole: fail its publish."""
        if self._returned is None or self._returned_left > 0:
            return
        reply, self._returned = self._returned, None
        tag = self._tags.get(self._returned_id or "")
        if tag is not None and tag in self._confirms:
            self._settle(tag, False, Returned(f"{reply.reply_code} {reply.reply_text}: "
                                              f"no queue took it (routing key "
                                              f"{reply.routing_key!r})"))
        else:
            log.warning("RabbitMQ returned message %s (%s %s)", self._returned_id,
                        reply.reply_code, reply.reply_text)

    def _settle(self, tag: int, multiple: bool, error: Exception | None) -> None:
        """Settle the confirm of ``tag`` (and every earlier one, with ``multiple``)."""
        tags = [t for t in self._confirms if t <= tag] if multiple else [tag]
        for each in tags:
            pending = self._forget(each)
            if pending is not None and not pending[0].done():
                if error is None:
                    pending[0].set_result(None)
                else:
                    pending[0].set_exception(error)

    # -- heartbeats, closing -----------------------------------------------------

    def _heartbeat(self) -> None:
        """Send a heartbeat; drop a connection the broker has been silent on for too long."""
        if self.closing.done():
            return
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_read > SILENT_INTERVALS * self.heartbeat:
            self._lost(ConnectionClosed(f"no heartbeat from the broker in "
                                        f"{SILENT_INTERVALS * self.heartbeat}s"))
            return
        self._write(frame.marshal(Heartbeat(), 0))
        self._beat = loop.call_later(self.heartbeat / 2, self._heartbeat)

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket is gone."""
        reason = f"connection lost: {type(exc).__name__}: {exc}" if exc else "connection lost"
        self._lost(ConnectionClosed(reason) if self._opened else HandshakeLost(reason))

    def _lost(self, error: ConnectionClosed) -> None:
        """The connection is over: fail everything waiting, resolve :attr:`closing`."""
        if self._beat is not None:
            self._beat.cancel()
        if not self.closing.done():
            self.closing.set_exception(error)
            self.closing.exception()  # retrieved: nobody has to await it
        if self._reply is not None and not self._reply.done():
            self._reply.set_exception(error)
        self._sweep.stop()
        for tag in list(self._confirms):
            self._settle(tag, False, error)
        if self.transport is not None:
            self.transport.close()

    def _closed_error(self) -> ConnectionClosed:
        """Why the connection is over."""
        error = self.closing.exception() if self.closing.done() else None
        return error if isinstance(error, ConnectionClosed) else \
            ConnectionClosed("connection closed")

    @property
    def is_closed(self) -> bool:
        """True once the connection is over (lost, closed by either side)."""
        return self.closing.done()

    async def close(self, timeout: float = 1.0) -> None:
        """Close politely (``Connection.Close``, then its ``CloseOk`` or ``timeout``)."""
        if self.closing.done():
            return
        self._send(commands.Connection.Close(reply_code=200, reply_text="bye", class_id=0,
                                             method_id=0), 0)
        try:
            await asyncio.wait_for(asyncio.shield(self.closing), timeout)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        self.abort()

    def abort(self) -> None:
        """Drop the connection at once."""
        self._lost(ConnectionClosed("connection closed"))
        if self.transport is not None:
            self.transport.abort()

    # -- writing -----------------------------------------------------------------

    def _send(self, method: Frame, channel: int) -> None:
        """Write one method frame."""
        self._write(frame.marshal(method, channel))

    def _write(self, data: bytes) -> None:
        """Write bytes, unless the socket is gone."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)
