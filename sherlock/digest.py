"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The digest: records since the watermark, grouped by fingerprint, rendered, mailed once.
Tagline: A thousand footprints, one trail, one letter in the morning.

:func:`run` reads every record stamped since the durable watermark (the end
of the last digest that was sent), groups them by fingerprint, renders the
text and HTML parts with the Jinja2 templates in ``sherlock/templates`` and
sends them. The watermark moves only after the SMTP server accepted the
message, so a failed or interrupted run loses nothing and a repeated run
mails nothing twice (a crash in the instant between the server's "250 OK"
and the state write is the only way to get a digest twice, never none).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sherlock import alerts, mailer
from sherlock.record import ID_KEYS, truncate
from sherlock.settings import load_settings
from sherlock.store import (Store, iso_utc, open_private, private_dir, read_handles,
                            write_json_atomic)

if TYPE_CHECKING:
    from collections.abc import Container, Iterable, Mapping
    from typing import Self

    from _typeshed import SupportsWrite
    from jinja2 import Environment

    from sherlock.settings import SherlockSettings

STATE_NAME = "digest-state.json"
DIGEST_LOCK_NAME = ".digest.lock"
TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_GROUPS = 50
MAX_SAMPLES = 5
MAX_EMAIL_TRACEBACK_CHARS = 16000
MAX_KNOWN_FINGERPRINTS = 2000


class DigestError(Exception):
    """The digest could not be built or sent; the message is one line."""


@dataclass
class Group:
    """Every record sharing one fingerprint."""

    fingerprint: str
    type: str
    message: str = ""
    count: int = 0
    first_seen: float = float("inf")
    last_seen: float = float("-inf")
    services: set[str] = field(default_factory=set)
    modules: set[str] = field(default_factory=set)
    hosts: set[str] = field(default_factory=set)
    where: str = ""
    traceback: str = ""
    samples: list[dict[str, object]] = field(default_factory=list)
    is_new: bool = False

    def add(self, record: Mapping[str, Any]) -> None:
        """Count ``record`` in; the newest record supplies message, place and traceback."""
        ts = float(record["ts"])
        self.count += 1
        self.first_seen = min(self.first_seen, ts)
        self.services.add(record.get("service") or "unknown")
        where = ".".join(str(record[k]) for k in ("module", "function") if record.get(k))
        if where:
            self.modules.add(where)
        if record.get("host"):
            self.hosts.add(record["host"])
        ids = {k: record[k] for k in ID_KEYS if record.get(k)}
        if ids:
            self.samples.append({"time": record.get("time") or iso_utc(ts), **ids})
            del self.samples[:-MAX_SAMPLES]
        if ts >= self.last_seen:
            self.last_seen = ts
            self.message = record.get("message") or ""
            self.where = record.get("where") or ""
            self.traceback = truncate(record.get("traceback") or "", MAX_EMAIL_TRACEBACK_CHARS)


