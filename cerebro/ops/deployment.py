"""
Author:  Cerebro team
Date:    2026-11-29
Subject: ``cerebro status --all``: every node of the deployment, from the roster in Redis.
Tagline: On-call sees the fleet, not one ship.

Each serving process of each node writes a heartbeat to the roster
(:mod:`cerebro.roster`). This report groups them by node: which programs run
there (pids, last heartbeat; a process silent for three heartbeats is LOST),
which model versions each serves (a node serving another version than the
others is flagged), and which Kafka partitions each consumer holds (a partition
held by no live consumer, or by two, is flagged). The deployment-wide parts are
asked once: the queues on RabbitMQ and the consumer group's lag on Kafka.

Healthy (exit 0) means: every process answered its heartbeat, every node serves
the same versions, every partition of the consumed topics has exactly one live
consumer, and every part could be asked.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cerebro import roster
from cerebro.ops import inspection, status

if TYPE_CHECKING:
    from cerebro.settings import Settings

Entry = Mapping[str, Any]


def _alive(entry: Entry, _now: float) -> bool:
    """True when the process wrote a heartbeat within its last three intervals (its alive key,
    expiring by Redis's clock, still exists)."""
    return bool(entry.get("alive"))


def _versions(entry: Entry) -> dict[str, str]:
    """``{module: "artifact=version, ..."}`` one process serves."""
    return {name: ", ".join(f"{a}={v or 'no model'}"
                            for a, v in sorted(mod.get("models", {}).items()))
            + (f"; candidate {mod['candidate']}" if mod.get("candidate") else "")
            for name, mod in (entry.get("modules") or {}).items()}


def _node(name: str, found: Sequence[Entry], now: float) -> dict[str, Any]:
    """One node: its processes (alive or lost), the versions its live processes serve and the
    partitions its consumers hold."""
    processes = []
    served: dict[str, set[str]] = {}
    for entry in sorted(found, key=lambda e: (e.get("service", ""), e.get("pid", 0))):
        alive = _alive(entry, now)
        processes.append({"service": entry.get("service"), "pid": entry.get("pid"),
                          "host": entry.get("host"), "alive": alive,
                          "seen_seconds_ago": round(now - roster.number(entry.get("seen")), 1),
                          "up_seconds": round(now - roster.number(entry.get("started"), now)),
                          "assignment": entry.get("assignment"), "group": entry.get("group")})
        if alive:
            for module, versions in _versions(entry).items():
                served.setdefault(module, set()).add(versions)
    return {"node": name, "processes": processes,
            "alive": all(p["alive"] for p in processes),
            "modules": {m: sorted(v) for m, v in sorted(served.items())}}


def _disagreements(nodes: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Modules whose live processes do not all serve the same versions, with what each
    serves: ``{module: ["node: versions", ...]}``."""
    seen: dict[str, dict[str, list[str]]] = {}
    for node in nodes:
        for module, versions in node["modules"].items():
            seen.setdefault(module, {})[node["node"]] = versions
    return {module: [f"{n}: {' | '.join(v)}" for n, v in sorted(by_node.items())]
            for module, by_node in sorted(seen.items())
            if len({tuple(v) for v in by_node.values()}) > 1
            or any(len(v) > 1 for v in by_node.values())}


def _partitions(settings: Settings, entries: Sequence[Entry], now: float) -> dict[str, Any]:
    """Every partition of the consumed topics with the live consumers holding it; the
    unheld and the doubly held ones."""
    holders: dict[tuple[str, int], list[str]] = {}
    topics: set[str] = set(inspection.consumed_topics(settings))
    for entry in entries:
        for topic, parts in (entry.get("assignment") or {}).items():
            topics.add(topic)
            if _alive(entry, now):
                for part in parts:
                    holders.setdefault((topic, int(part)), []).append(
                        f"{entry.get('node')}/{entry.get('pid')}")
    counts = _partition_counts(settings, sorted(topics)) if topics else {}
    every = [(t, p) for t, n in counts.items() for p in range(n)]
    return {"topics": counts,
            "held": {f"{t}-{p}": holders.get((t, p), []) for t, p in every},
            "unheld": [f"{t}-{p}" for t, p in every if not holders.get((t, p))],
            "doubly_held": [f"{t}-{p}" for t, p in every if len(holders.get((t, p), [])) > 1]}


def _partition_counts(settings: Settings, topics: Sequence[str]) -> dict[str, int]:
    """How many partitions each topic has, from the Kafka cluster."""
    from kafka import KafkaConsumer

    host, port = inspection.kafka_address(settings)
    if not inspection.reachable(host, port, timeout=2.0):
        raise ConnectionError(f"no Kafka broker answers at {host}:{port}")
    consumer = KafkaConsumer(bootstrap_servers=list(settings.kafka_bootstrap), group_id=None,
                             request_timeout_ms=5000)
    try:
        return {topic: len(consumer.partitions_for_topic(topic) or ()) for topic in topics}
    finally:
        consumer.close()


def _read_roster(settings: Settings) -> list[Entry]:
    """Every entry of this deployment's roster."""
    client = roster.redis_client(settings)
    try:
        return roster.entries(client, roster.roster_key(settings))
    finally:
        client.close()


def forget(settings: Settings, node: str) -> int:
    """Remove every roster entry of ``node``; returns how many there were."""
    client = roster.redis_client(settings)
    try:
        key = roster.roster_key(settings)
        return roster.forget(client, key, node)
    finally:
        client.close()


def collect(settings: Settings) -> dict[str, Any]:
    """The deployment as a JSON-able dict; ``healthy`` is False when any part is not."""
    now = time.time()
    report: dict[str, Any] = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                              "errors": {}, "nodes": [], "disagreements": {},
                              "partitions": None, "queues": None, "kafka": None,
                              "idle": []}
    entries, error = status._safe(lambda: _read_roster(settings))
    if error:
        report["errors"]["roster"] = error
    by_node: dict[str, list[Entry]] = {}
    for entry in entries or []:
        by_node.setdefault(str(entry.get("node")), []).append(entry)
    report["nodes"] = [_node(name, found, now) for name, found in sorted(by_node.items())]
    report["disagreements"] = _disagreements(report["nodes"])
    for key, fn in (("partitions", lambda: _partitions(settings, entries or [], now)),
                    ("queues", lambda: status._queues(settings)),
                    ("kafka", lambda: status._kafka(settings))):
        report[key], error = status._safe(fn)
        if error:
            report["errors"][key] = error
    report["idle"], error = status._safe(lambda: _idle(settings, report))
    if error:
        report["errors"]["idle"] = error
    parts = report["partitions"] or {}
    report["healthy"] = bool(report["nodes"]) and not report["errors"] and all(
        n["alive"] for n in report["nodes"]) and not report["disagreements"] and not (
        parts.get("unheld") or parts.get("doubly_held")) and not report["idle"]
    return report


def _idle(settings: Settings, report: Mapping[str, Any]) -> list[str]:
    """What nobody consumes: a task or pub-sub request queue without a consumer, a consumed
    topic without a group member (a whole program missing from every node shows here, not in
    the roster). Retry and dead-letter queues have no consumer by design."""
    from cerebro.names import Names
    names, modules = Names.from_settings(settings), inspection.served_modules(settings)
    needed = set(names.task_queues(modules)) | {names.queue(m) for m in modules}
    idle = [f"queue {q['queue']} has no consumer" for q in report["queues"] or []
            if q["queue"] in needed and not q["consumers"]]
    kafka, parts = report["kafka"] or {}, report["partitions"] or {}
    if parts.get("topics") and not kafka.get("members"):
        idle.append(f"Kafka group {kafka.get('group')} has no member")
    return idle


def _process_line(p: Mapping[str, Any]) -> list[str]:
    """One process as table cells."""
    state = "alive" if p["alive"] else f"LOST (silent {p['seen_seconds_ago']:g}s)"
    held = ", ".join(f"{t}[{','.join(map(str, parts))}]"
                     for t, parts in sorted((p.get("assignment") or {}).items()))
    return [str(p["service"]), f"pid {p['pid']}", state, f"up {p['up_seconds']}s",
            f"partitions {held}" if p.get("assignment") is not None else ""]


def render(report: Mapping[str, Any]) -> str:
    """The report as text for a terminal."""
    health = "healthy" if report["healthy"] else "NOT HEALTHY"
    lines = [f"Cerebro deployment at {report['time']}: {health}, "
             f"{len(report['nodes'])} node(s)"]
    for node in report["nodes"]:
        lines += ["", f"Node {node['node']}: {'up' if node['alive'] else 'NOT ALL ALIVE'}"]
        lines += status._aligned([_process_line(p) for p in node["processes"]])
        for module, versions in node["modules"].items():
            lines.append(f"    {module}: {' | '.join(versions)}")
    for module, seen in report["disagreements"].items():
        lines.append(f"\nVERSIONS DIFFER for {module}: " + "; ".join(seen))
    parts = report["partitions"]
    if parts and parts["held"]:
        lines += ["", "Kafka partitions (held by node/pid):"]
        lines += status._aligned([[name, ", ".join(who) or "NOBODY"]
                                  for name, who in parts["held"].items()])
        if parts["doubly_held"]:
            lines.append(f"  held twice: {', '.join(parts['doubly_held'])}")
    k = report["kafka"]
    if k:
        lines += ["", f"Kafka group {k['group']}: {k['state']}, {k['members']} member(s), "
                      f"lag {k['total_lag']}"]
    if report["queues"]:
        lines += ["", "Queues (messages / consumers):"]
        lines += status._aligned([[q["queue"], str(q["messages"]), "/", str(q["consumers"])]
                                  for q in report["queues"]], right=(1, 3))
    for problem in report["idle"]:
        lines.append(f"\nNOBODY CONSUMES: {problem}")
    for part, error in report["errors"].items():
        lines.append(f"\n{part}: could not be asked: {error}")
    return "\n".join(lines)
