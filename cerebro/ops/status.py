"""
Author:  Cerebro team
Date:    2026-11-24
Subject: ``cerebro status``: programs, modules, queues, consumer lag and Sherlock in one place.
Tagline: One glance at the whole orchestra.

Every part is asked for itself (supervisord over its socket, the REST API, RabbitMQ,
Kafka, Sherlock's file); a part that cannot be asked is reported with the reason,
never skipped silently, and makes the status unhealthy (exit 1). Each program is
listed with its pid and its children (the API's prefork processes); a program
that failed for good (FATAL, or exit 2: a misconfiguration) is shown with the
last error line of its log, and a process listening on the API port outside the
supervised API (an orphan) is flagged: both make the status unhealthy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from cerebro.names import Names
from cerebro.ops import failures, inspection, processes, programs, supervise

if TYPE_CHECKING:
    from cerebro.settings import Settings

_T = TypeVar("_T")


def _safe(fn: Callable[[], _T]) -> tuple[_T | None, str | None]:
    """``(value, None)`` or ``(None, "Type: reason")`` when asking a part fails."""
    try:
        return fn(), None
    except Exception as exc:  # noqa: BLE001 - the reason is shown in the report
        return None, f"{type(exc).__name__}: {exc}"[:300]


def _programs(settings: Settings) -> list[dict[str, object]]:
    """Every supervisord program with its state, its processes and, when it failed for good,
    why (see :mod:`cerebro.ops.failures`)."""
    sup = supervise.Supervisor(settings)
    now = time.time()
    table = processes.parents()
    rows: list[dict[str, object]] = []
    for info in sorted(sup.processes().values(), key=lambda i: i["name"]):
        pid = info["pid"] or None
        reason = failures.failure(info)
        rows.append({"name": info["name"], "state": info["statename"], "pid": pid,
                     "children": processes.descendants(pid, table) if pid else [],
                     "uptime": int(now - info["start"]) if info["statename"] == "RUNNING"
                     else None,
                     "description": info["description"], "exitstatus": info["exitstatus"],
                     "failed": reason is not None, "reason": reason,
                     "log": info["stdout_logfile"]})
    return rows


def _api(settings: Settings, known: list[dict[str, Any]] | None) -> dict[str, object]:
    """The API program's serving processes: its supervised parent, the parent's children, and
    any other process listening on the API port (orphans)."""
    pid = next((p["pid"] for p in known or [] if p["name"] == "api"), None)
    found = processes.api_processes(settings.port, pid)
    if not pid and supervise.started_environment(settings).get("CEREBRO_RUN_API") == "false":
        found["orphans"] = []  # this stack serves no API: whoever listens there is not ours
    return found


def _modules(settings: Settings) -> list[dict[str, object]]:
    """Each module's status and model versions from the running API (its /readyz per module)."""
    import json
    import urllib.request
    base = inspection.api_url(settings)
    with urllib.request.urlopen(base + "/v1/modules", timeout=5) as response:
        described = json.loads(response.read())["modules"]
    modules = []
    for mod in described:
        ready = inspection.http_status(f"{base}/readyz?module={mod['name']}") == 200
        trial = mod.get("lifecycle") or {}
        modules.append({"name": mod["name"], "status": mod["status"], "ready": ready,
                        "models": {m["artifact"]: m["version"] for m in mod["models"]},
                        "candidate": _candidate(trial), "errors": mod["errors"]})
    return modules


def _queues(settings: Settings) -> list[dict[str, object]]:
    """Depth and consumers of the Celery and pub-sub queues of every served module."""
    modules = inspection.served_modules(settings)
    broker = Names.from_settings(settings)
    names = broker.task_queues(modules) + broker.pubsub_queues(modules)
    stats = inspection.queue_stats(settings, names)
    return [{"queue": name, "messages": s[0], "consumers": s[1]}
            for name, s in stats.items() if s is not None]


def _kafka(settings: Settings) -> dict[str, object]:
    """The consumer group's state, members and lag per topic (end offset - committed offset)."""
    from kafka import KafkaConsumer
    host, port = inspection.kafka_address(settings)
    if not inspection.reachable(host, port, timeout=2.0):  # kafka-python would wait 30 s
        raise ConnectionError(f"no Kafka broker answers at {host}:{port}")
    state, members, _assigned = inspection.group_assignment(settings)
    admin = inspection.admin_client(settings)
    try:
        committed = admin.list_group_offsets(settings.kafka_group).get(settings.kafka_group) or {}
    finally:
        admin.close()
    topics = sorted({tp.topic for tp in committed})
    lag: dict[str, int] = {}
    if committed:
        consumer = KafkaConsumer(bootstrap_servers=list(settings.kafka_bootstrap), group_id=None,
                                 enable_auto_commit=False, request_timeout_ms=5000)
        try:
            ends = consumer.end_offsets(list(committed))
        finally:
            consumer.close()
        for tp, meta in committed.items():
            offset = getattr(meta, "offset", meta)
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, ends.get(tp, 0) - max(offset, 0))
    return {"group": settings.kafka_group, "state": state, "members": members,
            "topics": topics, "lag": lag, "total_lag": sum(lag.values())}


def _sherlock() -> dict[str, object]:
    """Exceptions recorded in the last SHERLOCK_HOURS and when the last digest was sent."""
    from sherlock import digest
    from sherlock.settings import load_settings
    settings = load_settings()
    collected = digest.collect(settings, hours=settings.hours)
    state = digest.load_state(settings)
    return {"hours": settings.hours, "exceptions": collected.total, "kinds": len(collected.groups),
            "last_digest_up_to": state.get("watermark_time"), "dir": str(settings.dir)}


