"""Misconfiguration fails loudly on pub-sub: `cerebro subscribe` stops with exit 2 and a message
naming CEREBRO_BROKER_URL when RabbitMQ refuses the broker URL (wrong password, a virtual host
that does not exist, or one deleted under the running subscriber); a broker that is not up yet
is retried as before. Real RabbitMQ and subscriber processes."""

import shutil
import subprocess
import time
import uuid

import pytest

from support import free_port

PASSWORD = "not-the-password-4711"
EXIT_WITHIN = 20


def _broker(rabbit_url, *, password=None, vhost=None):
    """``rabbit_url`` with another password or virtual host."""
    head, _, rest = rabbit_url.partition("://")
    credentials, _, where = rest.partition("@")
    user, _, given = credentials.partition(":")
    host = where.split("/", 1)[0]
    return f"{head}://{user}:{password or given}@{host}/{vhost if vhost else ''}"


def _exits_2(sub, started):
    """The subscriber stopped with 2 in time, naming the setting and not the password; the
    seconds it took."""
    code = sub.proc.wait(EXIT_WITHIN)
    took = time.monotonic() - started
    output = sub.log()
    assert code == 2, output[-3000:]
    assert "CEREBRO_BROKER_URL" in output and "RabbitMQ refused" in output, output[-3000:]
    assert PASSWORD not in output
    return took, output


@pytest.mark.parametrize("wrong", ["password", "vhost"])
def test_a_refused_broker_url_stops_the_subscriber_with_exit_2(pubsub, rabbit_url, wrong):
    """ACCESS_REFUSED (wrong password) and NOT_ALLOWED (no such vhost) at start-up: exit 2."""
    url = _broker(rabbit_url, password=PASSWORD) if wrong == "password" else \
        _broker(rabbit_url, vhost=f"cerebro-missing-{uuid.uuid4().hex[:6]}")
    started = time.monotonic()
    sub = pubsub.subscriber(modules="echo", CEREBRO_BROKER_URL=url)
    took, output = _exits_2(sub, started)
    assert ("ACCESS_REFUSED" if wrong == "password" else "NOT_ALLOWED") in output
    print(f"\nsubscriber, broker {wrong} refused: exit 2 in {took:.2f}s")


def test_a_vhost_deleted_under_a_running_subscriber_stops_it_with_exit_2(pubsub, rabbit_url):
    """Serving a virtual host that is then deleted: RabbitMQ refuses the reconnection
    (NOT_ALLOWED) and the subscriber stops with exit 2 instead of reconnecting forever."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None or ":5672/" not in rabbit_url:
        pytest.skip("needs rabbitmqctl and the machine's RabbitMQ node")
    name = f"cerebro-test-{uuid.uuid4().hex[:8]}"
    for args in (["add_vhost", name], ["set_permissions", "-p", name, "guest", ".*", ".*", ".*"]):
        done = subprocess.run([ctl, *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            pytest.skip(f"rabbitmqctl {args[0]} failed: {done.stderr[-300:]}")
    try:
        sub = pubsub.subscriber(modules="echo", CEREBRO_BROKER_URL=_broker(rabbit_url, vhost=name))
        sub.consuming()
    finally:
        started = time.monotonic()
        subprocess.run([ctl, "delete_vhost", name], capture_output=True, timeout=60)
    took, output = _exits_2(sub, started)
    assert "NOT_ALLOWED" in output
    print(f"\nsubscriber, vhost deleted under it: exit 2 in {took:.2f}s")


def test_a_broker_that_is_not_up_is_retried_not_fatal(pubsub):
    """Connection refused (RabbitMQ not up yet) is an outage: the subscriber keeps retrying."""
    sub = pubsub.subscriber(modules="echo",
                            CEREBRO_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    time.sleep(4)
    assert sub.alive(), sub.log()[-3000:]
    assert "reconnecting to RabbitMQ" in sub.log()
