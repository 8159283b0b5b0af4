"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Commands that print: a reader that goes away (``| head``) ends them quietly, exit 141.
Tagline: Stop talking when nobody listens, and say nothing about it.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from cerebro.settings import Settings

#: A sub-command: ``func(args, settings)`` returning the exit code.
Command = Callable[["argparse.Namespace", "Settings"], int]

# The exit code of a command whose reader went away (128 + SIGPIPE, as the shell reports).
EXIT_OUTPUT_CLOSED = 141


def _silence_stdout() -> None:
    """Point the closed stdout at /dev/null, so the interpreter's last flush of what is still
    buffered does not print 'Exception ignored ... BrokenPipeError' (the recipe of the Python
    docs, "Note on SIGPIPE")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def printing(command: Command) -> Command:
    """Wrap a command that only prints: when its reader goes away (``| head``) it stops
    quietly with :data:`EXIT_OUTPUT_CLOSED` instead of a BrokenPipeError traceback."""
    @functools.wraps(command)
    def run(args: argparse.Namespace, settings: Settings) -> int:
        """Run the command, then flush, so a closed pipe is noticed here and not at exit."""
        try:
            code = command(args, settings)
            sys.stdout.flush()
            return code
        except BrokenPipeError:
            _silence_stdout()
            return EXIT_OUTPUT_CLOSED
    return run
