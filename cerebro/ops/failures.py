"""
Author:  Cerebro team
Date:    2026-11-29
Subject: A program that failed for good, and why: supervisord's state plus its log's last error.
Tagline: When someone leaves the stage for good, read the last thing they said.

supervisord leaves a program FATAL when it crashed at every start, and EXITED
when a Cerebro command exited 2 (a misconfiguration: not restarted, see
:mod:`cerebro.ops.conf`) or a one-shot failed. :func:`failure` tells these
apart from a program that is merely stopped or restarting, and gives the
reason a person needs: the last error line of the program's log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cerebro.ops import programs

TAIL_BYTES = 65536
# a line that says something went wrong (log levels, exception names, CLI errors)
ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL|FATAL|[A-Za-z]*(Error|Exception))\b|error|refused|"
                        r"denied|invalid|not valid|cannot|could not|^cerebro \w+: ", re.I)


def last_error_line(path: str | None) -> str | None:
    """The last line of the log at ``path`` that reads like an error (else its last line);
    None when the log is empty or unreadable."""
    if not path:
        return None
    try:
        with open(path, "rb") as log:
            log.seek(0, 2)
            log.seek(max(0, log.tell() - TAIL_BYTES))
            lines = [line.strip() for line in log.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return None
    lines = [line for line in lines if line]
    errors = [line for line in lines if ERROR_LINE.search(line)]
    found = errors or lines
    return found[-1][:300] if found else None


def _row(name: str) -> programs.Program | None:
    """The program table's row of ``name`` (None for a program of a hand-written conf)."""
    try:
        return programs.by_name(name)
    except KeyError:
        return None


def failed_state(info: Mapping[str, Any]) -> str | None:
    """What makes the program failed for good (FATAL, a misconfiguration's exit, a one-shot's
    failed exit), or None when it is running, stopped or being restarted."""
    state, code = info["statename"], info.get("exitstatus")
    if state == "FATAL":
        return f"FATAL: {info.get('description') or 'it would not stay up'}"
    if state != "EXITED" or not code:
        return None
    row = _row(info["name"])
    if row is not None and row.restart:
        if code == row.config_exit:
            return f"exit status {code}: a misconfiguration, not restarted"
        return None  # any other exit is being restarted
    return f"exit status {code}"


def failure(info: Mapping[str, Any]) -> str | None:
    """Why the program failed for good, with its log's last error line; None when it has not."""
    state = failed_state(info)
    if state is None:
        return None
    line = last_error_line(info.get("stdout_logfile"))
    return f"{state}; log: {line}" if line else state
