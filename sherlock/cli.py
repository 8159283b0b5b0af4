"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The ``sherlock`` command: digest, tail, stats and settings.
Tagline: Ask the detective; get one clear answer, or one clear line of why not.

Every failure prints one line ``sherlock: error: ...`` on stderr and exits
non-zero (1 for a failed run, 2 for bad usage or settings); success exits 0.
A reader that stops early (``sherlock tail | head -1``) ends the command
quietly with exit 141, as a tool killed by SIGPIPE does.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import sys
from collections import deque
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TextIO

from sherlock import digest as digest_module
from sherlock.mailer import MailError
from sherlock.record import ID_KEYS
from sherlock.settings import describe, load_settings
from sherlock.store import stores

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sherlock.settings import SherlockSettings


# The exit code of a command whose reader went away (128 + SIGPIPE, as the shell reports).
EXIT_OUTPUT_CLOSED = 141


class OutputClosed(Exception):
    """The reader of the command's output went away (``| head``): not an error."""


class _Output:
    """The command's output stream; a write to a closed pipe raises :class:`OutputClosed`, so
    it is never mistaken for another broken pipe (such as the SMTP connection)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        """Write ``text``; a closed reader becomes :class:`OutputClosed`."""
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            raise OutputClosed() from None

    def flush(self) -> None:
        """Flush the stream; a closed reader becomes :class:`OutputClosed`."""
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise OutputClosed() from None


def _silence(stream: TextIO) -> None:
    """Point a closed ``stream`` at /dev/null, so the interpreter's last flush of what is still
    buffered does not print 'Exception ignored ... BrokenPipeError' (the recipe of the Python
    docs, "Note on SIGPIPE"). A stream without a file descriptor is left alone."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _hours(text: str) -> float:
    """An ``--hours`` value: a finite number greater than zero (argparse says why not)."""
    try:
        hours = float(text)
    except ValueError:
        hours = math.nan
    if not (math.isfinite(hours) and hours > 0):
        raise argparse.ArgumentTypeError(
            f"must be a finite number greater than zero, not {text!r}")
    return hours


def _parser(settings: SherlockSettings) -> argparse.ArgumentParser:
    """The argument parser (defaults shown in ``--help`` come from the settings)."""
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="sherlock", formatter_class=formatter,
        description="Sherlock, the exception logger: mail the digest, look at the records.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    digest = commands.add_parser(
        "digest", formatter_class=formatter,
        help="mail the exceptions recorded since the last digest",
        description="Group the records since the last digest by fingerprint and mail "
                    "them (text + HTML). The watermark moves only after a successful send.")
    digest.add_argument("--hours", type=_hours, default=settings.hours,
                        help="window named in the subject; the look-back of a first run "
                             "(SHERLOCK_HOURS)")
    digest.add_argument("--dry-run", action="store_true",
                        help="print the digest instead of sending it; the watermark stays")
    digest.add_argument("--html", action="store_true",
                        help="with --dry-run, print the HTML part instead of the text part")

    tail = commands.add_parser("tail", formatter_class=formatter,
                               help="print the newest records of every node, one line each")
    tail.add_argument("-n", "--lines", type=int, default=20, help="number of records")
    tail.add_argument("--json", action="store_true", help="print the records as JSON lines")

    stats = commands.add_parser("stats", formatter_class=formatter,
                                help="count the records of the last hours by kind (no email)")
    stats.add_argument("--hours", type=_hours, default=settings.hours, help="look-back window")

    commands.add_parser("settings", formatter_class=formatter,
                        help="print every SHERLOCK_* setting in force (password masked)")
    return parser


