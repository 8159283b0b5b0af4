"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Pre-forking: N API processes sharing one listening socket, restarted if they crash.
Tagline: Many hands on one door; the parent minds them all.

Unlike ``tornado.process.fork_processes``, the parent forwards SIGTERM and
SIGINT to its children and waits for them, so stopping ``cerebro serve``
never leaves orphans behind.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType

log = logging.getLogger(__name__)


def fork_workers(count: int) -> int:
    """Fork ``count`` children; return the child's index in each child.

    The parent never returns: it restarts children that die abnormally, and on
    SIGTERM/SIGINT forwards the signal, waits for every child and exits.
    """
    children: dict[int, int] = {}
    stopping: list[int] = []

    def spawn(index: int) -> bool:
        """Fork one child; returns True in the child."""
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            return True
        children[pid] = index
        return False

    index: int | None  # a child's index; None (below) for a pid not in ``children``
    for index in range(count):
        if spawn(index):
            return index

    def forward(signum: int, _frame: FrameType | None) -> None:
        """Pass a stop signal on to every child."""
        stopping.append(signum)
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while children:
        pid, status = os.wait()
        index = children.pop(pid, None)
        if index is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        if not stopping and code != 0:
            log.error("API process %d (pid %d) exited with %d; restarting it", index, pid, code)
            if spawn(index):
                return index
    sys.exit(0)
