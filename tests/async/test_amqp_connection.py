"""The API's publishing AMQP connection against the real RabbitMQ: big bodies, nacks, channel
errors, refusals, heartbeats and a broker gone silent (behind a TCP relay that stops relaying)."""

import asyncio
import uuid

import pytest
from kombu import Connection
from pamqp import commands
from yarl import URL

from cerebro.clients.amqp import AMQPConnection, ConnectionClosed, Nacked, vhost_of
from cerebro.clients.rabbitmq import refusal


def _props(message_id):
    """Properties of a persistent JSON message named ``message_id``."""
    return commands.Basic.Properties(content_type="application/json", delivery_mode=2,
                                     message_id=message_id, correlation_id=message_id)


async def _declare(connection, queue, **arguments):
    """Declare a durable classic queue named ``queue`` with ``arguments``."""
    await connection.rpc(commands.Queue.Declare(queue=queue, durable=True, arguments=arguments),
                         commands.Queue.DeclareOk)


def _drop(url, queue):
    """Delete ``queue``."""
    with Connection(url) as conn:
        conn.default_channel.queue_delete(queue)


class Relay:
    """A TCP relay to RabbitMQ on this loop; :meth:`freeze` stops relaying (bytes are
    swallowed both ways): a broker gone silent without closing the socket."""

    def __init__(self, target):
        self.target = target
        self.frozen = False
        self.server = None

    async def start(self):
        """Listen on a free port; return it."""
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _client(self, reader, writer):
        """Relay one client connection to the broker."""
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer),
                             return_exceptions=True)

    async def _pump(self, reader, writer):
        """Copy bytes until EOF, unless frozen."""
        while data := await reader.read(65536):
            if not self.frozen:
                writer.write(data)
        writer.close()

    def freeze(self):
        """Stop relaying."""
        self.frozen = True

    def close(self):
        """Stop listening."""
        self.server.close()


def test_vhost_of_reads_the_url_as_kombu_and_aiormq_do():
    assert vhost_of(URL("amqp://h//")) == "/"
    assert vhost_of(URL("amqp://h/")) == "/"
    assert vhost_of(URL("amqp://h")) == "/"
    assert vhost_of(URL("amqp://h/cerebro")) == "cerebro"


def test_a_body_past_frame_max_arrives_whole(rabbit_url):
    queue = f"cerebro-test-amqp-{uuid.uuid4().hex[:8]}"
    body = bytes(range(256)) * 1500  # 384,000 bytes: three body frames at 131,072

    async def scenario():
        connection = await AMQPConnection.open(URL(rabbit_url), timeout=2.0)
        try:
            assert connection.frame_max < len(body)
            await _declare(connection, queue)
            await connection.publish(queue, _props("big"), body)
        finally:
            await connection.close()

    try:
        asyncio.run(scenario())
        with Connection(rabbit_url) as conn:
            message = conn.default_channel.basic_get(queue, no_ack=True)
            assert message.body == body
            assert message.properties["message_id"] == "big"
    finally:
        _drop(rabbit_url, queue)


def test_a_message_the_broker_nacks_fails_its_publish_and_not_the_next(rabbit_url):
    full = f"cerebro-test-amqp-full-{uuid.uuid4().hex[:8]}"
    fine = f"cerebro-test-amqp-fine-{uuid.uuid4().hex[:8]}"

    async def scenario():
        connection = await AMQPConnection.open(URL(rabbit_url), timeout=2.0)
        try:
            # a queue that holds nothing and rejects what would overflow it: RabbitMQ nacks
            await _declare(connection, full, **{"x-max-length": 0,
                                                "x-overflow": "reject-publish"})
            await _declare(connection, fine)
            refused = connection.publish(full, _props("a"), b"{}")
            accepted = connection.publish(fine, _props("b"), b"{}")
            with pytest.raises(Nacked):
                await refused
            assert await accepted is None
            assert not connection.is_closed
        finally:
            await connection.close()

    try:
        asyncio.run(scenario())
    finally:
        _drop(rabbit_url, full)
        _drop(rabbit_url, fine)


def test_a_channel_error_closes_the_connection_with_the_brokers_reason(rabbit_url):
    queue = f"cerebro-test-amqp-{uuid.uuid4().hex[:8]}"

    async def scenario():
        connection = await AMQPConnection.open(URL(rabbit_url), timeout=2.0)
        await _declare(connection, queue)
        waiting = connection.publish(queue, _props("w"), b"{}")
        await waiting
        with pytest.raises(ConnectionClosed) as caught:  # declared again, differently
            await connection.rpc(commands.Queue.Declare(queue=queue, durable=False),
                                 commands.Queue.DeclareOk)
        assert caught.value.reply_code == 406 and "PRECONDITION_FAILED" in str(caught.value)
        assert connection.is_closed
        failed = connection.publish(queue, _props("x"), b"{}")  # fails at once, never hangs
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(failed, 1)

    try:
        asyncio.run(scenario())
    finally:
        _drop(rabbit_url, queue)


@pytest.mark.parametrize("change, code", [("password", 403), ("vhost", 530)])
def test_a_refused_login_or_vhost_says_why(rabbit_url, change, code):
    url = URL(rabbit_url)
    url = url.with_password("wrong-password") if change == "password" \
        else url.with_path(f"/no-such-vhost-{uuid.uuid4().hex[:6]}")

    async def scenario():
        with pytest.raises(ConnectionClosed) as caught:
            await AMQPConnection.open(url, timeout=2.0)
        return caught.value

    error = asyncio.run(scenario())
    assert error.reply_code == code
    assert refusal(error) is not None and "wrong-password" not in str(error)


def test_heartbeats_keep_an_idle_connection_open(rabbit_url):
    """RabbitMQ closes a connection that sent nothing for two heartbeat intervals."""
    queue = f"cerebro-test-amqp-{uuid.uuid4().hex[:8]}"

    async def scenario():
        connection = await AMQPConnection.open(URL(rabbit_url).update_query(heartbeat="1"),
                                               timeout=2.0)
        try:
            assert connection.heartbeat == 1
            await _declare(connection, queue)
            await asyncio.sleep(3.5)  # idle: only heartbeats cross
            assert not connection.is_closed
            await connection.publish(queue, _props("late"), b"{}")
        finally:
            await connection.close()

    try:
        asyncio.run(scenario())
    finally:
        _drop(rabbit_url, queue)


def test_a_broker_gone_silent_times_the_publish_out_and_drops_the_connection(rabbit_url):
    url = URL(rabbit_url)
    queue = f"cerebro-test-amqp-{uuid.uuid4().hex[:8]}"

    async def scenario():
        relay = Relay((url.host, url.port or 5672))
        port = await relay.start()
        connection = await AMQPConnection.open(
            url.with_port(port).update_query(heartbeat="1"), timeout=0.5)
        try:
            await _declare(connection, queue)
            relay.freeze()
            started = asyncio.get_running_loop().time()
            with pytest.raises(TimeoutError):
                await connection.publish(queue, _props("lost"), b"{}")
            assert asyncio.get_running_loop().time() - started < 1.5
            await asyncio.wait_for(asyncio.wait([connection.closing]), 6)
            assert "no heartbeat" in str(connection.closing.exception())
        finally:
            connection.abort()
            relay.close()

    try:
        asyncio.run(scenario())
    finally:
        _drop(rabbit_url, queue)
