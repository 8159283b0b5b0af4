"""`cerebro worker` exits non-zero on a fatal start-up error, so a supervisor sees the failure."""

import subprocess
import sys

from kombu import Connection, Queue

from support import cerebro_env


def test_worker_exits_1_when_its_queue_cannot_be_declared(async_env, rabbit_url):
    """A classic queue where Cerebro declares a quorum one is refused by RabbitMQ
    (PRECONDITION_FAILED): the worker logs it and exits 1, not 0."""
    queue = f"{async_env['CEREBRO_QUEUE_PREFIX']}.jobs"
    with Connection(rabbit_url) as connection:  # a classic queue, and no exchange of that name
        Queue(queue, durable=True).bind(connection.default_channel).queue_declare()
    env = cerebro_env(**dict(async_env, CEREBRO_QUEUE_TYPE="quorum"))
    result = subprocess.run([sys.executable, "-m", "cerebro", "worker", "--queues", "jobs",
                             "--concurrency", "1", "--loglevel", "INFO"],
                            env=env, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert "PRECONDITION_FAILED" in output
    assert result.returncode == 1, output[-2000:]
