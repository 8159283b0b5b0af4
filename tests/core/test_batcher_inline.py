"""Where a batcher runs a lone call: the IOLoop while lone calls are fast on average, the
runner thread otherwise, and the thread for a pause after one stalled the loop (a real Runner
and loop; the dispatcher is a stand-in that sleeps as told and names the thread it ran on)."""

import asyncio
import gc
import threading
import time

import pytest

from cerebro import batching
from cerebro.batching import Batcher
from cerebro.dispatch import Call
from cerebro.endpoint import Batching, Endpoint
from cerebro.runner import Runner

LIMIT = 0.05  # the test's INLINE_SECONDS: far above a call that does not sleep
STALL = 0.08  # the test's INLINE_STALL_SECONDS
RUNNER, LOOP = "test-runner-0", "MainThread"


class SleepyDispatcher:
    """``run_batch`` sleeps for the largest ``sleep`` of its calls (with ``collect``, a full
    garbage collection first) and names its thread."""

    def run_batch(self, calls, service, request_ids):
        """One outcome per call: the name of the thread that ran the batch."""
        if any(call.kwargs.get("collect") for call in calls):
            gc.collect()
        time.sleep(max(call.kwargs["sleep"] for call in calls))
        return [threading.current_thread().name for _ in calls]

    def encode(self, outcome, call, service, request_id):
        """The outcome as bytes."""
        return outcome.encode()


@pytest.fixture
def lone(monkeypatch):
    """``await lone(sleep)``: the thread a lone call sleeping ``sleep`` s ran on, through one
    batcher (its runner thread is "test-runner-0")."""
    monkeypatch.setattr(batching, "INLINE_SECONDS", LIMIT)
    monkeypatch.setattr(batching, "INLINE_STALL_SECONDS", STALL)
    monkeypatch.setattr(batching, "INLINE_PAUSE_SECONDS", 0.5)
    endpoint = Endpoint(module="m", name="f", func=lambda rows: rows, schema=None,
                        batch=Batching(max_size=8))
    runner = Runner(1, "test-runner")
    batcher = Batcher(SleepyDispatcher(), endpoint, runner)

    async def call(sleep=0.0, collect=False):
        """One lone call."""
        return (await batcher.submit(Call(endpoint, {"sleep": sleep, "collect": collect}))
                ).decode()

    yield call
    runner.shutdown()


def test_a_lone_call_runs_on_the_loop_only_after_one_was_measured_fast(lone):
    async def main():
        return [await lone() for _ in range(3)]

    assert asyncio.run(main()) == [RUNNER, LOOP, LOOP]


def test_a_call_that_stalled_the_loop_sends_the_next_ones_to_the_thread(lone):
    async def main():
        return [await lone(), await lone(), await lone(0.1), await lone(), await lone()]

    # the stall ran on the loop (the average was low); then a pause (0.5 s here): the next
    # calls run on the thread, fast as they are and low as the average still is (0.02 s)
    assert asyncio.run(main()) == [RUNNER, LOOP, LOOP, RUNNER, RUNNER]


FULL_PASS = 0.25  # how long the test's full collection lasts


@pytest.fixture
def slow_full_collections():
    """Full collections last FULL_PASS s (a ``gc.callbacks`` hook sleeps while one runs, after
    the batcher's own hook started its clock): far over any scheduling delay on a busy box."""
    def hold(phase, info):
        """Sleep through the start of a full collection."""
        if phase == "start" and info["generation"] == 2:
            time.sleep(FULL_PASS)

    gc.callbacks.append(hold)
    yield
    gc.callbacks.remove(hold)


@pytest.mark.usefixtures("slow_full_collections")
def test_a_call_held_up_by_a_full_garbage_collection_is_no_stall(lone, monkeypatch):
    monkeypatch.setattr(batching, "INLINE_SECONDS", FULL_PASS * 0.4)  # one pass keeps the avg
    monkeypatch.setattr(batching, "INLINE_STALL_SECONDS", FULL_PASS * 0.4)  # the pass: a stall

    async def main():
        return [await lone(), await lone(), await lone(0.0, collect=True), await lone(),
                await lone(FULL_PASS), await lone()]

    # the collector holds the GIL on any thread: the thread would not have spared the loop
    # that pause, so lone calls stay on the loop; a call as long that is the function's own
    # doing (it sleeps) still sends the next ones to the thread
    assert asyncio.run(main()) == [RUNNER, LOOP, LOOP, LOOP, LOOP, RUNNER]


def test_after_the_pause_fast_calls_run_on_the_loop_again(lone):
    async def main():
        threads = [await lone(), await lone(), await lone(0.1)]
        await asyncio.sleep(0.6)  # the pause is over
        return threads + [await lone(), await lone()]

    assert asyncio.run(main())[3:] == [LOOP, LOOP]


def test_an_occasional_slower_call_under_the_stall_keeps_the_loop(lone):
    async def main():
        return [await lone(), await lone(), await lone(0.06), await lone()]

    assert asyncio.run(main()) == [RUNNER, LOOP, LOOP, LOOP]


def test_a_slow_function_stays_on_the_thread_until_its_average_is_low(lone):
    async def main():
        # 0.1 s on the thread: the average (0.1) is over the limit; fast calls bring it down
        # by a fifth of the gap each: 0.08, 0.064, 0.051, then 0.041 (under 0.05)
        return [await lone(0.1)] + [await lone() for _ in range(5)]

    assert asyncio.run(main()) == [RUNNER] * 5 + [LOOP]


def test_a_failing_lone_call_on_the_loop_fails_its_request_only(lone, monkeypatch):
    async def main():
        await lone()
        await lone()  # on the loop from now on
        original = SleepyDispatcher.run_batch
        monkeypatch.setattr(SleepyDispatcher, "run_batch", lambda *a, **k: 1 / 0)
        with pytest.raises(Exception) as failed:
            await lone()
        monkeypatch.setattr(SleepyDispatcher, "run_batch", original)
        return type(failed.value).__name__, await lone()

    name, after = asyncio.run(main())
    assert name == "InternalError" and after == LOOP
