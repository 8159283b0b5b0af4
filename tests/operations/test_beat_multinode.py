"""Several nodes, one digest: three real `cerebro beat`s (one per node: own state directory, same
queue prefix and Redis) and two real `cerebro worker`s share one SHERLOCK_DIR; exceptions land in
three node stores. One beat holds the Redis lock, so each period with new exceptions gives exactly
one email covering every node's new records; SIGKILL that beat and another takes over, and the
digests keep coming, one per period, nothing lost."""

import email
import json
import os
import signal
import time
from email import policy

import redis
from aiosmtpd.controller import Controller

from cerebro.ops import probes
from cerebro.settings import load_settings
from cerebro.taskqueue.celery_app import beat_key_prefix, beat_status_path
from cerebro.taskqueue.topology import delete
from procs import Proc, wait_for
from sherlock.handler import capture
from sherlock.settings import load_settings as sherlock_settings
from support import REPO, TESTS, free_port

NODES = ("a", "b", "c")
EVERY = 2              # SHERLOCK_DIGEST_EVERY: seconds between two digests
LOCK_TIMEOUT = 6       # CEREBRO_BEAT_LOCK_TIMEOUT; beat's max interval is a quarter: 1 s


class TimedInbox:
    """A real SMTP server (aiosmtpd) keeping every message with the time it arrived."""

    def __init__(self, port):
        self.port = port
        self.received = []
        self.controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        """Keep the message and its arrival time; accept it."""
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.received.append((time.monotonic(), message))
        return "250 Message accepted for delivery"

    def texts(self):
        """The plain-text part of every message so far."""
        return [m.get_body(("plain",)).get_content() for _t, m in self.received]


def _env(tmp_path, rabbit_url, redis_url, prefix, smtp_port, **extra):
    """Environment of one node's program: shared SHERLOCK_DIR, queues, Redis and SMTP."""
    env = {"PYTHONPATH": f"{REPO}:{TESTS}", "CEREBRO_MODULES_PACKAGE": "fixture_modules",
           "CEREBRO_MODULES": "jobs", "CEREBRO_BROKER_URL": rabbit_url,
           "CEREBRO_RESULT_BACKEND": redis_url, "CEREBRO_QUEUE_PREFIX": prefix,
           "CEREBRO_CALLBACK_SECRET": "beat-test", "CEREBRO_DATA_VOLUME": str(tmp_path / "vol"),
           "CEREBRO_BEAT_LOCK_TIMEOUT": str(LOCK_TIMEOUT),
           "SHERLOCK_DIR": str(tmp_path / "shared" / "sherlock"), "SHERLOCK_PROJECT": "Cerebro",
           "SHERLOCK_RECIPIENTS": "oncall@example.com",
           "SHERLOCK_SENDER": "sherlock@example.com", "SHERLOCK_SMTP_HOST": "127.0.0.1",
           "SHERLOCK_SMTP_PORT": str(smtp_port), "SHERLOCK_SMTP_TIMEOUT": "5",
           "SHERLOCK_DIGEST_EVERY": str(EVERY), "SHERLOCK_ALERTS": ""}
    env.update(extra)
    return env


def _throw(node, request_id, env):
    """Record one exception in ``node``'s store, as a process on that node does."""
    settings = sherlock_settings({**env, "SHERLOCK_NODE": node})
    try:
        raise RuntimeError(f"trouble on {node}")
    except RuntimeError as exc:
        assert capture(exc, service="api", context={"request_id": request_id},
                       settings=settings)


def _round(name, env):
    """One exception on each node; returns their request ids."""
    ids = [f"{name}-{node}" for node in NODES]
    for node, request_id in zip(NODES, ids):
        _throw(node, request_id, env)
    return ids


def _digests_run(workers):
    """How many digest tasks the workers have run so far (from their logs)."""
    return sum(1 for worker in workers for line in worker.log().splitlines()
               if "Task sherlock.digest[" in line and " succeeded " in line)


def _roles(beats):
    """Each beat's role from its beat.json (``None`` when it has none)."""
    roles = []
    for beat in beats:
        try:
            roles.append(json.loads(beat_status_path(beat.settings).read_text())["role"])
        except (OSError, ValueError):
            roles.append(None)
    return roles


def _email_number(inbox, ids, after):
    """The number (1 = the first) of the first email after the ``after`` first that names
    every one of ``ids``, else ``None``."""
    for number, text in enumerate(inbox.texts()[after:], start=after + 1):
        if all(f"request_id={i}" in text for i in ids):
            return number
    return None