def _fmt_ts(ts: float) -> str:
    """A record time for humans."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def cmd_digest(settings: SherlockSettings, args: argparse.Namespace, out: _Output) -> int:
    """``sherlock digest``: send (or print) the digest; one summary line on success."""
    summary = digest_module.run(settings, hours=args.hours, dry_run=args.dry_run,
                                out=out, html=args.html)
    if args.dry_run:
        return 0
    for warning in summary["warnings"]:
        print(f"sherlock: warning: {warning}", file=sys.stderr)
    if summary["sent"]:
        refused = summary.get("refused") or []
        note = f" ({len(refused)} refused: {', '.join(refused)})" if refused else ""
        print(f"sherlock: sent \"{summary['subject']}\" to "
              f"{summary['recipients'] - len(refused)} recipient(s){note}", file=out)
    else:
        print("sherlock: nothing to report since "
              f"{summary['since']}; no email sent", file=out)
    if summary["removed"]:
        names = ", ".join(key.rpartition("/")[2] for key in summary["removed"])
        print(f"sherlock: removed {len(summary['removed'])} idle node store(s) (all digested, "
              f"untouched for {settings.node_retention_days} days): {names}", file=out)
    return 0


def cmd_tail(settings: SherlockSettings, args: argparse.Namespace, out: _Output) -> int:
    """``sherlock tail``: the newest ``-n`` records of every store (the root and each node's),
    merged by time; a node's records show ``[node]`` after the time.

    Each store is read in turn (its files closed before the next store's are opened), keeping
    its newest ``-n``; those are then merged.
    """
    count = max(args.lines, 0)
    newest = [deque(store.read(), maxlen=count) for store in stores(settings)]
    merged = heapq.merge(*newest, key=lambda record: float(record["ts"]))
    records = deque(merged, maxlen=count)
    for record in records:
        if args.json:
            out.write(json.dumps(record) + "\n")
            continue
        where = ".".join(str(record[k]) for k in ("module", "function") if record.get(k))
        ids = " ".join(f"{k}={record[k]}" for k in ID_KEYS if record.get(k))
        node = f" [{record['node']}]" if record.get("node") else ""
        out.write(f"{_fmt_ts(record['ts'])}{node} {record.get('service')} {where or '-'} "
                  f"{record.get('type')}: {record.get('message')} {ids}".rstrip() + "\n")
    return 0


def cmd_stats(settings: SherlockSettings, args: argparse.Namespace, out: _Output) -> int:
    """``sherlock stats``: counts by kind over the last ``--hours`` (watermark untouched)."""
    digest = digest_module.collect(settings, hours=args.hours)
    out.write(f"{digest.total} exception(s) in {len(digest.groups)} kind(s) in the last "
              f"{float(args.hours)} hours\n")
    for group in digest.groups:
        out.write(f"{group.count:>8}  {group.type}  [{group.fingerprint}]  "
                  f"last {_fmt_ts(group.last_seen)}  "
                  f"{','.join(sorted(group.services))}  {', '.join(sorted(group.modules))}\n")
    state = digest_module.load_state(settings)
    if state.get("watermark"):
        out.write(f"last digest covered records up to {state.get('watermark_time')}\n")
    return 0


def cmd_settings(settings: SherlockSettings, _args: argparse.Namespace, out: _Output) -> int:
    """``sherlock settings``: the table of settings in force."""
    rows = list(describe(settings))
    width = max(len(var) for var, _value, _help in rows)
    for var, value, text in rows:
        out.write(f"{var:<{width}}  {value or '(empty)'}\n{'':<{width}}    {text}\n")
    return 0


COMMANDS = {"digest": cmd_digest, "tail": cmd_tail, "stats": cmd_stats,
            "settings": cmd_settings}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; return the exit code."""
    out = out or sys.stdout
    try:
        settings = load_settings()
    except ValueError as exc:
        print(f"sherlock: error: {exc}", file=sys.stderr)
        return 2
    args = _parser(settings).parse_args(argv)
    stream = _Output(out)
    try:
        code = COMMANDS[args.command](settings, args, stream)
        stream.flush()
        return code
    except OutputClosed:
        _silence(out)
        return EXIT_OUTPUT_CLOSED
    except (digest_module.DigestError, MailError) as exc:
        print(f"sherlock: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"sherlock: error: {exc.strerror or exc}"
              f"{f': {exc.filename}' if exc.filename else ''}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sherlock: error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
