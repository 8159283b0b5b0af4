"""The model-call runner: results, errors and shutdown come back to the loop."""

import asyncio
import threading

import pytest

from cerebro.runner import Runner, RunnerClosed


def test_run_returns_the_result_computed_on_a_runner_thread():
    """The call runs off the loop's thread and its result reaches the awaiting coroutine."""
    runner = Runner(1, "test-runner")

    async def main():
        loop_thread = threading.get_ident()
        value, thread = await runner.run(lambda x: (x * 2, threading.get_ident()), 21)
        return value, thread != loop_thread

    try:
        assert asyncio.run(main()) == (42, True)
    finally:
        runner.shutdown()


def test_exceptions_reach_the_caller():
    """An exception raised by the call is raised by the await, not swallowed."""
    runner = Runner(1, "test-runner")

    def boom():
        raise ValueError("bad model")

    async def main():
        with pytest.raises(ValueError, match="bad model"):
            await runner.run(boom)

    try:
        asyncio.run(main())
    finally:
        runner.shutdown()


def test_callback_gets_result_and_error_on_the_loop_thread():
    """``call`` hands ``(result, error)`` to its callback on the submitting loop's thread."""
    runner = Runner(2, "test-runner")

    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        seen = []

        def callback(result, error):
            seen.append((result, error, threading.get_ident()))
            if len(seen) == 2:
                done.set_result(None)

        runner.call(lambda: "ok", callback=callback)
        runner.call(lambda: 1 / 0, callback=callback)
        await asyncio.wait_for(done, 5)
        return seen, threading.get_ident()

    try:
        seen, loop_thread = asyncio.run(main())
    finally:
        runner.shutdown()
    outcomes = {result: error for result, error, _ in seen}
    assert outcomes.pop("ok") is None
    assert isinstance(outcomes.pop(None), ZeroDivisionError)
    assert {thread for _, _, thread in seen} == {loop_thread}


def test_shutdown_cancels_queued_calls_and_refuses_new_ones():
    """Calls still queued at shutdown fail with RunnerClosed; the call in progress finishes."""
    runner = Runner(1, "test-runner")
    release = threading.Event()

    async def main():
        running = runner.run(release.wait, 5)
        queued = runner.run(lambda: "never")
        await asyncio.sleep(0.05)  # the first call is now blocking the only thread
        runner.shutdown()
        release.set()
        assert await running is True
        with pytest.raises(RunnerClosed, match="before the call ran"):
            await queued
        with pytest.raises(RunnerClosed, match="shut down"):
            runner.run(lambda: None)

    asyncio.run(main())