@dataclass
class Digest:
    """What one digest reports."""

    project: str
    hours: float
    sent_on: datetime
    since: float
    until: float
    groups: list[Group]
    warnings: list[str] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Number of exceptions (the sum of the group counts)."""
        return sum(g.count for g in self.groups)

    @property
    def subject(self) -> str:
        """``Sherlock detected N exceptions in Project in last H hours on YYYY-MM-DD``; with
        drift alerts, ``N exceptions and 1 drifting model (name)`` names them too."""
        drifting = sorted({str(a.get("subject")) for a in self.alerts
                           if a.get("source") == "drift"})
        also = (f" and {len(drifting)} drifting model{'s' if len(drifting) > 1 else ''} "
                f"({', '.join(drifting)})") if drifting else ""
        return (f"Sherlock detected {self.total} exceptions{also} in {self.project} "
                f"in last {float(self.hours)} hours on {self.sent_on:%Y-%m-%d}")


def group_records(records: Iterable[Mapping[str, Any]], known: Container[str] = ()
                  ) -> list[Group]:
    """Group records by fingerprint; most frequent first, then most recently seen."""
    groups: dict[str, Group] = {}
    for record in records:
        key = record.get("fingerprint") or record.get("type") or "?"
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(key, record.get("type") or "?", is_new=key not in known)
        group.add(record)
    return sorted(groups.values(), key=lambda g: (-g.count, -g.last_seen, g.fingerprint))


# -- the watermark ----------------------------------------------------------------


def state_path(settings: SherlockSettings) -> Path:
    """Where the digest state (watermark) lives."""
    return Path(settings.dir) / STATE_NAME


def load_state(settings: SherlockSettings) -> dict[str, Any]:
    """The digest state: ``{"watermark": ts, ...}``; empty before the first digest."""
    path = state_path(settings)
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise DigestError(f"cannot read the digest state {path}: {exc}") from None
    if not isinstance(state, dict) or not isinstance(state.get("watermark", 0), (int, float)):
        raise DigestError(f"the digest state {path} is malformed; fix or delete it")
    return state


def save_state(settings: SherlockSettings, state: Mapping[str, Any]) -> None:
    """Write the digest state atomically (temp file + rename)."""
    write_json_atomic(state_path(settings), state)


class _DigestLock:
    """A non-blocking exclusive lock so two digests never run at once."""

    def __init__(self, settings: SherlockSettings) -> None:
        self.path = Path(settings.dir) / DIGEST_LOCK_NAME
        self.fd: int | None = None

    def __enter__(self) -> Self:
        """Take the lock or raise :class:`DigestError`."""
        private_dir(self.path.parent)
        self.fd = open_private(self.path, os.O_RDWR)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise DigestError("another digest is running (lock "
                              f"{self.path} is held)") from None
        return self

    def __exit__(self, *exc_info: object) -> Literal[False]:
        """Release the lock."""
        os.close(self.fd)  # type: ignore[arg-type]  # set by __enter__
        return False


# -- building and rendering -------------------------------------------------------


def collect(settings: SherlockSettings, *, since: float | None = None,
            hours: float | None = None, now: datetime | None = None,
            known: Container[str] = ()) -> Digest:
    """Build the :class:`Digest` of the records in ``[since, snapshot time)``.

    Without ``since``, the window is the last ``hours`` hours.
    """
    hours = settings.hours if hours is None else hours
    store = Store.from_settings(settings)
    until, handles = store.snapshot()
    if since is None:
        since = until - hours * 3600.0
    stats: dict[str, int] = {}
    records = read_handles(handles, since, until, settings.max_line_bytes, stats)
    groups = group_records(records, known)
    warnings: list[str] = []
    away = store.rotated_away()
    if away.get("through_ts", float("-inf")) >= since:
        warnings.append(
            f"Rotation deleted records up to {away.get('through')} before they were "
            "digested: some exceptions are missing from this digest. Raise "
            "SHERLOCK_BACKUPS or SHERLOCK_MAX_BYTES, or send digests more often.")
    if stats.get("bad_lines"):
        warnings.append(f"{stats['bad_lines']} unreadable line(s) in {settings.dir} were skipped.")
    sent_on = now or datetime.now(timezone.utc)
    found, failed = alerts.collect(settings, hours)
    return Digest(settings.project, hours, sent_on, since, until, groups, warnings + failed,
                  found)


def _environment() -> Environment:
    """The Jinja2 environment for the templates (HTML autoescaped)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(enabled_extensions=("html.j2",),
                                                   default_for_string=False),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters["utc"] = lambda ts: datetime.fromtimestamp(ts, timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC")
    env.filters["indent_block"] = lambda text, width=4: "\n".join(
        " " * width + line for line in str(text).rstrip("\n").splitlines())
    return env


def render(digest: Digest) -> tuple[str, str, str]:
    """Render ``(subject, text, html)`` for ``digest``."""
    env = _environment()
    shown = digest.groups[:MAX_GROUPS]
    hidden = digest.groups[MAX_GROUPS:]
    values = {
        "digest": digest, "subject": digest.subject, "project": digest.project,
        "hours": float(digest.hours), "total": digest.total, "groups": shown,
        "kinds": len(digest.groups), "hidden_kinds": len(hidden),
        "hidden_count": sum(g.count for g in hidden), "since": digest.since,
        "until": digest.until, "warnings": digest.warnings, "alerts": digest.alerts,
        "services": sorted({s for g in digest.groups for s in g.services}),
        "hosts": sorted({h for g in digest.groups for h in g.hosts}),
    }
    text = env.get_template("digest.txt.j2").render(values)
    html = env.get_template("digest.html.j2").render(values)
    return digest.subject, text, html


# -- running ------------------------------------------------------------------------


def run(settings: SherlockSettings, *, hours: float | None = None, dry_run: bool = False,
        now: datetime | None = None, out: SupportsWrite[str] | None = None,
        html: bool = False) -> dict[str, Any]:
    """Build the digest since the watermark and send it (or print it with ``dry_run``).

    Returns a summary dict. Raises :class:`DigestError` or
    :class:`~sherlock.mailer.MailError` on failure, the watermark untouched.
    With nothing to report nothing is sent (unless ``SHERLOCK_ALL_CLEAR``) and
    the watermark moves on.
    """
    hours = settings.hours if hours is None else float(hours)
    if hours <= 0:
        raise DigestError("--hours must be greater than zero")
    if not dry_run and not settings.recipients:
        raise DigestError("no recipients: set SHERLOCK_RECIPIENTS")
    out = out or sys.stdout
    if dry_run:
        return _run_once(settings, hours, True, now, out, html)
    try:
        lock = _DigestLock(settings)
        lock.__enter__()
    except OSError as exc:
        raise DigestError(f"cannot use {settings.dir}: {exc.strerror or exc}") from None
    try:
        return _run_once(settings, hours, False, now, out, html)
    finally:
        lock.__exit__()


def _run_once(settings: SherlockSettings, hours: float, dry_run: bool, now: datetime | None,
              out: SupportsWrite[str], html: bool) -> dict[str, Any]:
    """One digest pass (the digest lock is held unless ``dry_run``)."""
    state = load_state(settings)
    known = state.get("known", {})
    try:
        digest = collect(settings, since=state.get("watermark"), hours=hours, now=now,
                         known=known)
    except OSError as exc:
        raise DigestError(f"cannot read {settings.dir}: {exc.strerror or exc}") from None
    summary = {"subject": digest.subject, "exceptions": digest.total,
               "alerts": len(digest.alerts),
               "kinds": len(digest.groups), "since": iso_utc(digest.since),
               "until": iso_utc(digest.until), "sent": False, "dry_run": dry_run,
               "recipients": len(settings.recipients), "warnings": digest.warnings}
    nothing = not digest.groups and not digest.alerts and not settings.all_clear
    if dry_run:
        subject, text, html_part = render(digest)
        out.write(f"Subject: {subject}\nFrom: {settings.sender}\n"
                  f"To: {', '.join(settings.recipients) or '(no SHERLOCK_RECIPIENTS)'}\n")
        if nothing:
            out.write("(nothing to report: no email would be sent)\n")
        out.write("\n" + (html_part if html else text))
        return summary
    if not nothing:
        subject, text, html_part = render(digest)
        message = mailer.build_message(subject, text, html_part, settings.sender,
                                       settings.recipients)
        summary["refused"] = mailer.send(settings, message)
        summary["sent"] = True
    for group in digest.groups:
        known[group.fingerprint] = group.last_seen
    if len(known) > MAX_KNOWN_FINGERPRINTS:
        newest = sorted(known.items(), key=lambda kv: kv[1])[-MAX_KNOWN_FINGERPRINTS:]
        known = dict(newest)
    state.update({"watermark": digest.until, "watermark_time": iso_utc(digest.until),
                  "last_run": {"at": iso_utc(time.time()), "sent": summary["sent"],
                               "subject": summary["subject"],
                               "exceptions": summary["exceptions"]},
                  "known": known})
    try:
        save_state(settings, state)
    except OSError as exc:
        raise DigestError(f"sent, but could not save the watermark in {settings.dir}: "
                          f"{exc.strerror or exc} (the next digest will repeat these)") from None
    return summary


def run_scheduled() -> dict[str, Any]:
    """Entry point for Celery beat (task ``sherlock.digest``) and cron: read the
    settings from the environment, run the digest, return its summary, raise on failure."""
    return run(load_settings())
