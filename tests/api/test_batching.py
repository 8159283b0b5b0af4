"""Adaptive micro-batching over real HTTP: right answers to the right requests."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

FIXTURES = {"CEREBRO_MODULES_PACKAGE": "fixture_modules", "CEREBRO_MODULES": "batchy"}


@pytest.fixture
def server(server_factory):
    """A one-process server over the batchy fixture module."""
    return server_factory(FIXTURES)


def _burst(server, path, payloads, workers=32):
    """POST every payload concurrently; responses in payload order."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda p: server.post(path, p), payloads))


def test_concurrent_requests_are_batched_and_answered_correctly(server):
    """Each of 300 concurrent requests gets its own answer; calls were gathered into batches."""
    payloads = [{"x": float(i), "delay_ms": 5} for i in range(300)]
    responses = _burst(server, "/v1/batchy/square", payloads)
    for payload, (code, _, body) in zip(payloads, responses):
        assert code == 200, body
        assert body["x"] == payload["x"] and body["square"] == payload["x"] ** 2
    batches = [body["batch"] for _, _, body in responses]
    assert max(batches) > 1, "concurrent requests should share calls"
    assert max(batches) <= 16, "max_size is respected"


def test_invalid_request_in_a_burst_fails_alone(server):
    """Validation happens before batching: only the bad request gets its 400."""
    payloads = [{"x": float(i)} for i in range(60)]
    payloads[17] = {"x": "seventeen"}
    responses = _burst(server, "/v1/batchy/square", payloads)
    assert responses[17][0] == 400 and responses[17][2]["error"]["field"] == "x"
    assert [r[0] for i, r in enumerate(responses) if i != 17] == [200] * 59


def test_row_error_from_a_batch_function_fails_only_its_row(server):
    """A batch function may fail one row; its neighbours succeed."""
    payloads = [{"x": float(i - 5)} for i in range(40)]
    responses = _burst(server, "/v1/batchy/picky", payloads)
    for payload, (code, _, body) in zip(payloads, responses):
        assert code == (400 if payload["x"] < 0 else 200), body


def _sherlock_records(directory):
    """Every record Sherlock wrote under ``directory``."""
    records = []
    for path in directory.glob("sherlock.jsonl*"):
        records += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records


def test_failing_batch_gives_every_request_the_same_error_and_one_record(server_factory, tmp_path):
    """When the batch call raises, all its requests get a 500 with one error id, recorded once."""
    server = server_factory(dict(FIXTURES, SHERLOCK_DIR=tmp_path / "sherlock"))
    payloads = [{"x": 13.0 if i == 0 else float(i), "delay_ms": 100} for i in range(24)]
    responses = _burst(server, "/v1/batchy/fragile", payloads, workers=24)
    failed = [body["error"] for code, _, body in responses if code == 500]
    assert failed, "the batch holding x=13 fails"
    ids = {error["error_id"] for error in failed}
    records = [r for r in _sherlock_records(tmp_path / "sherlock")
               if r.get("function") == "fragile"]
    assert len(records) == len(ids)
    assert {r["error_id"] for r in records} == ids
    assert len(failed) > len(ids), "several requests shared one failing batch"
    assert all("RuntimeError" in r["traceback"] for r in records)


def test_lone_request_is_not_held_back(server):
    """A lone request returns within the maximum wait plus the model time."""
    for path, payload, budget in (("/v1/batchy/square", {"x": 2.0, "delay_ms": 5}, 0.005),
                                  ("/v1/batchy/patient", {"x": 2.0}, 0.050)):
        server.post(path, payload)  # warm up
        started = time.monotonic()
        code, _, body = server.post(path, payload)
        elapsed = time.monotonic() - started
        assert code == 200 and body["batch"] == 1
        assert elapsed < budget + 0.1, f"{path} took {elapsed * 1000:.1f} ms"


def _thread_of(server, delay_ms=0.0):
    """The thread a lone call of batchy.where ran on."""
    code, _, body = server.post("/v1/batchy/where", {"delay_ms": delay_ms})
    assert code == 200 and body["batch"] == 1, body
    return body["thread"]


def test_a_fast_lone_call_runs_on_the_ioloop_once_it_was_measured(server):
    """The first lone call goes to the runner thread (its time is unknown); once one was
    measured fast, lone calls run on the IOLoop (no hand-over)."""
    first = _thread_of(server)
    assert first == "cerebro-batchy-0", first
    threads = [_thread_of(server) for _ in range(20)]
    assert "MainThread" in threads, threads


def test_a_slow_function_never_runs_on_the_ioloop_and_never_blocks_it(server):
    """Every lone call of a function slower than the limit runs on the runner thread, and
    the loop answers meanwhile."""
    assert {_thread_of(server, delay_ms=2) for _ in range(4)} == {"cerebro-batchy-0"}
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(_thread_of, server, 1500)
        time.sleep(0.3)
        started = time.monotonic()
        code, _, _ = server.get("/healthz")
        assert code == 200 and time.monotonic() - started < 0.5, "the loop was blocked"
        assert slow.result() == "cerebro-batchy-0"


def test_batches_of_several_calls_run_on_the_runner(server):
    """Calls that gathered into one batch go to the runner thread, fast or not."""
    payloads = [{"delay_ms": 30 if i == 0 else 0} for i in range(40)]
    responses = _burst(server, "/v1/batchy/where", payloads)
    threads = {body["thread"] for code, _, body in responses if body["batch"] > 1}
    assert threads == {"cerebro-batchy-0"}