def collect(settings: Settings) -> dict[str, Any]:
    """The whole status as a JSON-able dict; ``healthy`` is False when any part is not."""
    report: dict[str, Any] = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "errors": {}}
    for key, fn in (("programs", lambda: _programs(settings)),
                    ("api", lambda: _api(settings, report["programs"])),
                    ("modules", lambda: _modules(settings)),
                    ("queues", lambda: _queues(settings)),
                    ("kafka", lambda: _kafka(settings)),
                    ("sherlock", _sherlock)):
        report[key], error = _safe(fn)
        if error:
            report["errors"][key] = error
    report["healthy"] = _healthy(settings, report)
    return report


def _healthy(settings: Settings, report: Mapping[str, Any]) -> bool:
    """Every part answered, every program that should run runs, none failed for good, no
    process serves the API port unsupervised, every module is ready."""
    started = supervise.started_environment(settings)
    known = report["programs"] or []
    wanted = [p for p in known if _runs(p["name"], started)]
    return (not report["errors"] and all(p["state"] == "RUNNING" for p in wanted)
            and not any(p["failed"] for p in known)
            and not (report["api"] or {}).get("orphans")
            and all(m["ready"] for m in report["modules"] or []))


def _runs(name: str, started: Mapping[str, str]) -> bool:
    """True when program ``name`` should be RUNNING: started (its CEREBRO_RUN_<FLAG> was true)
    and not a one-shot (the bootstrap build exits when done)."""
    try:
        row = programs.by_name(name)
    except KeyError:  # a program of a hand-written supervisord.conf: it should run
        return True
    return row.restart and started.get(row.run_flag, "true") == "true"


def _aligned(rows: list[list[str]], right: tuple[int, ...] = ()) -> list[str]:
    """Rows of cells as indented lines, each column as wide as its widest cell (a long queue
    name widens its column instead of pushing the numbers out of line)."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.rjust(width) if i in right else cell.ljust(width)
                             for i, (cell, width) in enumerate(zip(row, widths))).rstrip()
            for row in rows]


def _program_lines(report: Mapping[str, Any]) -> list[str]:
    """The programs, their processes, and why a failed one failed."""
    rows, notes = [], {}
    for p in report["programs"] or []:
        detail = f"up {p['uptime']}s" if p["uptime"] is not None else p["description"]
        pids = f"pid {p['pid']}" if p["pid"] else ""
        if p["children"]:
            pids += f", children {' '.join(map(str, p['children']))}"
        rows.append([p["name"], p["state"] + (" FAILED" if p["failed"] else ""), detail, pids])
        if p["failed"]:
            notes[len(rows) - 1] = f"      FAILED {p['reason']} (log: {p['log']})"
    lines = []
    for index, line in enumerate(_aligned(rows)):
        lines.append(line)
        if index in notes:
            lines.append(notes[index])
    return lines


def _api_lines(api: Mapping[str, Any] | None) -> list[str]:
    """The processes listening on the API port that the supervised API does not own."""
    if not api or not api["orphans"]:
        return []
    owner = f"not under the supervised api (pid {api['pid']})" if api["pid"] \
        else "and supervisord runs no api"
    lines = ["", f"API port {api['port']}: {len(api['orphans'])} ORPHAN process(es) listening, "
                 f"{owner}:"]
    lines += _aligned([[f"pid {o['pid']}", f"parent {o['ppid']}", o["command"]]
                       for o in api["orphans"]])
    return lines


def _candidate(trial: Mapping[str, Any]) -> str | None:
    """A module's candidate as one phrase (``V in canary at 10%``), or ``None``."""
    if not trial.get("candidate") or not trial.get("mode"):
        return None
    share = f" at {trial.get('percent', 0):g}%" if trial["mode"] == "canary" else ""
    loaded = "" if trial.get("candidate_loaded") else " (not loaded)"
    return f"{trial['candidate']} in {trial['mode']}{share}{loaded}"


def _module_lines(report: Mapping[str, Any]) -> list[str]:
    """Each module's readiness, status and model versions, and its errors."""
    rows, errors = [], {}
    for m in report["modules"] or []:
        versions = ", ".join(f"{a}={v}" for a, v in m["models"].items()) or "-"
        if m.get("candidate"):
            versions += f"; candidate {m['candidate']}"
        rows.append([m["name"], "ready" if m["ready"] else "NOT READY", m["status"], versions])
        errors[len(rows) - 1] = [f"      ERROR {e}" for e in m["errors"]]
    lines = []
    for index, line in enumerate(_aligned(rows)):
        lines += [line, *errors[index]]
    return lines


def render(report: Mapping[str, Any]) -> str:
    """The report as text for a terminal."""
    health = "healthy" if report["healthy"] else "NOT HEALTHY"
    lines = [f"Cerebro status at {report['time']}: {health}", "", "Programs (supervisord):",
             *_program_lines(report), *_api_lines(report.get("api")), "", "Modules:",
             *_module_lines(report), "", "Queues (messages / consumers):",
             *_aligned([[q["queue"], str(q["messages"]), "/", str(q["consumers"])]
                        for q in report["queues"] or []], right=(1, 3))]
    k = report["kafka"]
    if k:
        lag = ", ".join(f"{t}={n}" for t, n in k["lag"].items()) or "-"
        lines += ["", f"Kafka group {k['group']}: {k['state']}, {k['members']} member(s), "
                      f"lag {k['total_lag']} ({lag})"]
    s = report["sherlock"]
    if s:
        lines += ["", f"Sherlock: {s['exceptions']} exception(s) in {s['kinds']} kind(s) "
                      f"in the last {s['hours']} hours; last digest covered up to "
                      f"{s['last_digest_up_to'] or '-'}"]
    for part, error in report["errors"].items():
        lines.append(f"\n{part}: could not be asked: {error}")
    return "\n".join(lines)
