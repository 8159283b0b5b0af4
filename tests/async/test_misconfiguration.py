"""Misconfiguration fails loudly on the async path: `cerebro worker` and `cerebro serve` stop with
exit 2 and a message naming the setting when RabbitMQ refuses the broker URL (wrong password, a
virtual host that does not exist or disappears) or Redis refuses the result backend (wrong
password, a database index out of range), at start-up or on a reconnection; a broker that is
not up is retried as before. Real RabbitMQ, Redis and programs."""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from conftest import wait_for
from support import cerebro_env, free_port, http

PASSWORD = "not-the-password-4711"
EXIT_WITHIN = 20  # seconds a misconfigured program may take to stop


def _broker(rabbit_url, *, password=None, vhost=None):
    """``rabbit_url`` with another password or virtual host."""
    head, _, rest = rabbit_url.partition("://")
    credentials, _, where = rest.partition("@")
    user, _, given = credentials.partition(":")
    host = where.split("/", 1)[0]
    return f"{head}://{user}:{password or given}@{host}/{vhost if vhost else ''}"


class Program:
    """One real `cerebro <command>` process of a test (its own process group)."""

    def __init__(self, command, env, log_path):
        self.log_path = log_path
        args = {"worker": ["worker", "--concurrency", "1", "--loglevel", "INFO"],
                "serve": ["serve", "--port", str(free_port()), "--processes", "1"]}[command]
        self.port = int(args[2]) if command == "serve" else None
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "cerebro", *args],
                                     env=cerebro_env(**env), stdout=open(log_path, "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def exits(self, timeout=EXIT_WITHIN):
        """Wait for the exit; return (exit code, seconds since start, output)."""
        code = self.proc.wait(timeout)
        return code, time.monotonic() - self.started, self.log_path.read_text(errors="replace")

    def stop(self):
        """SIGTERM, then SIGKILL, the whole group when still running."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def programs(tmp_path):
    """Start real programs; every one still running is stopped at teardown."""
    started = []

    def start(command, env):
        """Start `cerebro <command>` with ``env``."""
        started.append(Program(command, env, tmp_path / f"{command}-{len(started)}.log"))
        return started[-1]

    yield start
    for program in started:
        program.stop()


def _assert_exit_2(program, setting, *words):
    """The program stopped with 2, quickly, naming ``setting``, never showing the password."""
    code, seconds, output = program.exits()
    assert code == 2, output[-3000:]
    assert seconds < EXIT_WITHIN, seconds
    assert setting in output and all(w in output for w in words), output[-3000:]
    assert PASSWORD not in output
    return seconds


@pytest.mark.parametrize("wrong", ["password", "vhost"])
def test_a_refused_broker_url_stops_the_worker_and_the_api_with_exit_2(
        async_env, programs, rabbit_url, wrong):
    """ACCESS_REFUSED (wrong password) and NOT_ALLOWED (no such vhost) at start-up: exit 2."""
    url = _broker(rabbit_url, password=PASSWORD) if wrong == "password" else \
        _broker(rabbit_url, vhost=f"cerebro-missing-{uuid.uuid4().hex[:6]}")
    env = dict(async_env, CEREBRO_BROKER_URL=url)
    worker, api = programs("worker", env), programs("serve", env)
    reason = "ACCESS_REFUSED" if wrong == "password" else "NOT_ALLOWED"
    took = [_assert_exit_2(p, "CEREBRO_BROKER_URL", reason) for p in (worker, api)]
    print(f"\nbroker {wrong} refused: worker exit 2 in {took[0]:.2f}s, api in {took[1]:.2f}s")


@pytest.fixture
def redis_with_password(tmp_path):
    """A private Redis requiring a password: its URL with a wrong one."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--requirepass", "the-right-one",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(lambda: _answers(port), timeout=10, what="private Redis up")
    yield f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


def _answers(port):
    """True when something accepts connections on ``port``."""
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("wrong", ["password", "database"])
def test_a_refused_result_backend_stops_the_worker_and_the_api_with_exit_2(
        async_env, programs, redis_url, redis_with_password, wrong):
    """Redis refusing the password (WRONGPASS) or the database index: exit 2 at start-up."""
    url = redis_with_password if wrong == "password" else redis_url.rsplit("/", 1)[0] + "/999"
    env = dict(async_env, CEREBRO_RESULT_BACKEND=url)
    worker, api = programs("worker", env), programs("serve", env)
    took = [_assert_exit_2(p, "CEREBRO_RESULT_BACKEND", "Redis refused") for p in (worker, api)]
    print(f"\nredis {wrong} refused: worker exit 2 in {took[0]:.2f}s, api in {took[1]:.2f}s")


@pytest.fixture
def vhost(rabbit_url):
    """A fresh virtual host on the machine's RabbitMQ (rabbitmqctl), guest allowed; a function
    deleting it (also run at teardown)."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None or ":5672/" not in rabbit_url:
        pytest.skip("needs rabbitmqctl and the machine's RabbitMQ node")
    name = f"cerebro-test-{uuid.uuid4().hex[:8]}"

    def ctl_run(*args):
        """Run rabbitmqctl; skip the test when it cannot reach the node."""
        done = subprocess.run([ctl, *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            pytest.skip(f"rabbitmqctl {args[0]} failed: {done.stderr[-300:]}")

    ctl_run("add_vhost", name)
    ctl_run("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    deleted = []

    def delete():
        """Delete the virtual host (once)."""
        if not deleted:
            deleted.append(time.monotonic())
            ctl_run("delete_vhost", name)
        return deleted[0]

    yield _broker(rabbit_url, vhost=name), delete
    delete()


def test_a_vhost_deleted_under_running_programs_stops_them_with_exit_2(async_env, programs,
                                                                       vhost):
    """The worker and the API serve a virtual host that is then deleted: RabbitMQ closes their
    connections and refuses the reconnection (NOT_ALLOWED); both stop with exit 2 instead of
    retrying forever (the worker) or answering 503 to every async call (the API)."""
    url, delete = vhost
    env = dict(async_env, CEREBRO_BROKER_URL=url)
    worker, api = programs("worker", env), programs("serve", env)
    wait_for(lambda: " ready." in worker.log_path.read_text(), timeout=60, what="worker ready")
    api_url = f"http://127.0.0.1:{api.port}"
    wait_for(lambda: _status(api_url + "/v1/jobs/square") == 202, timeout=30, what="async 202")
    deleted_at = delete()
    for program in (worker, api):
        code, _, output = program.exits()
        assert code == 2, output[-3000:]
        assert "CEREBRO_BROKER_URL" in output and "NOT_ALLOWED" in output, output[-3000:]
    after = time.monotonic() - deleted_at
    print(f"\nvhost deleted under running programs: both exited 2 within {after:.2f}s")


def _status(url, body=None):
    """The status of POST ``url`` (default body {"x": 2}), or None when nothing answers."""
    try:
        return http("POST", url, body or {"x": 2}, timeout=5)[0]
    except OSError:
        return None


def test_a_broker_that_is_not_up_is_retried_not_fatal(async_env, programs):
    """Connection refused (RabbitMQ not up yet) is an outage, not a misconfiguration: both keep
    running and retrying; the API serves sync calls and answers 503 to async ones."""
    env = dict(async_env, CEREBRO_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    worker, api = programs("worker", env), programs("serve", env)
    api_url = f"http://127.0.0.1:{api.port}"
    wait_for(lambda: _status(api_url + "/v1/jobs/sync_add", {"a": 1}) == 200, timeout=30,
             what="API up")
    assert _status(api_url + "/v1/jobs/square") == 503
    time.sleep(3)
    assert worker.proc.poll() is None and api.proc.poll() is None
    assert "Cannot connect to" in worker.log_path.read_text()


def test_redis_refusing_a_running_api_stops_it_with_exit_2(async_env, programs, tmp_path):
    """Redis starts requiring a password under a running API: its next connection is refused
    (NOAUTH), and the API stops with exit 2 instead of answering 503 to every async call."""
    import redis

    from rabbit import RedisNode
    node = RedisNode(tmp_path)
    try:
        api = programs("serve", dict(async_env, CEREBRO_RESULT_BACKEND=node.url))
        api_url = f"http://127.0.0.1:{api.port}"
        wait_for(lambda: _status(api_url + "/v1/jobs/square") == 202, timeout=30,
                 what="async 202")
        admin = redis.Redis(port=node.port)
        admin.config_set("requirepass", PASSWORD)
        admin.client_kill_filter(_type="normal", skipme=True)  # the API reconnects, refused
        changed = time.monotonic()
        assert _status(api_url + "/v1/jobs/square") in (503, None)
        code, _, output = api.exits()
        assert code == 2, output[-3000:]
        assert "CEREBRO_RESULT_BACKEND" in output and "NOAUTH" in output, output[-3000:]
        assert PASSWORD not in output
        print(f"\nRedis refusing a running API: exit 2 {time.monotonic() - changed:.2f}s later")
    finally:
        node.close()


def test_a_connection_limit_is_transient_not_a_refusal():
    """RabbitMQ answers NOT_ALLOWED both for a missing vhost (fatal) and for a vhost or user
    connection limit reached (it passes, as during a rolling deploy): only the first stops."""
    from amqp.exceptions import AccessRefused, NotAllowed

    from cerebro.clients.rabbitmq import refusal
    assert refusal(NotAllowed(reply_text="NOT_ALLOWED - vhost nope not found",
                              reply_code=530))
    assert refusal(AccessRefused(reply_text="ACCESS_REFUSED - Login was refused using "
                                            "authentication mechanism PLAIN", reply_code=403))
    assert refusal(NotAllowed(reply_text="NOT_ALLOWED - connection limit (10) is reached for "
                                         "vhost '/'", reply_code=530)) is None
    assert refusal(NotAllowed(reply_text="NOT_ALLOWED - connection limit (3) is reached for "
                                         "user 'cerebro'", reply_code=530)) is None
