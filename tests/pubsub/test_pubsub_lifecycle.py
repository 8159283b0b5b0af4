"""The model lifecycle on the pub-sub transport, with a real RabbitMQ and `cerebro subscribe`:
requests after a rollback are served by the version rolled back to, and in a canary the
``x-cerebro-sticky-key`` header keeps each key on one version."""

import time

from cerebro.lifecycle import state as lifecycle
from lifecycle_support import MODULE, publish
from support import TEST_SIGNING_KEY

RELOAD = "0.3"


def _versions(client, requests):
    """Publish ``{correlation id: sticky key or None}`` and return each result's version."""
    for correlation, key in requests.items():
        client.publish(f"{MODULE}.predict", {"x": 1.0}, correlation,
                       headers={"x-cerebro-sticky-key": key} if key else None)
    got = client.results(len(requests), timeout=30)
    return {c: got[c][0][2]["result"]["model_version"] for c in requests}


def test_subscriber_follows_rollback_and_sticky_canary(pubsub, tmp_path):
    """Rollback followed; with a 50 % canary each sticky key meets one version, both serve."""
    volume = tmp_path / "volume"
    base = publish(volume, scale=2.0)
    newer = publish(volume, scale=3.0)
    sub = pubsub.subscriber(package="lifecycle_fixtures", modules=MODULE,
                            CEREBRO_RELOAD_INTERVAL=RELOAD)
    sub.consuming()
    client = pubsub.client()
    assert set(_versions(client, {"first": None}).values()) == {newer}
    lifecycle.rollback(volume, MODULE, key=TEST_SIGNING_KEY)
    time.sleep(float(RELOAD) * 3)
    assert set(_versions(client, {f"after-{i}": None for i in range(5)}).values()) == {base}

    lifecycle.start_candidate(volume, MODULE, newer, "canary", key=TEST_SIGNING_KEY,
                              percent=50)
    time.sleep(float(RELOAD) * 3)
    keys = [f"listing-{i}" for i in range(20)]
    rounds = [_versions(client, {f"r{r}-{k}": k for k in keys}) for r in range(2)]
    for key in keys:
        assert rounds[0][f"r0-{key}"] == rounds[1][f"r1-{key}"], key
    assert set(rounds[0].values()) == {base, newer}
    assert sub.terminate() == 0
