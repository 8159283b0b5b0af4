"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The platform's one Redis client: one pipelined connection for SET NX, GET and PING.
Tagline: One wire, many notes, answered in order.

The API marks submitted tasks (``SET ... NX``) and reads task states
(``GET``) through it, and ``cerebro up`` asks it ``PING`` (Celery's result
backend keeps its own redis-py client inside the worker). redis-py's asyncio
client checks a connection out of a pool, wraps every command in a retry
policy and a timeout context, and parses replies in Python: on the submit
path it cost more than publishing the task itself. :class:`RedisPipe` is one
connection per process on an :class:`asyncio.Protocol`; concurrent commands
are written back to back and their replies matched in order (Redis answers a
connection's commands in order). It speaks the part of RESP these commands
answer with (simple strings, errors, integers, bulk strings), with ``AUTH``
and ``SELECT`` from the URL.

Errors are never swallowed: a Redis error reply raises
:class:`redis.exceptions.ResponseError` (:class:`RedisRefused` when Redis refuses the
URL's password, user or database: retrying cannot fix that), a lost or unreachable connection
:class:`redis.exceptions.ConnectionError`, no answer in time
:class:`redis.exceptions.TimeoutError` (and the connection is dropped, so
no later reply can be matched to the wrong command). The next command
reconnects.

:func:`check_redis` asks Redis once at start-up, with redis-py as Celery's
result backend does, and raises a :class:`~cerebro.settings.ConfigurationError`
naming the setting when it refuses the URL (wrong password, ``NOAUTH``, a
database index out of range); an unreachable Redis is left to the program's
retries.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
from urllib.parse import unquote, urlsplit

from redis.exceptions import (AuthenticationError, ConnectionError, NoPermissionError, RedisError,
                              ResponseError, TimeoutError)

from envsettings import redact

from cerebro.settings import ConfigurationError
from cerebro.sweep import SWEEPS_PER_TIMEOUT, Sweep

log = logging.getLogger(__name__)

_Reply = str | int | bytes | None  # what the commands here answer with

RESULT_BACKEND_SETTING = "CEREBRO_RESULT_BACKEND"
# error replies retrying cannot fix: credentials, permissions, a database that does not exist
_REFUSALS = ("WRONGPASS", "NOAUTH", "NOPERM", "invalid username-password", "DB index",
             "Authentication required", "must be called with the client already authenticated")
# what Redis answers an AUTH when it has no password: redis-py goes on, and so does the pipe
_NO_PASSWORD_SET = "without any password configured"


class RedisRefused(ResponseError):
    """Redis refused the URL's password, user or database: retrying cannot fix it."""


def refusal(exc: BaseException) -> str | None:
    """Redis's words when ``exc`` refuses the credentials or the database (redis-py or the
    pipe), else None (unreachable, lost, timed out, busy loading: transient)."""
    if isinstance(exc, (AuthenticationError, NoPermissionError, RedisRefused)):
        return str(exc)
    if isinstance(exc, ResponseError) and any(word in str(exc) for word in _REFUSALS):
        return str(exc)
    return None


def refused(reason: str, url: str, setting: str = RESULT_BACKEND_SETTING) -> ConfigurationError:
    """The error stopping a program whose Redis URL Redis refused (never shows a password)."""
    if "DB index" in reason:
        hint = f"use a database number the server has (its `databases` setting) in {setting}"
    else:
        hint = f"fix the password (and user) in {setting}"
    reason = redact(reason, [urlsplit(url).password or ""])
    return ConfigurationError(f"Redis refused {setting} ({redact(url)}): {reason}; {hint} "
                              "(retrying cannot fix this)")


def check_redis(url: str, timeout: float, setting: str = RESULT_BACKEND_SETTING) -> None:
    """Ask Redis at ``url`` for a PING once: raise :func:`refused` when it refuses the URL's
    credentials or database; return when it answered or cannot be reached now."""
    if urlsplit(url).scheme not in ("redis", "rediss"):
        return
    import redis
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout,
                                  socket_timeout=max(2.0, timeout))
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        reason = refusal(exc)
        if reason is not None:
            raise refused(reason, url, setting) from None
        log.warning("Redis (%s:%s) not reachable at start-up: %s: %s; retrying as usual",
                    urlsplit(url).hostname, urlsplit(url).port or 6379, type(exc).__name__, exc)
    finally:
        client.close()


def encode_command(*args: str | bytes | int) -> bytes:
    """A RESP array of bulk strings (``str``, ``bytes`` or ``int`` arguments)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class _Protocol(asyncio.Protocol):
    """Replies in, matched in order to the waiting futures."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiters: collections.deque[asyncio.Future[_Reply]] = collections.deque()
        self.deadlines: collections.deque[float] = collections.deque()  # of the waiters, in order
        # its loop, kept: asyncio.get_running_loop() costs a getpid system call on Python 3.11
        self.loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[RedisError] = self.loop.create_future()

    # a stream connection (loop.create_connection) is always given a Transport
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Keep the transport."""
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Parse every complete reply in the buffer."""
        self.buffer += data
        while self.buffer:
            try:
                reply, used = _parse(self.buffer)
            except (ConnectionError, ValueError) as exc:
                self._fail(ConnectionError(f"Redis protocol error: {exc}"))
                return
            if used == 0:
                return
            del self.buffer[:used]
            if not self.waiters:
                self._fail(ConnectionError("Redis sent a reply nobody asked for"))
                return
            waiter = self.waiters.popleft()
            self.deadlines.popleft()
            if not waiter.done():
                if isinstance(reply, ResponseError):
                    waiter.set_exception(reply)
                else:
                    waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail every command still waiting."""
        reason = f"{type(exc).__name__}: {exc}" if exc else "closed by the server"
        self._fail(ConnectionError(f"Redis connection lost ({reason})"), close=False)

    def expect(self, deadline: float) -> asyncio.Future[_Reply]:
        """The future of the next command's reply, due by ``deadline`` (loop time)."""
        waiter: asyncio.Future[_Reply] = self.loop.create_future()
        self.waiters.append(waiter)
        self.deadlines.append(deadline)
        return waiter

    def _fail(self, error: RedisError, close: bool = True) -> None:
        """Fail all waiters with ``error`` and drop the connection."""
        self.deadlines.clear()
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        if not self.closed.done():
            self.closed.set_result(error)
        if close and self.transport is not None:
            self.transport.abort()


def _parse(buffer: bytearray) -> tuple[_Reply | ResponseError, int]:
    """``(reply, bytes used)`` of the first complete reply in ``buffer``; used 0 if incomplete."""
    end = buffer.find(b"\r\n")
    if end < 0:
        return None, 0
    kind, line = buffer[:1], bytes(buffer[1:end])
    if kind == b"+":
        return line.decode(), end + 2
    if kind == b"-":
        error = ResponseError(line.decode(errors="replace"))
        return (RedisRefused(str(error)) if refusal(error) else error), end + 2
    if kind == b":":
        return int(line), end + 2
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, end + 2
        stop = end + 2 + size
        if len(buffer) < stop + 2:
            return None, 0
        return bytes(buffer[end + 2:stop]), stop + 2
    raise ConnectionError(f"unexpected Redis reply type {kind!r}")


class RedisPipe:
    """One pipelined connection to the Redis of ``url`` (``redis://``, ``rediss://``)."""

    def __init__(self, url: str, connect_timeout: float = 1.0, timeout: float = 2.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"not a redis:// or rediss:// URL: {parts.scheme}://...")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.ssl = ssl.create_default_context() if parts.scheme == "rediss" else None
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        path = parts.path.strip("/")
        self.db = int(path) if path else 0
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._sweep = Sweep(timeout / SWEEPS_PER_TIMEOUT, self._overdue)

    async def execute(self, *args: str | bytes | int) -> _Reply:
        """Send one command; return its reply (``str``, ``int``, ``bytes`` or ``None``)."""
        protocol = self._protocol
        if protocol is None or protocol.closed.done():
            protocol = await self._connect()
        return await self._write(protocol, args)

    def send(self, *args: str | bytes | int) -> asyncio.Future[_Reply]:
        """Send one command now; a future of its reply. Connected, that is one write and no
        task (the caller awaits the future when it needs the answer: a command sent alongside
        other work costs no coroutine, task or loop turn of its own); else a task connecting
        first."""
        protocol = self._protocol
        if protocol is None or protocol.closed.done():
            return asyncio.ensure_future(self.execute(*args))
        return self._write(protocol, args)

    def _write(self, protocol: _Protocol, args: tuple[str | bytes | int, ...]
               ) -> asyncio.Future[_Reply]:
        """Queue the reply's future, write the command; the sweep times it out."""
        waiter = protocol.expect(protocol.loop.time() + self.timeout)
        # connected: connection_made set the transport before create_connection returned
        protocol.transport.write(encode_command(*args))  # type: ignore[union-attr]
        self._sweep.start()
        return waiter

    def _overdue(self) -> bool:
        """The sweep: an answer overdue fails the connection's commands (the replies come in
        order, so the oldest is the one to look at); True while answers are awaited."""
        protocol = self._protocol
        if protocol is None or not protocol.deadlines:
            return False
        if protocol.deadlines[0] <= asyncio.get_running_loop().time():
            protocol._fail(TimeoutError(f"no answer from Redis in {self.timeout:g}s"))
            return False
        return True

    async def _connect(self) -> _Protocol:
        """Open the connection (one attempt shared by concurrent callers)."""
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._open())
        try:
            return await asyncio.shield(self._connecting)
        except (OSError, asyncio.TimeoutError) as exc:
            raise ConnectionError(f"cannot connect to Redis at {self.host}:{self.port}: "
                                  f"{type(exc).__name__}: {exc}") from None

    async def _open(self) -> _Protocol:
        """Connect, authenticate and select the database."""
        loop = asyncio.get_running_loop()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(_Protocol, self.host, self.port, ssl=self.ssl),
            self.connect_timeout)
        hello: list[tuple[str | int, ...]] = []
        if self.password is not None:
            hello.append(("AUTH", self.username, self.password) if self.username
                         else ("AUTH", self.password))
        if self.db:
            hello.append(("SELECT", self.db))
        waiters = []
        for command in hello:
            waiter = protocol.expect(float("inf"))  # awaited with its own timeout below
            # connection_made set the transport before create_connection returned
            protocol.transport.write(encode_command(*command))  # type: ignore[union-attr]
            waiters.append(waiter)
        try:
            await _greeted(hello, waiters, self.timeout)
        except BaseException:
            protocol._fail(ConnectionError("Redis connection set-up failed"))
            raise
        self._protocol = protocol
        return protocol

    def close(self) -> None:
        """Close the connection."""
        self._sweep.stop()
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None


async def _greeted(hello: list[tuple[str | int, ...]], waiters: list[asyncio.Future[_Reply]],
                   timeout: float) -> None:
    """Wait for the answers to ``AUTH`` and ``SELECT``; raise :class:`RedisRefused` when Redis
    refuses them (an ``AUTH`` to a Redis without a password is accepted, as redis-py does)."""
    if not waiters:
        return
    replies = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), timeout)
    for command, reply in zip(hello, replies):
        if not isinstance(reply, BaseException):
            continue
        if command[0] == "AUTH" and _NO_PASSWORD_SET in str(reply):
            continue
        reason = refusal(reply)
        if reason is not None:
            raise RedisRefused(reason)
        raise reply
