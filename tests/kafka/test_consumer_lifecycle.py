"""The model lifecycle on the Kafka path: a real `cerebro consume` process on a real broker
follows a rollback (every event after it is served by the version rolled back to), and a
canary keeps each Kafka record key on one version. The main-app receiver records which
version answered each event."""

import time

from cerebro.lifecycle import state as lifecycle
from conftest import STATIC, produce, wait_for
from kafka_broker import fresh_name
from lifecycle_support import MODULE, PACKAGE, publish
from support import TEST_SIGNING_KEY

RELOAD = 0.3


def _versions(main_app, ids):
    """The model version that answered each event id (None while not answered)."""
    versions = main_app.stats(keys=True)["versions"]
    return {i: versions.get(i) for i in ids}


def _send(broker, topic, ids, keys=None):
    """Produce one event per id (``x`` = 1.0), with Kafka keys when given."""
    produce(broker, topic, [{"event_id": i, "x": 1.0} for i in ids], keys=keys)


def test_rollback_and_canary_on_the_kafka_path(broker, receiver, consumers, tmp_path):
    """Events after a rollback carry the version rolled back to; in a 50 % canary each record
    key is always served by the same version, and both versions serve some keys."""
    topic = fresh_name("versioned")
    broker.create_topics(topic, partitions=2)
    volume = tmp_path / "volume"
    base = publish(volume, scale=2.0)
    newer = publish(volume, scale=3.0)
    main_app = receiver()
    consumer = consumers(main_app.url, **PACKAGE, CEREBRO_TEST_VERSIONED_TOPIC=topic,
                         CEREBRO_RELOAD_INTERVAL=str(RELOAD), **STATIC)
    before = [f"before-{i}" for i in range(20)]
    _send(broker, topic, before)
    seen = wait_for(lambda: all(_versions(main_app, before).values())
                    and _versions(main_app, before), 60, message="the first events")
    assert set(seen.values()) == {newer}

    lifecycle.rollback(volume, MODULE, key=TEST_SIGNING_KEY)
    time.sleep(RELOAD * 3)  # every process follows within the reload interval
    after = [f"after-{i}" for i in range(20)]
    _send(broker, topic, after)
    seen = wait_for(lambda: all(_versions(main_app, after).values())
                    and _versions(main_app, after), 30, message="the events after rollback")
    assert set(seen.values()) == {base}

    lifecycle.start_candidate(volume, MODULE, newer, "canary", key=TEST_SIGNING_KEY,
                              percent=50)
    time.sleep(RELOAD * 3)
    listing = [f"listing-{i}" for i in range(30)]
    rounds = [[f"r{r}-{key}" for key in listing] for r in range(2)]
    for ids in rounds:
        _send(broker, topic, ids, keys=listing)
    every = [i for ids in rounds for i in ids]
    seen = wait_for(lambda: all(_versions(main_app, every).values())
                    and _versions(main_app, every), 30, message="the canary's events")
    for key in listing:
        assert seen[f"r0-{key}"] == seen[f"r1-{key}"], f"record key {key} changed version"
    on_candidate = sum(seen[f"r0-{key}"] == newer for key in listing)
    assert 0 < on_candidate < len(listing)
    assert consumer.terminate() == 0
