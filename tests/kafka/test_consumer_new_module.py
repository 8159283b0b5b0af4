"""Module folders added or removed while `cerebro consume` runs: a new module's topic is consumed
without a restart (its handler answers the main app), a module whose import fails disturbs no
other, and a removed module's topic stops being consumed. A real consumer on a temporary modules
package, a real broker and a real main-app receiver; CEREBRO_RELOAD_INTERVAL sets the rescan."""

import os
import shutil
import time

from conftest import STATIC, wait_for
from kafka_broker import fresh_name
from support import TESTS

RELOAD = 0.5
EXPOSE = '''"""{name}: handles topic {topic}."""

from cerebro import Field, endpoint


@endpoint(inputs={{"n": Field(int)}}, topics=("{topic}",), extra="ignore")
def handle(n):
    """Echo ``n``."""
    return {{"n": n, "by": "{name}"}}
'''
BROKEN = '''"""A module whose import fails."""

raise ImportError("broken on purpose")
'''


def _module(root, name, expose):
    """Write module ``name`` beside the package, then move it in at once (a scan never sees it
    half written); returns when it is in."""
    staging = root / f".staging-{name}"
    staging.mkdir()
    (staging / "__init__.py").write_text(f'"""{name}."""\n')
    (staging / "expose.py").write_text(expose)
    staging.rename(root / "kmods" / name)


def _package(tmp_path, topic):
    """A modules package ``kmods`` holding module ``first`` (handles ``topic``)."""
    (tmp_path / "kmods").mkdir()
    (tmp_path / "kmods" / "__init__.py").write_text('"""Modules of the test."""\n')
    _module(tmp_path, "first", EXPOSE.format(name="first", topic=topic))


def _handled(main_app, key, module):
    """True once the event ``key`` reached the main app from ``module``'s handler."""
    call = main_app.stats(keys=True)["keys"].get(key)
    return call is not None and call[2] == f"/cerebro/events/{module}/handle"


def test_modules_added_and_removed_while_running(broker, receiver, consumers, tmp_path):
    """Add a module (and a broken one) and its topic is consumed within seconds; remove it and
    its topic no longer is; the first module serves throughout."""
    first_topic, second_topic = fresh_name("first"), fresh_name("second")
    broker.create_topics(first_topic, second_topic, partitions=2)
    _package(tmp_path, first_topic)
    main_app = receiver()
    consumer = consumers(main_app.url, CEREBRO_MODULES_PACKAGE="kmods",
                         CEREBRO_RELOAD_INTERVAL=str(RELOAD),
                         PYTHONPATH=os.pathsep.join([str(tmp_path), str(TESTS)]), **STATIC)
    send = _sender(broker)
    send(first_topic, "a1")
    wait_for(lambda: _handled(main_app, "a1", "first"), 30, message="the first module's event")

    _module(tmp_path, "broken", BROKEN)
    _module(tmp_path, "second", EXPOSE.format(name="second", topic=second_topic))
    added = time.monotonic()
    send(second_topic, "b1")
    wait_for(lambda: _handled(main_app, "b1", "second"), 25, 0.05, "the new module's event")
    print(f"\nnew module folder to its first handled event: {time.monotonic() - added:.2f}s")
    send(first_topic, "a2")
    wait_for(lambda: _handled(main_app, "a2", "first"), 15, message="the first module, still")
    assert "module broken" in consumer.log() and "broken on purpose" in consumer.log()

    shutil.rmtree(tmp_path / "kmods" / "second")
    wait_for(lambda: f"now consuming {first_topic} (was" in consumer.log(), 15,
             message="the removed module's topic dropped")
    send(second_topic, "b2")
    send(first_topic, "a3")
    wait_for(lambda: _handled(main_app, "a3", "first"), 20, message="the first module, again")
    time.sleep(1)
    assert "b2" not in main_app.stats(keys=True)["keys"]
    assert consumer.terminate() == 0


def _sender(broker):
    """``send(topic, event_id)``: produce one event and wait for its acknowledgement."""
    import json

    def send(topic, key):
        """Produce ``{"event_id": key, "n": 1}`` to ``topic``."""
        producer = broker.producer(acks="all")
        try:
            producer.send(topic, json.dumps({"event_id": key, "n": 1}).encode())
            producer.flush(30)
        finally:
            producer.close()

    return send
