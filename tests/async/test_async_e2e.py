"""The async path end to end: real RabbitMQ, Redis, `cerebro serve`, `cerebro worker`, callbacks."""

import json
import subprocess
import sys
import time

from cerebro.callbacks import signing
from conftest import SECRET, wait_for
from receiver import Receiver
from support import cerebro_env, http, run_cli


def _main_app_port(env):
    """The port of the main-app URL configured in ``env``."""
    return int(env["CEREBRO_MAIN_APP_URL"].rsplit(":", 1)[1])


def _status(server, task_id):
    """GET /v1/tasks/<id> body."""
    status, _, body = server.get(f"/v1/tasks/{task_id}")
    assert status == 200, body
    return body


def _sherlock_records(directory):
    """Every record in Sherlock's JSON-lines files under ``directory``."""
    import json
    from pathlib import Path
    records = []
    for path in Path(directory).glob("sherlock.jsonl*"):
        records += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records


def test_submit_202_signed_callback_and_status(async_env, server_factory, worker_factory):
    rec = Receiver(SECRET, port=_main_app_port(async_env))
    other = Receiver(SECRET)
    try:
        env = dict(async_env, CEREBRO_CALLBACK_ALLOWED_HOSTS=f"127.0.0.1:{other.port}/hooks/")
        server = server_factory(env)
        worker_factory(env, concurrency=2)

        started = time.perf_counter()
        status, headers, body = server.post("/v1/jobs/square", {"x": 7})
        assert status == 202, body
        assert time.perf_counter() - started < 1.0
        task_id = body["task_id"]
        assert body["status"] == "queued" and body["status_url"] == f"/v1/tasks/{task_id}"
        assert headers["Location"] == body["status_url"]

        [got] = rec.wait(1)
        assert got["path"] == "/cerebro/callbacks/jobs/square"
        assert got["verified"] and got["headers"]["Idempotency-Key"] == task_id
        assert got["body"]["status"] == "succeeded" and got["body"]["result"] == {"square": 49}
        assert got["body"]["task_id"] == task_id and got["body"]["module"] == "jobs"
        assert got["body"]["timings"]["run_seconds"] >= 0
        polled = _status(server, task_id)
        assert polled["status"] == "succeeded" and polled["result"] == {"square": 49}

        # bad input: 400 before anything is queued; sync functions answer at once
        assert server.post("/v1/jobs/square", {"x": -1})[0] == 400
        assert server.post("/v1/jobs/sync_add", {"a": 1})[0:3:2] == (200, {"sum": 2.0})
        # callback_url: allow-listed goes there, anything else is a 400 at submit time
        status, _, body = server.post("/v1/jobs/square",
                                      {"x": 3, "callback_url": "http://169.254.169.254/"})
        assert status == 400 and body["error"]["field"] == "callback_url"
        # the entry names a path prefix: a path outside it (or escaping it) is a clear 400
        for outside in (f"{other.url}/admin", f"{other.url}/hooksx",
                        f"{other.url}/hooks/../admin"):
            status, _, body = server.post("/v1/jobs/square", {"x": 3, "callback_url": outside})
            assert status == 400 and body["error"]["field"] == "callback_url", body
        assert "not under a prefix" in body["error"]["message"] or \
            "'..' segment" in body["error"]["message"]
        status, _, body = server.post("/v1/jobs/square",
                                      {"x": 3, "callback_url": f"{other.url}/admin"})
        assert "allowed: /hooks/" in body["error"]["message"]
        status, _, body = server.post("/v1/jobs/square",
                                      {"x": 3, "callback_url": f"{other.url}/hooks/sq"})
        assert status == 202
        [got] = other.wait(1)
        assert got["path"] == "/hooks/sq" and got["body"]["result"] == {"square": 9}
        # a failing function (a bug: retried CEREBRO_RETRIES times, as on every transport):
        # one signed "failed" callback with the error id, status agrees
        status, _, body = server.post("/v1/jobs/crash", {})
        assert status == 202
        failed = [r for r in rec.wait(2) if r["body"]["task_id"] == body["task_id"]][0]
        assert failed["body"]["status"] == "failed" and failed["body"]["attempts"] == 1 + 3
        assert failed["body"]["error"]["type"] == "internal" and failed["body"]["error"]["error_id"]
        assert _status(server, body["task_id"])["status"] == "failed"
        # ... and Sherlock recorded the worker's exception of every attempt, with its task id,
        # the last one with the error id the callback carries
        records = _sherlock_records(async_env["SHERLOCK_DIR"])
        crash = [r for r in records if r.get("task_id") == body["task_id"]]
        assert len(crash) == 1 + 3 and all(r["service"] == "worker" for r in crash)
        assert (crash[0]["module"], crash[0]["function"]) == ("jobs", "crash")
        assert crash[-1]["error_id"] == failed["body"]["error"]["error_id"]
        assert "Traceback" in crash[0]["traceback"]
        assert server.get("/v1/tasks/00000000-0000-0000-0000-000000000000")[0] == 404
        time.sleep(0.5)
        assert len(rec.received) == 2  # exactly one callback per task
    finally:
        rec.stop()
        other.stop()


