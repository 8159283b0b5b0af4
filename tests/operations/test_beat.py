"""Sherlock's daily digest wired into Celery: a real `cerebro worker` runs task sherlock.digest and
the email reaches a real SMTP server; a real `cerebro beat` (celery-redbeat) schedules it at
SHERLOCK_DIGEST_AT in Redis."""

import json

import redis
from redbeat.decoder import RedBeatJSONDecoder

import sherlock
from cerebro.ops import probes
from cerebro.settings import load_settings
from cerebro.taskqueue.celery_app import (beat_entry_key, beat_key_prefix, beat_lock_key,
                                          beat_status_path, make_app)
from cerebro.taskqueue.topology import delete
from procs import Inbox, Proc, wait_for
from sherlock.schedule import ENTRY_NAME
from sherlock.settings import load_settings as sherlock_settings
from support import REPO, TESTS, free_port


def _env(tmp_path, rabbit_url, redis_url, prefix, smtp_port):
    """Environment of the worker/beat: fixture modules, own queues, Sherlock and SMTP settings."""
    return {"PYTHONPATH": f"{REPO}:{TESTS}", "CEREBRO_MODULES_PACKAGE": "fixture_modules",
            "CEREBRO_MODULES": "jobs", "CEREBRO_BROKER_URL": rabbit_url,
            "CEREBRO_RESULT_BACKEND": redis_url, "CEREBRO_QUEUE_PREFIX": prefix,
            "CEREBRO_CALLBACK_SECRET": "beat-test", "CEREBRO_DATA_VOLUME": str(tmp_path / "vol"),
            "CEREBRO_STATE_DIR": str(tmp_path / "state"),
            "SHERLOCK_DIR": str(tmp_path / "sherlock"), "SHERLOCK_PROJECT": "Cerebro",
            "SHERLOCK_RECIPIENTS": "oncall@example.com", "SHERLOCK_SENDER": "sherlock@example.com",
            "SHERLOCK_SMTP_HOST": "127.0.0.1", "SHERLOCK_SMTP_PORT": str(smtp_port),
            "SHERLOCK_SMTP_TIMEOUT": "5", "SHERLOCK_DIGEST_AT": "06:45"}


def _delete_queues(url, names):
    """Remove the test's queues and their exchanges from the shared broker."""
    delete(url, names, names)


def test_digest_task_through_a_real_worker_reaches_smtp(tmp_path, rabbit_url, redis_url,
                                                        queue_prefix, celery_shared_topology):
    """task sherlock.digest sent the way beat sends it: a worker runs it, the email arrives."""
    prefix = f"{queue_prefix}-beat"
    inbox = Inbox(free_port()).start()
    env = _env(tmp_path, rabbit_url, redis_url, prefix, inbox.port)
    try:
        try:
            raise ZeroDivisionError("the butler did it")
        except ZeroDivisionError as exc:
            sherlock.capture(exc, service="worker", settings=sherlock_settings(env))
        worker = Proc(["cerebro", "worker", "--concurrency", "1"], env,
                      tmp_path / "worker.log").start()
        try:
            worker.wait_log(" ready.")
            app = make_app(load_settings(env))
            app.send_task("sherlock.digest")          # beat's call: default queue, no arguments
            wait_for(lambda: inbox.messages, 30, what="the digest email")
        finally:
            worker.stop()
        message = inbox.messages[0]
        assert message["Subject"].startswith("Sherlock detected 1 exceptions in Cerebro in last "
                                             "24.0 hours on ")
        assert "the butler did it" in message.get_body(("plain",)).get_content()
        assert message["To"] == "oncall@example.com"
    finally:
        inbox.stop()
        _delete_queues(rabbit_url, [f"{prefix}.jobs", f"{prefix}.default"])


