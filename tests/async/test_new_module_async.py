"""A module folder added while `cerebro serve` and `cerebro worker` run is served on the async
path without a restart (submit -> 202 -> signed callback), a broken one beside it disturbs
nothing, and a removed one is no longer consumed. Real RabbitMQ, Redis, API and worker."""

import os
import shutil
import time
import uuid

from kombu import Connection

from conftest import SECRET, wait_for
from receiver import Receiver
from support import REPO, TESTS

INTERVAL = "0.5"  # CEREBRO_RELOAD_INTERVAL: how often the API and the worker rescan the modules

EXPOSE = '''"""{name}: a module added while the services run."""

from cerebro import Field, endpoint


@endpoint(inputs={{"x": Field(int)}}, external=True)
def triple(x):
    """Triple a number, asynchronously."""
    return {{"triple": 3 * x, "module": "{name}"}}
'''


def add_module(package, name, source=None):
    """Create module folder ``name`` in ``package`` at once (written aside, then renamed)."""
    draft = package / f".{name}.draft"
    draft.mkdir()
    (draft / "__init__.py").write_text(f'"""{name}."""\n')
    (draft / "expose.py").write_text(source or EXPOSE.format(name=name))
    os.rename(draft, package / name)
    return time.time()


def _consumers(url, queue):
    """How many consumers ``queue`` has (0 when it does not exist)."""
    with Connection(url) as connection:
        try:
            return connection.default_channel.queue_declare(queue, passive=True).consumer_count
        except Exception:  # noqa: BLE001 - 404: no such queue
            return 0


def test_a_module_added_while_running_is_served_async_without_a_restart(
        async_env, server_factory, worker_factory, tmp_path, rabbit_url):
    package_name = f"newmods_{uuid.uuid4().hex[:8]}"
    package = tmp_path / package_name
    package.mkdir()
    (package / "__init__.py").write_text('"""Modules of one test."""\n')
    add_module(package, "first")
    env = dict(async_env, CEREBRO_MODULES_PACKAGE=package_name, CEREBRO_MODULES="",
               CEREBRO_RELOAD_INTERVAL=INTERVAL,
               PYTHONPATH=os.pathsep.join(map(str, (tmp_path, REPO, TESTS))))
    prefix = env["CEREBRO_QUEUE_PREFIX"]
    rec = Receiver(SECRET, port=int(env["CEREBRO_MAIN_APP_URL"].rsplit(":", 1)[1]))
    try:
        server = server_factory(env)
        worker = worker_factory(env)
        assert server.post("/v1/first/triple", {"x": 1})[0] == 202
        rec.wait(1)

        created = add_module(package, "second")
        add_module(package, "broken", "raise ImportError('this module is broken on purpose')\n")
        accepted = wait_for(lambda: _accepted(server, "second", created), timeout=30,
                            interval=0.05, what="the API accepting the new module")
        [callback] = [r for r in rec.wait(2, timeout=30) if r["path"].endswith("/second/triple")]
        assert callback["verified"] and callback["body"]["result"] == {"triple": 15,
                                                                       "module": "second"}
        print(f"\nnew module, async path: 202 after {accepted:.2f}s, callback after "
              f"{callback['at'] - created:.2f}s (CEREBRO_RELOAD_INTERVAL="
              f"{env['CEREBRO_RELOAD_INTERVAL']})")

        # the broken neighbour is reported, and disturbs nobody
        assert server.post("/v1/broken/triple", {"x": 1})[0] == 503
        assert server.post("/v1/first/triple", {"x": 2})[0] == 202
        rec.wait(3, timeout=30)
        assert "Started consuming from " + f"{prefix}.second" in worker.log()

        shutil.rmtree(package / "second")
        wait_for(lambda: server.post("/v1/second/triple", {"x": 1})[0] == 404, timeout=30,
                 what="the API forgetting the removed module")
        wait_for(lambda: _consumers(rabbit_url, f"{prefix}.second") == 0, timeout=30,
                 what="the worker no longer consuming the removed module's queue")
        assert _consumers(rabbit_url, f"{prefix}.first") == 1
        assert worker.proc.poll() is None
    finally:
        rec.stop()
        from cerebro.taskqueue.topology import delete
        names = [f"{prefix}.{m}" for m in ("first", "second", "broken")]
        delete(rabbit_url, names, names)


def _accepted(server, module, created):
    """Seconds from ``created`` when POST /v1/<module>/triple answers 202, else None."""
    status = server.post(f"/v1/{module}/triple", {"x": 5})[0]
    assert status in (202, 404), status
    return max(time.time() - created, 1e-6) if status == 202 else None