def test_three_beats_one_digest_per_period_and_a_standby_takes_over(
        tmp_path, rabbit_url, redis_url, queue_prefix, celery_shared_topology):
    """Exactly one email per period that had new exceptions, covering all three nodes; after
    SIGKILL of the lock holder a standby takes over within the lock timeout (+ its interval)."""
    prefix = f"{queue_prefix}-multi"
    inbox = TimedInbox(free_port())
    inbox.controller.start()
    env = _env(tmp_path, rabbit_url, redis_url, prefix, inbox.port)
    beats, workers = [], []
    try:
        for n in (1, 2):
            workers.append(Proc(["cerebro", "worker", "--concurrency", "1"],
                                {**env, "CEREBRO_STATE_DIR": str(tmp_path / f"w{n}"),
                                 "SHERLOCK_NODE": f"w{n}"}, tmp_path / f"worker{n}.log").start())
        for n in (1, 2, 3):
            node_env = {**env, "CEREBRO_STATE_DIR": str(tmp_path / f"node{n}")}
            beat = Proc(["cerebro", "beat", "--loglevel", "INFO"], node_env,
                        tmp_path / f"beat{n}.log").start()
            beat.settings = load_settings(node_env)
            beats.append(beat)
        for worker in workers:
            worker.wait_log(" ready.", timeout=40)
        wait_for(lambda: sorted(map(str, _roles(beats))) == ["active", "standby", "standby"],
                 20, what="one active beat and two standbys")
        active = beats[_roles(beats).index("active")]
        assert [("beat: Acquired lock" in b.log()) for b in beats] == [b is active for b in beats]
        answers = [probes.beat(b.settings, {}) for b in beats]   # standbys count as ready too
        assert all(ready for ready, _detail in answers), answers
        assert sorted(detail.split()[3] for _ready, detail in answers) == \
            ["active", "standby", "standby"]

        # three periods with new exceptions on every node: one email each, covering all nodes;
        # each round starts just after a digest, so no digest falls between its three records
        ran = _digests_run(workers)
        wait_for(lambda: _digests_run(workers) > ran, 10, what="a first scheduled digest")
        rounds = []
        for name in ("r1", "r2", "r3"):
            ids = _round(name, env)
            number = wait_for(lambda: _email_number(inbox, ids, len(rounds)), 15,
                              what=f"the digest of {name}")
            assert number == len(rounds) + 1, "one email per period, no other in between"
            rounds.append(ids)
        quiet = len(inbox.received)
        time.sleep(2.5 * EVERY)  # periods with nothing new: no email
        assert len(inbox.received) == quiet

        # SIGKILL the lock holder: a standby takes over, and nothing recorded meanwhile is lost
        os.killpg(active.proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        active.proc.wait(10)
        time.sleep(0.5)  # a digest the killed beat had just sent is over by now
        during = _round("r4", env)
        survivors = [b for b in beats if b is not active]
        heir = wait_for(lambda: next((b for b in survivors if "beat: Acquired lock" in b.log()),
                                     None), LOCK_TIMEOUT + 10, interval=0.1,
                        what="a standby taking the lock")
        takeover = time.monotonic() - killed
        print(f"takeover after SIGKILL of the lock holder: {takeover:.1f} s")
        assert takeover <= LOCK_TIMEOUT + LOCK_TIMEOUT / 4 + 2
        assert sum("beat: Acquired lock" in b.log() for b in survivors) == 1
        assert wait_for(lambda: _email_number(inbox, during, quiet), 15,
                        what="the first digest after the takeover") == quiet + 1
        ids = _round("r5", env)
        assert wait_for(lambda: _email_number(inbox, ids, quiet + 1), 15,
                        what="the next digest") == quiet + 2
        rounds += [during, ids]
        assert _roles(survivors).count("active") == 1 and "active" in _roles([heir])
    finally:
        for proc in beats + workers:
            proc.stop()
        inbox.controller.stop()
        delete(rabbit_url, [f"{prefix}.jobs", f"{prefix}.default"],
               [f"{prefix}.jobs", f"{prefix}.default"])
        client = redis.Redis.from_url(redis_url)
        keys = client.keys(beat_key_prefix(load_settings(env)) + "*")
        if keys:
            client.delete(*keys)

    # every email: one period's records, all three nodes, nothing else; each record once
    texts = inbox.texts()
    assert len(texts) == len(rounds) == 5
    times = [t for t, _m in inbox.received]
    assert all(b - a >= EVERY * 0.5 for a, b in zip(times, times[1:])), "one per period"
    for text, ids, (_t, message) in zip(texts, rounds, inbox.received):
        assert message["Subject"].startswith("Sherlock detected 3 exceptions in Cerebro")
        mailed = sorted(line.split("request_id=")[1].strip() for line in text.splitlines()
                        if "request_id=" in line)
        assert mailed == sorted(ids)
        for node in NODES:
            assert f"(node {node}) x 1" in text
