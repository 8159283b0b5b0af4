"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The roster: every serving process of every node writes a heartbeat to the shared Redis.
Tagline: Each sentry calls out its name; silence is news too.

A deployment of several nodes shares one Redis (Celery's result backend). Every
process that serves calls (the API's children, the worker's pool processes, the
Kafka consumer, the pub-sub subscriber) runs a :class:`Beacon` from its core: every
``CEREBRO_NODE_HEARTBEAT`` seconds it writes one field of the hash
``<CEREBRO_QUEUE_PREFIX>:roster``::

    <node>|<service>|<pid>  ->  {"node", "service", "pid", "host", "started", "seen",
                                 "modules": {name: {"status", "models", "candidate"}},
                                 "assignment": {topic: [partitions]}, ...}

``cerebro status --all`` (:mod:`cerebro.ops.deployment`) reads the hash: a process
silent for three heartbeats is shown as lost (its ``...:alive:<field>`` key, renewed by
each heartbeat, expired), which is how a dead node shows up.
A process removes its own field when it stops; each beacon removes the fields of
its own node's processes that no longer exist, and any field silent for
:data:`FORGET_SECONDS`. A transport adds what only it knows with :meth:`Beacon.tell`
(the consumer: its partitions).

Redis being away never disturbs serving: a failed write is logged once per outage
and retried at the next heartbeat.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis import Redis

    from cerebro.registry import Registry
    from cerebro.settings import Settings

log = logging.getLogger(__name__)

FORGET_SECONDS = 24 * 3600.0  # a field silent this long is removed (a node gone for good)
LOST_AFTER = 3  # heartbeats missed before a process is shown as lost
REDIS_TIMEOUT = 2.0
TIDY_EVERY = 12  # heartbeats between two tidyings of the roster by one process


def roster_key(settings: Settings) -> str:
    """The Redis hash of this deployment's roster: ``<CEREBRO_QUEUE_PREFIX>:roster``."""
    return f"{settings.queue_prefix}:roster"


def field_name(node: str, service: str, pid: int) -> str:
    """The hash field of one process: ``node|service|pid``."""
    return f"{node}|{service}|{pid}"


def alive_key(key: str, field: str) -> str:
    """The key saying the process of ``field`` is alive: it expires :data:`LOST_AFTER`
    heartbeats after the process's last one, by Redis's clock (no clock skew between nodes
    decides who is alive)."""
    return f"{key}:alive:{field}"


def field_node(raw: bytes | str) -> str:
    """The node a hash field (``node|service|pid``) belongs to."""
    return _text(raw).split("|", 1)[0]


def redis_client(settings: Settings) -> Redis:
    """A redis-py client of the result backend with short timeouts (never blocks for long)."""
    from redis import Redis
    return Redis.from_url(settings.result_backend.get_secret_value(),
                          socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)


def modules_of(registry: Registry) -> dict[str, dict[str, Any]]:
    """What a process serves: each module's status, model versions and candidate."""
    found: dict[str, dict[str, Any]] = {}
    for name, mod in sorted(registry.modules.items()):
        control = registry.controls.get(name)
        candidate = None
        if control is not None:
            share = f" at {control.percent:g}%" if control.mode == "canary" else ""
            stopped = f" (stopped: {control.tripped})" if control.tripped else ""
            candidate = f"{control.version} in {control.mode}{share}{stopped}"
        found[name] = {"status": mod.status,
                       "models": {h.artifact: h.version for h in mod.handles},
                       "candidate": candidate}
    return found


class Beacon:
    """One process's heartbeat in the roster; :meth:`start` runs it on a daemon thread."""

    def __init__(self, settings: Settings, service: str, registry: Registry) -> None:
        self.settings = settings
        self.service = service
        self.registry = registry
        self.key = roster_key(settings)
        self.extra: dict[str, Any] = {}
        self.started = time.time()
        self._client: Redis | None = None
        self._beats = 0
        self._failing = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def field(self) -> str:
        """This process's field (its pid read now: a forked child has its own)."""
        return field_name(self.settings.node_name, self.service, os.getpid())

    def tell(self, **facts: Any) -> None:
        """Add what only this transport knows to the heartbeats, and have the heartbeat
        thread write one at once (never blocks the caller: a rebalance callback, say)."""
        self.extra.update(facts)
        self._wake.set()

    def snapshot(self) -> dict[str, Any]:
        """This process as the roster shows it."""
        return {"node": self.settings.node_name, "service": self.service, "pid": os.getpid(),
                "host": _host(), "started": self.started, "seen": time.time(),
                "interval": self.settings.node_heartbeat,
                "modules": modules_of(self.registry), **self.extra}

    def beat(self) -> bool:
        """Write one heartbeat and tidy the roster; ``False`` (logged once) when Redis fails."""
        try:
            client = self._redis()
            field = self.field
            ttl = max(1, math.ceil(LOST_AFTER * self.settings.node_heartbeat + 1))
            with client.pipeline(transaction=False) as pipe:
                pipe.hset(self.key, field, json.dumps(self.snapshot()))
                pipe.set(alive_key(self.key, field), "1", ex=ttl)
                pipe.execute()
            if self._beats % TIDY_EVERY == 0:
                self._tidy(client)
            self._beats += 1
        except Exception as exc:  # noqa: BLE001 - the roster must never disturb serving
            self._client = None
            if not self._failing:
                log.warning("roster: cannot write this process's heartbeat to Redis (%s: %s); "
                            "retrying every %gs", type(exc).__name__, exc,
                            self.settings.node_heartbeat)
            self._failing = True
            return False
        if self._failing:
            log.info("roster: heartbeats reach Redis again")
        self._failing = False
        return True

    def _redis(self) -> Redis:
        """The client, made at first use (after any fork)."""
        if self._client is None:
            self._client = redis_client(self.settings)
        return self._client

    def _tidy(self, client: Redis) -> None:
        """Remove malformed fields, this node's fields of processes that no longer exist on
        this machine, and fields silent for :data:`FORGET_SECONDS`."""
        now = time.time()
        stale = []
        for raw_field, raw in client.hgetall(self.key).items():
            name = _text(raw_field)
            entry = _parse(raw)
            if entry is None or now - number(entry.get("seen")) > FORGET_SECONDS:
                stale.append(name)
            elif (entry.get("node") == self.settings.node_name and entry.get("host") == _host()
                  and not process_exists(int(number(entry.get("pid"))))) and name != self.field:
                stale.append(name)
        if stale:
            client.hdel(self.key, *stale)
            client.delete(*(alive_key(self.key, name) for name in stale))

    def start(self) -> None:
        """Write the first heartbeat, then one every ``CEREBRO_NODE_HEARTBEAT`` seconds."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"cerebro-{self.service}-roster",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """The heartbeat loop: every interval, or at once when :meth:`tell` has news."""
        stop, wake = self._stop, self._wake
        while not stop.is_set():
            self.beat()
            wake.wait(self.settings.node_heartbeat)
            wake.clear()

    def stop(self) -> None:
        """Stop the heartbeats and remove this process from the roster (best effort)."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread = None
        if thread is not threading.current_thread():
            thread.join(REDIS_TIMEOUT + 1.0)  # a heartbeat in flight must not land after this
        try:
            client = self._redis()
            client.hdel(self.key, self.field)
            client.delete(alive_key(self.key, self.field))
        except Exception as exc:  # noqa: BLE001 - it will be shown lost, then forgotten
            log.info("roster: could not remove this process from the roster: %s", exc)


def _text(raw: bytes | str) -> str:
    """A Redis reply as text."""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def number(value: object, default: float = 0.0) -> float:
    """A number of an entry (``default`` when absent or not a number: a malformed entry)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def forget(client: Redis, key: str, node: str) -> int:
    """Remove every entry of ``node`` from the roster ``key``; returns how many there were."""
    fields = [_text(f) for f in client.hkeys(key) if field_node(f) == node]
    if not fields:
        return 0
    client.delete(*(alive_key(key, field) for field in fields))
    return int(client.hdel(key, *fields))


def _parse(raw: bytes | str) -> dict[str, Any] | None:
    """One roster entry, or ``None`` when it is not a JSON object."""
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def entries(client: Redis, key: str) -> list[Mapping[str, Any]]:
    """Every well-formed entry of the roster hash ``key``, each with ``alive``: whether its
    process's alive key still exists (it wrote a heartbeat in the last three intervals)."""
    raw_entries = [(_text(f), _parse(raw)) for f, raw in client.hgetall(key).items()]
    wanted = [(field, entry) for field, entry in raw_entries if entry is not None]
    with client.pipeline(transaction=False) as pipe:
        for field, _entry in wanted:
            pipe.exists(alive_key(key, field))
        flags = pipe.execute() if wanted else []
    found: list[Mapping[str, Any]] = []
    for (_field, entry), flag in zip(wanted, flags):
        if entry is not None:
            found.append({**entry, "alive": bool(flag)})
    return found


def _host() -> str:
    """The machine (container) this process runs on."""
    return os.uname().nodename


def process_exists(pid: int) -> bool:
    """True when process ``pid`` exists on this machine and is not a zombie (another user's
    process counts: it exists)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return not os.path.isdir("/proc")  # gone meanwhile, or no /proc: the signal said so
