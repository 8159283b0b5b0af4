"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Which processes really run: a program's children, and who listens on the API's port.
Tagline: Count the heads in the room, not the names on the list.

supervisord knows one pid per program; ``cerebro serve`` forks its API
processes below it. :func:`api_processes` reads ``/proc`` for the supervised
parent's children and for every process listening on the API port, so
``cerebro status`` lists each serving process and flags those that are not
the supervised parent's (orphans of a killed parent, or a stranger on the
port): they would serve requests nobody supervises.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


def parents() -> dict[int, int]:
    """``{pid: parent pid}`` of every process (those vanishing meanwhile are skipped)."""
    found = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def descendants(pid: int, table: dict[int, int]) -> list[int]:
    """Every process below ``pid`` in ``table`` (from :func:`parents`), sorted."""
    children: dict[int, list[int]] = {}
    for child, parent in table.items():
        children.setdefault(parent, []).append(child)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return sorted(found)


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP ``port`` (IPv4 and IPv6, any address)."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN \
                    and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def listening(port: int) -> list[int]:
    """PIDs of the processes holding a socket that listens on TCP ``port``, sorted."""
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    found = set()
    if not wanted:
        return []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(entry / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(entry / "fd" / fd) in wanted:
                    found.add(int(entry.name))
                    break
            except OSError:
                continue
    return sorted(found)


def command_line(pid: int) -> str:
    """The command line of ``pid`` ('' when it is gone)."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()[:200]


def api_processes(port: int, pid: int | None) -> dict[str, object]:
    """The API program's processes: ``{"port", "pid" (the supervised parent), "children",
    "listening" (pids on the port), "orphans": [{"pid", "ppid", "command"}]}``; an orphan
    listens on the port but is neither the supervised parent nor below it."""
    table = parents()
    children = descendants(pid, table) if pid else []
    family = {pid, *children} if pid else set()
    on_port = listening(port)
    orphans = [{"pid": p, "ppid": table.get(p), "command": command_line(p)}
               for p in on_port if p not in family]
    return {"port": port, "pid": pid, "children": children, "listening": on_port,
            "orphans": orphans}