def test_kill_9_worker_mid_task_reruns_on_next_worker(async_env, server_factory, worker_factory):
    rec = Receiver(SECRET, port=_main_app_port(async_env))
    try:
        server = server_factory(async_env)
        first = worker_factory(async_env)
        status, _, body = server.post("/v1/jobs/nap", {"seconds": 3, "tag": "k9"})
        assert status == 202
        task_id = body["task_id"]
        wait_for(lambda: _status(server, task_id)["status"] == "running", what="task running")
        first.kill9()
        assert rec.received == []
        worker_factory(async_env)
        [got] = rec.wait(1, timeout=40)
        assert got["verified"] and got["body"]["task_id"] == task_id
        assert got["body"]["status"] == "succeeded" and got["body"]["result"]["tag"] == "k9"
        assert got["body"]["redelivered"] is True
        assert _status(server, task_id)["status"] == "succeeded"
    finally:
        rec.stop()


def test_main_app_down_then_back_gets_the_callback(async_env, server_factory, worker_factory):
    server = server_factory(async_env)
    worker = worker_factory(async_env)
    status, _, body = server.post("/v1/jobs/square", {"x": 5})
    assert status == 202
    wait_for(lambda: _status(server, body["task_id"])["status"] == "succeeded", what="task done")
    time.sleep(1.5)  # a few attempts fail: nothing listens on the main app's port
    rec = Receiver(SECRET, port=_main_app_port(async_env), statuses=[503])
    try:
        got = rec.wait(1, status=200, timeout=20)
        assert [r["status"] for r in got] == [503, 200]
        assert all(r["body"]["task_id"] == body["task_id"] and r["verified"] for r in got)
        assert "attempt" in worker.log()
    finally:
        rec.stop()


def test_past_retry_window_dead_letter_then_cli_retry(async_env, server_factory, worker_factory,
                                                      tmp_path):
    env = dict(async_env, CEREBRO_CALLBACK_RETRY_WINDOW="2")
    server = server_factory(env)
    worker = worker_factory(env)
    status, _, body = server.post("/v1/jobs/square", {"x": 4})
    assert status == 202
    task_id = body["task_id"]

    def listed():
        """The dead-lettered ids, from `cerebro callbacks failed --json`."""
        code, out, err = run_cli(env, "callbacks", "failed", "--json")
        assert code == 0, err
        return [e["idempotency_key"] for e in json.loads(out)]

    wait_for(lambda: task_id in listed(), timeout=30, interval=0.5, what="dead letter")
    assert "dead-lettered" in worker.log() and "RetryWindowExpired" in worker.log()
    sherlock_files = list((tmp_path / "sherlock").rglob("*"))
    assert any(task_id in p.read_text(errors="replace") for p in sherlock_files if p.is_file())
    code, out, _ = run_cli(env, "callbacks", "failed")
    assert task_id in out

    rec = Receiver(SECRET, port=_main_app_port(env))
    try:
        code, out, err = run_cli(env, "callbacks", "retry")
        assert code == 0, out + err
        [got] = rec.wait(1)
        assert got["verified"] and got["body"]["result"] == {"square": 16}
        assert got["headers"]["Idempotency-Key"] == task_id
        assert listed() == []
    finally:
        rec.stop()


