"""A module folder added while `cerebro subscribe` runs is served without a restart (its request
and retry queues declared and consumed), a broken one beside it disturbs nothing, and a removed
one is no longer consumed. Real RabbitMQ and subscriber."""

import os
import shutil
import time
import uuid

import pika

from conftest import wait_for
from support import REPO, TESTS

INTERVAL = "0.5"  # CEREBRO_RELOAD_INTERVAL: how often the subscriber rescans the modules

EXPOSE = '''"""{name}: a module added while the subscriber runs."""


def hello(name: str = "you"):
    """Say hello."""
    return {{"hello": name, "module": "{name}"}}
'''


def add_module(package, name, source=None):
    """Create module folder ``name`` in ``package`` at once (written aside, then renamed)."""
    draft = package / f".{name}.draft"
    draft.mkdir()
    (draft / "__init__.py").write_text(f'"""{name}."""\n')
    (draft / "expose.py").write_text(source or EXPOSE.format(name=name))
    os.rename(draft, package / name)
    return time.monotonic()


def _routed(client, key, payload, correlation_id):
    """Publish one request; False while no queue is bound for ``key`` (returned unroutable)."""
    try:
        client.publish(key, payload, correlation_id)
        return True
    except pika.exceptions.UnroutableError:
        return False


def _consumers(client, queue):
    """How many consumers ``queue`` has."""
    return client.channel.queue_declare(queue, passive=True).method.consumer_count


def test_a_module_added_while_running_is_served_without_a_restart(pubsub, names, tmp_path):
    package_name = f"newmods_{uuid.uuid4().hex[:8]}"
    package = tmp_path / package_name
    package.mkdir()
    (package / "__init__.py").write_text('"""Modules of one test."""\n')
    add_module(package, "first")
    pubsub.modules.update({"first", "second", "broken"})  # removed at teardown
    sub = pubsub.subscriber(package=package_name, modules="", CEREBRO_RELOAD_INTERVAL=INTERVAL,
                            PYTHONPATH=os.pathsep.join(map(str, (tmp_path, REPO, TESTS))))
    sub.consuming()
    client = pubsub.client()
    client.publish("first.hello", {"name": "a"}, "first-1")
    assert client.results(1, timeout=20)["first-1"][0][2]["result"]["module"] == "first"

    created = add_module(package, "second")
    add_module(package, "broken", "raise ImportError('this module is broken on purpose')\n")
    wait_for(lambda: _routed(client, "second.hello", {"name": "b"}, "second-1"), timeout=30,
             interval=0.05, message="a queue for the new module")
    routed = time.monotonic() - created
    results = client.results(1, timeout=30)
    served = time.monotonic() - created
    assert results["second-1"][0][2]["result"] == {"hello": "b", "module": "second"}
    print(f"\nnew module, pub-sub: queue bound after {routed:.2f}s, result after "
          f"{served:.2f}s (CEREBRO_RELOAD_INTERVAL={INTERVAL})")
    assert _consumers(client, names.requests + ".second") == 1
    wait_for(lambda: "not subscribing for new module(s) broken" in sub.log(), timeout=10,
             message="the broken module reported")

    client.publish("first.hello", {"name": "c"}, "first-2")  # the others go on
    assert client.results(1, timeout=20)["first-2"][0][2]["result"]["hello"] == "c"

    shutil.rmtree(package / "second")
    wait_for(lambda: _consumers(client, names.requests + ".second") == 0, timeout=30,
             message="the removed module's queue no longer consumed")
    assert _consumers(client, names.requests + ".first") == 1
    assert "module second removed" in sub.log()
    assert sub.alive()
    assert sub.terminate() == 0
