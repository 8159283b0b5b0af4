"""The outcome policy on its own: each error kind's meaning, and the decision after a failed
attempt (final, retry with backoff, or wait for the model)."""

import random

import pytest

from cerebro import errors
from cerebro.outcomes import OutcomePolicy, backoff_delay

POLICY = OutcomePolicy(retries=2, backoff=0.5, max_backoff=30.0, model_wait=10.0,
                       model_retry_delay=3.0)


@pytest.mark.parametrize("kind", errors.KINDS, ids=lambda k: k.type)
def test_every_kind_says_what_it_means_everywhere(kind):
    """A kind carries its HTTP status and its queued disposition; client errors are final 4xx."""
    assert isinstance(kind.http_status, int) and 400 <= kind.http_status < 600
    assert kind.queued in errors.Disposition
    if kind.client_error:
        assert kind.queued is errors.FINAL and kind.http_status < 500


@pytest.mark.parametrize("kind", [k for k in errors.KINDS if k.queued is errors.FINAL],
                         ids=lambda k: k.type)
def test_final_kinds_are_never_retried(kind):
    """A final error ends queued work on its first attempt."""
    assert not POLICY.decide(kind("x"), attempt=1, waited=0.0).retry


@pytest.mark.parametrize("kind", [k for k in errors.KINDS if k.queued is errors.RETRY],
                         ids=lambda k: k.type)
def test_retryable_kinds_are_retried_with_growing_backoff_then_final(kind):
    """CEREBRO_RETRIES retries, each after an exponential delay with jitter, then final."""
    error = kind() if kind is errors.InternalError else kind("x")
    first = POLICY.decide(error, attempt=1, waited=0.0)
    second = POLICY.decide(error, attempt=2, waited=99.0)
    assert first.retry and second.retry
    assert 0.25 <= first.delay <= 0.5 and 0.5 <= second.delay <= 1.0
    assert not POLICY.decide(error, attempt=3, waited=0.0).retry


def test_a_missing_model_is_waited_for_until_model_wait():
    """ModelNotReady: again every model_retry_delay seconds while less than model_wait passed,
    however many attempts that takes, then final."""
    error = errors.ModelNotReady("no model yet")
    for attempt, waited in ((1, 0.0), (7, 9.9)):
        decision = POLICY.decide(error, attempt=attempt, waited=waited)
        assert decision.retry and decision.delay == 3.0
    assert not POLICY.decide(error, attempt=2, waited=10.0).retry


def test_backoff_is_capped_and_jittered():
    """Equal jitter: between half and all of base * 2**attempt, never above the cap."""
    rng = random.Random(7)
    for attempt in range(12):
        delay = backoff_delay(attempt, 1.0, 30.0, rng)
        ceiling = min(30.0, 2.0 ** attempt)
        assert ceiling / 2 <= delay <= ceiling
