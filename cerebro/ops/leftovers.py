"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Processes a supervised stack left behind: found by their environment, stopped for good.
Tagline: Nobody stays after closing time.

Every program supervisord starts for Cerebro carries ``SUPERVISOR_ENABLED``
and this stack's ``CEREBRO_STATE_DIR`` in its environment, and so does every
process it forks (API children, Celery pool processes, Erlang's helpers). A
process that still carries them after supervisord is gone was orphaned (its
parent was killed with ``kill -9``, say): ``cerebro down`` stops those too,
so no process of the stack outlives it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

PROC = Path("/proc")


def _environment(pid: int) -> dict[bytes, bytes]:
    """The environment of process ``pid`` (empty when it cannot be read)."""
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {key: value for key, _, value in pairs}


def _running(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def find(state_dir: Path) -> list[int]:
    """PIDs of live processes started under supervisord for the stack of ``state_dir``."""
    wanted = str(state_dir.resolve()).encode()
    me = os.getpid()
    found = []
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        env = _environment(int(entry.name))
        if env.get(b"SUPERVISOR_ENABLED") and env.get(b"CEREBRO_STATE_DIR") == wanted:
            if _running(int(entry.name)):
                found.append(int(entry.name))
    return sorted(found)


def sweep(state_dir: Path, grace: float = 15.0) -> list[int]:
    """SIGTERM every leftover process of the stack, SIGKILL those still there after
    ``grace`` seconds; returns the PIDs that were found."""
    pids = find(state_dir)
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal([pid for pid in pids if _running(pid)], signal.SIGKILL)
    return pids


def _signal(pids: list[int], signum: int) -> None:
    """Send ``signum`` to each of ``pids`` that still exists."""
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass
