"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Readiness probes: how ``cerebro up`` knows each program really works, not just runs.
Tagline: RUNNING is a promise; ready is a handshake.

Each probe takes the settings and the environment supervisord was started
with and returns ``(ready, detail)``; the program table
(:mod:`cerebro.ops.programs`) names each program's probe. A probe may raise:
:func:`check` turns that into "not ready", with the reason.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from cerebro.names import Names
from cerebro.ops import inspection

if TYPE_CHECKING:
    from cerebro.settings import Settings

Result = tuple[bool, str]
Probe = Callable[["Settings", Mapping[str, str]], Result]


def check(probe: Probe, settings: Settings, env: Mapping[str, str]) -> Result:
    """Run a probe: ``(ok, detail)``; a probe that raises is not ready, with the reason."""
    try:
        return probe(settings, env)
    except Exception as exc:  # noqa: BLE001 - "not ready yet" carries the reason
        return False, f"{type(exc).__name__}: {exc}"[:200]


def rabbitmq(settings: Settings, _env: Mapping[str, str]) -> Result:
    """An AMQP login works."""
    from kombu import Connection
    with Connection(settings.broker_url.get_secret_value(), connect_timeout=2) as conn:
        conn.connect()
    return True, "AMQP login ok"


def redis(settings: Settings, _env: Mapping[str, str]) -> Result:
    """Redis answers PING."""
    from cerebro.clients.redis import RedisPipe

    async def ping() -> object:
        """One PING on a fresh connection."""
        pipe = RedisPipe(settings.result_backend.get_secret_value(), timeout=2.0)
        try:
            return await pipe.execute("PING")
        finally:
            pipe.close()

    answer = asyncio.run(ping())
    return answer in ("PONG", b"PONG"), f"PING {answer!r}"


def kafka(settings: Settings, _env: Mapping[str, str]) -> Result:
    """The Kafka port accepts connections."""
    host, port = inspection.kafka_address(settings)
    return inspection.reachable(host, port), f"{host}:{port}"


def api(settings: Settings, _env: Mapping[str, str]) -> Result:
    """GET /readyz is 200 (every module's models loaded)."""
    status = inspection.http_status(inspection.api_url(settings) + "/readyz")
    return status == 200, f"/readyz {status}"


def worker(settings: Settings, _env: Mapping[str, str]) -> Result:
    """A worker answers a Celery ping."""
    from cerebro.taskqueue.celery_app import make_app
    replies = make_app(settings, schedules=False).control.ping(timeout=1.0)
    # ping() always waits for replies (reply=True): a list, never the None the stubs allow
    names = [name for reply in replies for name in reply]  # type: ignore[union-attr]
    return bool(names), f"{len(names)} worker(s) answered ping"


def flower(settings: Settings, env: Mapping[str, str]) -> Result:
    """Flower's UI answers with the configured password."""
    status = inspection.http_status(inspection.flower_url(settings) + "/healthcheck",
                                    (settings.flower_user, env.get("CEREBRO_FLOWER_PASSWORD", "")))
    return status == 200, f"/healthcheck {status}"


def consumer(settings: Settings, _env: Mapping[str, str]) -> Result:
    """The consumer group is stable with partitions assigned."""
    if not inspection.topic_modules(settings):
        return True, "no module declares a topic"
    state, members, assigned = inspection.group_assignment(settings)
    count = sum(len(p) for p in assigned.values())
    group = settings.kafka_group
    if members and not assigned:   # the broker keeps assignments to itself (tansu)
        return state == "Stable", f"group {group} {state}, {members} member(s)"
    return state == "Stable" and count > 0, f"group {group} {state}, {count} partition(s) assigned"


def subscriber(settings: Settings, _env: Mapping[str, str]) -> Result:
    """Every module's request queue has a consumer."""
    broker = Names.from_settings(settings)
    names = [broker.queue(m) for m in inspection.served_modules(settings)]
    stats = inspection.queue_stats(settings, names)
    idle = [n for n, s in stats.items() if not s or s[1] < 1]
    return not idle, ("every request queue consumed" if not idle
                      else f"no consumer on {', '.join(idle)}")


def simulator(settings: Settings, _env: Mapping[str, str]) -> Result:
    """The main-app simulator answers GET /simulator/received."""
    url = inspection.main_app_origin(settings) + "/simulator/received?last=0"
    status = inspection.http_status(url)
    return status == 200, f"/simulator/received {status}"


def beat(settings: Settings, _env: Mapping[str, str]) -> Result:
    """beat runs, active or standby (waiting for the Redis lock), and the schedule is in Redis."""
    from cerebro.taskqueue.celery_app import beat_entry_key, beat_lock_key, beat_status_path
    from sherlock.schedule import ENTRY_NAME
    status = _beat_status(beat_status_path(settings))
    pid = status.get("pid")
    if not isinstance(pid, int) or not _is_beat(pid):
        return False, "no running beat (CEREBRO_STATE_DIR/beat.json)"
    stored, held = _redis_exists(settings, beat_entry_key(settings, ENTRY_NAME),
                                 beat_lock_key(settings))
    if not stored:
        return False, f"beat pid {pid} has not stored the schedule in Redis yet"
    role = status.get("role")
    lock = "held" if held else "free"
    return True, f"beat pid {pid} {role} (lock {lock})"


def _beat_status(path: Path) -> dict[str, object]:
    """The beat's ``beat.json`` (empty when missing or unreadable)."""
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


def _is_beat(pid: int) -> bool:
    """True when process ``pid`` is alive and, where ``/proc`` says, a ``cerebro beat``."""
    from cerebro.roster import process_exists
    if not process_exists(pid):
        return False
    try:
        return b"beat" in (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return True  # no /proc here: the live pid is all we can check


def _redis_exists(settings: Settings, *keys: str) -> list[bool]:
    """Whether each of ``keys`` exists in the result backend's Redis."""
    import redis as redis_client
    client = redis_client.Redis.from_url(settings.result_backend.get_secret_value(),
                                         socket_connect_timeout=2, socket_timeout=2)
    try:
        return [bool(client.exists(key)) for key in keys]
    finally:
        client.close()
