"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The worker is no signing oracle: forged deliver_callback messages on real RabbitMQ.
Tagline: A letter slipped into our post bag is opened, reported, and never sent.

A real ``cerebro worker`` consumes its real quorum queue on RabbitMQ. Messages
an attacker with broker access would publish (the former unsealed shape, a
made-up seal, a callback signature passed off as a seal, a message sealed under
another secret) make it send nothing: the main app's receiver gets no call and
Sherlock has a ``SealError`` record for each. A message sealed with the right
secret but aimed at a URL the rules do not allow is dead-lettered, not sent.
A genuine retry (the main app answering 503 first) is still delivered, the same
bytes on both attempts, and the worker's log keeps Celery's success line
without the task's return value.
"""

import json
import time
from pathlib import Path

from cerebro.callbacks import SealedRetry, Sealer, signing
from cerebro.settings import load_settings
from cerebro.taskqueue.celery_app import DELIVER_TASK, make_app
from conftest import SECRET, wait_for
from receiver import Receiver
from support import run_cli


def _main_app_port(env):
    """The port of the main-app URL configured in ``env``."""
    return int(env["CEREBRO_MAIN_APP_URL"].rsplit(":", 1)[1])


def _records(directory):
    """Every record in Sherlock's JSON-lines files under ``directory``."""
    records = []
    for path in Path(directory).glob("sherlock.jsonl*"):
        records += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records


def _refusals(env):
    """Sherlock's records of refused delivery messages."""
    return [r for r in _records(env["SHERLOCK_DIR"]) if "SealError" in str(r.get("type"))]


def _publish(env, messages):
    """Publish each argument tuple as a ``cerebro.deliver_callback`` task to the jobs queue,
    as anyone holding broker credentials could."""
    app = make_app(load_settings({k: str(v) for k, v in env.items()}), schedules=False)
    try:
        for args in messages:
            app.send_task(DELIVER_TASK, args=args, queue=f"{env['CEREBRO_QUEUE_PREFIX']}.jobs")
    finally:
        app.close()


def test_forged_deliver_callback_messages_send_nothing_and_are_reported(
        async_env, server_factory, worker_factory):
    main = Receiver(SECRET, port=_main_app_port(async_env), statuses=[503])
    elsewhere = Receiver(SECRET)
    try:
        worker = worker_factory(async_env)
        url = main.url + "/cerebro/callbacks/jobs/square"
        body = {"task_id": "forged-1", "module": "jobs", "function": "square",
                "status": "succeeded", "result": {"square": 1_000_000}}
        text = json.dumps(body)
        now = time.time()
        forged = [
            [body, url, now, 1],                                    # the former, unsealed shape
            [text, url, now, 1, "0" * 64],                          # a made-up seal
            [text, url, now, 1, signing.sign(SECRET, now, "POST",   # a valid signature as seal
                                             "/cerebro/callbacks/jobs/square", "forged-1",
                                             text.encode())],
            list(SealedRetry(text.encode(), url, now, 1).message(Sealer("not-the-secret"))),
        ]
        _publish(async_env, forged)
        refusals = wait_for(lambda: len(_refusals(async_env)) >= len(forged) and
                            _refusals(async_env), timeout=30, what="refusals reported")
        assert len(refusals) == len(forged)
        assert all(r["service"] == "worker" and r["context"].get("message_id")
                   for r in refusals), refusals
        assert "nothing sent" in refusals[0]["log_message"]

        # sealed with the real secret (only a worker has it), but to a URL nobody allowed:
        # dead-lettered, not sent
        steal = SealedRetry(text.encode(), elsewhere.url + "/steal", now, 1)
        _publish(async_env, [list(steal.message(Sealer(SECRET)))])

        def listed():
            """Dead-lettered keys."""
            code, out, err = run_cli(async_env, "callbacks", "failed", "--json")
            assert code == 0, err
            return [e["idempotency_key"] for e in json.loads(out)]

        wait_for(lambda: "forged-1" in listed(), timeout=30, interval=0.3, what="dead letter")
        time.sleep(1.0)
        assert main.received == [] and elsewhere.received == []

        # a genuine retry still goes out: 503, then the sealed retry through RabbitMQ
        server = server_factory(async_env)
        status, _, answer = server.post("/v1/jobs/nap", {"seconds": 0, "tag": "tag-7f3a9c"})
        assert status == 202, answer
        got = main.wait(1, status=200, timeout=30)
        assert [r["status"] for r in got] == [503, 200]
        assert all(r["verified"] and r["headers"]["Idempotency-Key"] == answer["task_id"]
                   for r in got)
        assert got[0]["raw"] == got[1]["raw"] and got[1]["body"]["result"]["tag"] == "tag-7f3a9c"
        assert len(_refusals(async_env)) == len(forged)
        # Celery's success line is there, without the return value
        log = worker.log()
        assert f"Task cerebro.run[{answer['task_id']}] succeeded in " in log
        assert "tag-7f3a9c" not in log
    finally:
        main.stop()
        elsewhere.stop()
