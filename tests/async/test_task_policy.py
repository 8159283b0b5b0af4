"""The worker's side of the outcome policy, in process: the task's meta counts failures and
waits exactly as the Kafka consumer and the pub-sub subscriber do (waits for a model are not
charged as failures; a failure of another kind ends the wait)."""

import time
from types import SimpleNamespace

import pytest

from cerebro.errors import InternalError, InvalidPayload, ModelNotReady
from cerebro.names import Names
from cerebro.outcomes import OutcomePolicy
from cerebro.settings import load_settings


class Retry(Exception):
    """What Celery's ``Task.retry`` raises, with what it was asked."""

    def __init__(self, **kwargs):
        super().__init__("retry")
        self.kwargs = kwargs


def _task(retries):
    """A bound task's view: its request (retries so far) and ``retry``."""
    def retry(**kwargs):
        """Celery raises what retry returns."""
        return Retry(**kwargs)
    return SimpleNamespace(request=SimpleNamespace(id="t1", retries=retries), retry=retry)


@pytest.fixture
def decide(monkeypatch):
    """``decide(error, meta, retries)``: the new meta of the retry, or None when final."""
    from cerebro.tasks import task
    settings = load_settings().replace(queue_type="classic")
    policy = OutcomePolicy(retries=3, backoff=0.01, max_backoff=0.1, model_wait=60.0,
                           model_retry_delay=5.0)
    core = SimpleNamespace(policy=policy, names=Names.from_settings(settings))
    monkeypatch.setattr(task, "_state", SimpleNamespace(settings=settings, core=core))

    def run(error, meta, retries=0):
        """The policy's verdict on ``error`` for a task with ``meta``."""
        try:
            task._retry_if_the_policy_says(_task(retries), error, ("m", "f", {}, meta))
        except Retry as again:
            assert again.kwargs["queue"] == "cerebro.m"
            return again.kwargs["args"][3]
        return None

    return run


def test_waits_for_a_model_are_not_failures(decide):
    """Twelve waits, then a bug: the bug still gets its CEREBRO_RETRIES retries."""
    since = time.time() - 30
    meta = decide(ModelNotReady("no model"), {"waiting_since": since}, retries=12)
    assert meta["waiting_since"] == since and "failures" not in meta
    meta = decide(InternalError(), meta, retries=13)
    assert meta["failures"] == 1 and meta["waiting_since"] is None
    assert decide(InternalError(), dict(meta, failures=3), retries=16) is None


def test_the_model_wait_counts_from_the_first_miss_not_from_submission(decide):
    """A task that sat in its queue longer than CEREBRO_MODEL_WAIT still waits for its model."""
    meta = decide(ModelNotReady("no model"), {"submitted_at": time.time() - 3600})
    assert meta and abs(meta["waiting_since"] - time.time()) < 5
    assert decide(ModelNotReady("no model"), {"waiting_since": time.time() - 61}) is None


def test_client_errors_are_final_at_once(decide):
    """Nothing to retry about a caller's mistake."""
    assert decide(InvalidPayload("bad"), {}) is None