def test_beat_schedules_the_digest_at_the_configured_time(tmp_path, rabbit_url, redis_url,
                                                          queue_prefix):
    """A real `cerebro beat` (celery-redbeat) stores sherlock-daily-digest at 06:45 in Redis
    under the deployment's prefix, takes the lock, says so in beat.json (the probe: ready), and
    releases the lock and removes beat.json on SIGTERM."""
    env = _env(tmp_path, rabbit_url, redis_url, f"{queue_prefix}-beat2", free_port())
    settings = load_settings(env)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    beat = Proc(["cerebro", "beat", "--loglevel", "DEBUG"], env, tmp_path / "beat.log").start()
    try:
        beat.wait_log("beat: Acquired lock", timeout=30)
        stored = client.hget(beat_entry_key(settings, ENTRY_NAME), "definition")
        entry = json.loads(stored, cls=RedBeatJSONDecoder)
        ready, detail = wait_for(lambda: _ready(settings), 10, what="the beat probe")
        assert client.exists(beat_lock_key(settings))
        assert "active" in detail
        assert json.loads(beat_status_path(settings).read_text())["role"] == "active"
    finally:
        beat.stop()
    assert beat.proc.returncode == 0
    assert entry["task"] == "sherlock.digest"
    assert entry["schedule"].hour == {6} and entry["schedule"].minute == {45}
    assert entry["options"].get("expires") == 3600
    assert not client.exists(beat_lock_key(settings)), "SIGTERM releases the lock"
    assert not beat_status_path(settings).exists()
    assert probes.beat(settings, {})[0] is False
    assert not list((tmp_path / "state").glob("celerybeat-schedule*")), "no schedule file"
    client.delete(*client.keys(beat_key_prefix(settings) + "*"))


def test_beat_stores_its_schedule_again_when_redis_lost_it(tmp_path, rabbit_url, redis_url,
                                                           queue_prefix):
    """A Redis restarted without persistence (as Cerebro's own runs) or flushed loses the
    schedule redbeat stored at start: the running beat puts it back within a tick or two,
    instead of running on with no digest until it is restarted."""
    env = _env(tmp_path, rabbit_url, redis_url, f"{queue_prefix}-beat3", free_port())
    settings = load_settings(env)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    beat = Proc(["cerebro", "beat", "--loglevel", "INFO"], env, tmp_path / "beat.log").start()
    try:
        beat.wait_log("beat: Acquired lock", timeout=30)
        entry = beat_entry_key(settings, ENTRY_NAME)
        assert client.exists(entry)
        lock = beat_lock_key(settings)
        wiped = [k for k in client.keys(beat_key_prefix(settings) + "*") if k != lock]
        client.delete(*wiped)  # what a restart without persistence leaves: nothing but the lock
        assert not client.exists(entry) and probes.beat(settings, {})[0] is False
        wait_for(lambda: client.exists(entry), 15, what="the schedule stored again")
        beat.wait_log("stored again", timeout=5)
        assert wait_for(lambda: _ready(settings), 10, what="the beat probe")[0]
        stored = json.loads(client.hget(entry, "definition"), cls=RedBeatJSONDecoder)
        assert stored["task"] == "sherlock.digest"
    finally:
        beat.stop()
        client.delete(*client.keys(beat_key_prefix(settings) + "*"))


def _ready(settings):
    """The beat probe's answer once it is ready, else ``None``."""
    ready, detail = probes.beat(settings, {})
    return (ready, detail) if ready else None


def test_the_workers_celery_configuration_never_shows_the_redis_password():
    """Flower's Config tab and `celery inspect conf` show a worker's app.conf: the beat's Redis
    URL (celery-redbeat's key is not one Celery masks) is only on `cerebro beat`'s app."""
    settings = load_settings({"CEREBRO_RESULT_BACKEND": "redis://:s3cret-pw@127.0.0.1:6379/0",
                              "CEREBRO_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"})
    app = make_app(settings)
    shown = repr(app.conf.table()) + app.conf.humanize()
    assert "s3cret-pw" not in shown
    assert "redbeat_redis_url" not in app.conf.table()
