"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Pre-forking: N API processes on one port, dying with their parent, restarted with care.
Tagline: Many hands on one door; the parent minds them all, and they never outlive it.

Unlike ``tornado.process.fork_processes``:

* the parent forwards SIGTERM and SIGINT to its children and waits for them,
  so stopping ``cerebro serve`` never leaves orphans behind;
* each child asks the kernel for SIGTERM when its parent dies
  (``PR_SET_PDEATHSIG``), and also watches its parent's pid, so a ``kill -9``
  of the parent makes every child drain and exit instead of serving on,
  unseen, with no one to stop it;
* a child that dies soon after it started is restarted after a growing delay
  (about 1 s, 2 s, 4 s ... with jitter, capped at 30 s); after :data:`MAX_QUICK_CRASHES` such
  deaths in a row the parent stops the others and exits 2, which supervisord
  never restarts and ``cerebro status`` shows FAILED with this reason;
* a child that exits with 2 (a misconfiguration, such as a refused broker
  password) stops the whole server with exit 2 at once: restarting cannot fix it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cerebro.outcomes import backoff_delay

if TYPE_CHECKING:
    from types import FrameType

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
QUICK_CRASH_SECONDS = 10.0  # a child dying sooner than this after its start crashed at start-up
MAX_QUICK_CRASHES = 5
RESTART_BASE_SECONDS = 1.0
RESTART_CAP_SECONDS = 30.0
CONFIG_EXIT = 2  # what ``cerebro`` exits with on a ConfigurationError
PARENT_POLL_SECONDS = 1.0


@dataclass
class Slot:
    """One child position: its pid, when it started, and how often it crashed early in a row."""

    index: int
    pid: int = 0
    started: float = 0.0
    quick_crashes: int = 0
    due: float | None = None  # when a delayed restart is due (monotonic seconds)


@dataclass
class Parent:
    """The parent's book of children (see the module docstring)."""

    slots: list[Slot]
    stopping: list[int] = field(default_factory=list)
    exit_code: int = 0

    def by_pid(self, pid: int) -> Slot | None:
        """The slot whose child has ``pid``."""
        return next((s for s in self.slots if s.pid == pid), None)

    def alive(self) -> list[Slot]:
        """Slots with a running child."""
        return [s for s in self.slots if s.pid]

    def signal_all(self, signum: int = signal.SIGTERM) -> None:
        """Send ``signum`` to every running child."""
        for slot in self.alive():
            try:
                os.kill(slot.pid, signum)
            except ProcessLookupError:
                pass


def fork_workers(count: int) -> int:
    """Fork ``count`` children; return the child's index in each child.

    The parent never returns: it restarts children that die abnormally (with
    back-off), and on SIGTERM/SIGINT forwards the signal, waits for every child
    and exits.
    """
    parent = Parent([Slot(i) for i in range(count)])
    me = os.getpid()
    for slot in parent.slots:
        if _spawn(slot, me):
            return slot.index

    def forward(signum: int, _frame: FrameType | None) -> None:
        """Pass a stop signal on to every child."""
        parent.stopping.append(signum)
        parent.signal_all()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    index = _mind(parent, me)
    if index is not None:
        return index
    sys.exit(parent.exit_code)


def _mind(parent: Parent, me: int) -> int | None:
    """The parent's loop: reap children, restart them as due; returns an index in a child
    forked here, or ``None`` once every child is gone and none is to be restarted."""
    while parent.alive() or (not parent.stopping and any(s.due for s in parent.slots)):
        waiting = [s.due for s in parent.slots if s.due is not None]
        pid, status = _wait(min(waiting) - time.monotonic() if waiting else None)
        slot = parent.by_pid(pid) if pid else None
        if slot is not None:
            slot.pid = 0
            _reaped(parent, slot, os.waitstatus_to_exitcode(status))
        for due in [s for s in parent.slots if s.due is not None]:
            if not parent.stopping and due.due is not None and due.due <= time.monotonic():
                due.due = None
                if _spawn(due, me):
                    return due.index
    return None


def _wait(timeout: float | None) -> tuple[int, int]:
    """Wait for a child to exit, at most ``timeout`` seconds; ``(0, 0)`` when none did."""
    if timeout is None:
        try:
            return os.wait()
        except ChildProcessError:
            return 0, 0
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:  # no child at all: nothing can exit before the deadline
            time.sleep(max(deadline - time.monotonic(), 0.0))
            return 0, 0
        if pid or time.monotonic() >= deadline:
            return pid, status
        time.sleep(min(0.05, max(deadline - time.monotonic(), 0.0)))


def _reaped(parent: Parent, slot: Slot, code: int) -> None:
    """Decide what follows a child's exit: nothing, a (delayed) restart, or stopping all."""
    if parent.stopping or code == 0:
        return
    if code == CONFIG_EXIT:
        log.error("API process %d exited with %d (misconfiguration): stopping the server",
                  slot.index, code)
        parent.exit_code = CONFIG_EXIT
        parent.stopping.append(signal.SIGTERM)
        parent.signal_all()
        return
    quick = time.monotonic() - slot.started < QUICK_CRASH_SECONDS
    slot.quick_crashes = slot.quick_crashes + 1 if quick else 0
    if slot.quick_crashes >= MAX_QUICK_CRASHES:
        log.error("API process %d crashed %d times in a row at start-up (exit %d): "
                  "stopping the server for good (exit 2: restarting cannot fix it)",
                  slot.index, slot.quick_crashes, code)
        parent.exit_code = CONFIG_EXIT
        parent.stopping.append(signal.SIGTERM)
        parent.signal_all()
        return
    delay = backoff_delay(slot.quick_crashes - 1, RESTART_BASE_SECONDS,
                          RESTART_CAP_SECONDS) if quick else 0.0
    log.error("API process %d exited with %d; restarting it%s", slot.index, code,
              f" in {delay:.1f}s" if delay else "")
    slot.due = time.monotonic() + delay


def _spawn(slot: Slot, parent_pid: int) -> bool:
    """Fork the child of ``slot``; returns True in the child."""
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        die_with_parent(parent_pid)
        return True
    slot.pid, slot.started = pid, time.monotonic()
    return False


def die_with_parent(parent_pid: int) -> None:
    """Make this child get SIGTERM when ``parent_pid`` dies, whatever kills it.

    ``PR_SET_PDEATHSIG`` where Linux offers it; the parent may have died before
    the call took effect, so its pid is checked after, and a daemon thread keeps
    checking it (the portable fallback, and a second guard).
    """
    _set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True,
                     name="cerebro-parent-watch").start()


def _set_parent_death_signal(signum: int) -> bool:
    """Ask Linux to send ``signum`` when the parent dies; False where that is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0


def _watch_parent(parent_pid: int) -> None:
    """Send ourselves SIGTERM once the parent is gone (we were re-parented)."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    log.error("the parent API process %d is gone: stopping this one", parent_pid)
    os.kill(os.getpid(), signal.SIGTERM)