def test_broker_down_async_503_sync_200_then_recovers(async_env, private_rabbit, server_factory,
                                                      worker_factory):
    env = dict(async_env, CEREBRO_BROKER_URL=private_rabbit.url)
    rec = Receiver(SECRET, port=_main_app_port(env))
    try:
        server = server_factory(env)
        worker_factory(env)
        assert server.post("/v1/jobs/square", {"x": 2})[0] == 202
        rec.wait(1)

        private_rabbit.stop()
        elapsed = []
        for _ in range(3):
            started = time.perf_counter()
            status, _, body = server.post("/v1/jobs/square", {"x": 2})
            elapsed.append(time.perf_counter() - started)
            assert status == 503 and body["error"]["type"] == "unavailable", body
            assert "RabbitMQ" in body["error"]["message"]
            assert elapsed[-1] < 2.5
            assert server.post("/v1/jobs/sync_add", {"a": 2})[0] == 200
        assert max(elapsed[1:]) < 0.5, elapsed  # known down: refused without trying

        private_rabbit.start()
        wait_for(lambda: server.post("/v1/jobs/square", {"x": 6})[0] == 202, timeout=20,
                 interval=0.3, what="async path back")
        wait_for(lambda: any(r["body"]["result"] == {"square": 36} for r in rec.received),
                 timeout=60, interval=0.3, what="callback after broker restart")
    finally:
        rec.stop()


def test_tampered_signature_is_rejected_by_python_verifier():
    body = json.dumps({"task_id": "t"}).encode()
    call = {"method": "POST", "target": "/cerebro/callbacks/jobs/square", "idempotency_key": "t"}
    headers = signing.signed_headers(SECRET, body, "t", target=call["target"])
    assert signing.verify(SECRET, headers[signing.TIMESTAMP_HEADER], body,
                          headers[signing.SIGNATURE_HEADER], **call)
    assert not signing.verify(SECRET, headers[signing.TIMESTAMP_HEADER], body.replace(b"t", b"u"),
                              headers[signing.SIGNATURE_HEADER], **call)


def test_flower_with_basic_auth_shows_workers_and_tasks(async_env, server_factory, worker_factory,
                                                        tmp_path):
    from support import free_port
    rec = Receiver(SECRET, port=_main_app_port(async_env))
    port = free_port()
    env = dict(async_env, CEREBRO_FLOWER_PASSWORD="flower-pw")
    flower = subprocess.Popen([sys.executable, "-m", "cerebro", "flower", "--port", str(port)],
                              env=cerebro_env(**env), stdout=open(tmp_path / "flower.log", "wb"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        server = server_factory(env)
        worker_factory(env)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _try_status(url + "/api/workers") is not None, timeout=30,
                 what="flower listening")
        assert _try_status(url + "/api/workers") == 401
        import base64
        auth = {"Authorization": "Basic " + base64.b64encode(b"cerebro:flower-pw").decode()}
        status, _, body = server.post("/v1/jobs/square", {"x": 9})
        rec.wait(1)
        workers = wait_for(lambda: http("GET", url + "/api/workers?refresh=1", headers=auth)[2],
                           timeout=30, interval=0.5, what="flower sees the worker")
        assert any(name.startswith("cerebro-") for name in workers)
        tasks = wait_for(lambda: http("GET", url + "/api/tasks", headers=auth)[2], timeout=30,
                         interval=0.5, what="flower sees the task")
        assert body["task_id"] in tasks
    finally:
        rec.stop()
        import os
        import signal
        os.killpg(flower.pid, signal.SIGTERM)
        flower.wait(20)


def _try_status(url):
    """The HTTP status of GET ``url``, or None when nothing answers."""
    try:
        return http("GET", url, timeout=2)[0]
    except OSError:
        return None
