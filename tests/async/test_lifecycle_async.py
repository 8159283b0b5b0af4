"""The model lifecycle on the async path (REST 202, RabbitMQ, a Celery worker, a signed
callback), all real: the worker follows a rollback, and in a canary a sticky key sent to the
API reaches the worker, so an async call meets the version a sync call with the same key does."""

import time

from cerebro.lifecycle import state as lifecycle
from conftest import SECRET
from lifecycle_support import MODULE, PACKAGE, publish
from receiver import Receiver
from support import TEST_SIGNING_KEY

RELOAD = 0.3


def _later(server, rec, x, key=None):
    """Submit predict_later and return the version its callback reports."""
    headers = {"X-Cerebro-Sticky-Key": key} if key else None
    code, _, body = server.post(f"/v1/{MODULE}/predict_later", {"x": x}, headers)
    assert code == 202, body
    task_id = body["task_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for got in list(rec.received):
            if got["body"].get("task_id") == task_id:
                assert got["verified"] and got["body"]["status"] == "succeeded", got["body"]
                return got["body"]["result"]["model_version"]
        time.sleep(0.05)
    raise AssertionError(f"no callback for task {task_id}")


def test_worker_follows_rollback_and_sticky_canary(async_env, server_factory, worker_factory):
    """Rollback: the next async call answers with the version rolled back to. Canary 50 %:
    for each sticky key the worker's version equals the API's sync answer for that key."""
    env = {**async_env, **PACKAGE, "CEREBRO_RELOAD_INTERVAL": str(RELOAD)}
    volume = env["CEREBRO_DATA_VOLUME"]
    base = publish(volume, scale=2.0)
    newer = publish(volume, scale=3.0)
    rec = Receiver(SECRET, port=int(env["CEREBRO_MAIN_APP_URL"].rsplit(":", 1)[1]))
    try:
        server = server_factory(env, ready=True)
        worker_factory(env, concurrency=1)
        assert _later(server, rec, 1.0) == newer
        lifecycle.rollback(volume, MODULE, key=TEST_SIGNING_KEY)
        time.sleep(RELOAD * 3)
        assert _later(server, rec, 1.0) == base

        lifecycle.start_candidate(volume, MODULE, newer, "canary", key=TEST_SIGNING_KEY,
                                  percent=50)
        time.sleep(RELOAD * 3)
        met = {}
        for key in (f"listing-{i}" for i in range(16)):
            code, _, body = server.post(f"/v1/{MODULE}/predict", {"x": 1.0},
                                        {"X-Cerebro-Sticky-Key": key})
            assert code == 200
            met[key] = body["model_version"]
            assert _later(server, rec, 1.0, key) == met[key], key
        assert set(met.values()) == {base, newer}
    finally:
        rec.stop()
