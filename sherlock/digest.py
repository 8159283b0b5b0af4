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

One digest covers the whole deployment: the root store of ``SHERLOCK_DIR``
and every node's store under ``SHERLOCK_DIR/nodes/`` (:func:`sherlock.store.stores`),
each with its own watermark in the digest state (``watermarks``: the ``ts`` its
next records start at, just after the newest record already mailed, so a node
whose clock differs from the digest's loses nothing). A store the state does not
know yet (a node that appeared since) is read whole. The stores are read one after
the other, each from its own snapshot, so only one store's files are open at a time
however many nodes came and went. The digest lock at the root of ``SHERLOCK_DIR``
(on the shared volume) keeps two digests, on any nodes, from mailing the same records.

Under that lock, once the digest is sent, a node store whose records were all mailed
by an earlier digest and whose files were not modified for ``SHERLOCK_NODE_RETENTION_DAYS``
is removed, and its watermark dropped (a pod's store, long after the pod is gone).
"""

from __future__ import annotations

import bisect
import fcntl
import itertools
import json
import math
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
from sherlock.store import (iso_utc, open_private, private_dir, read_handles,
                            remove_leftovers, stores, write_json_atomic)

if TYPE_CHECKING:
    from collections.abc import Container, Iterable, Iterator, Mapping
    from typing import BinaryIO, Self

    from _typeshed import SupportsWrite
    from jinja2 import Environment

    from sherlock.settings import SherlockSettings
    from sherlock.store import Store

STATE_NAME = "digest-state.json"
DIGEST_LOCK_NAME = ".digest.lock"
TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_GROUPS = 50
MAX_SAMPLES = 5
MAX_EMAIL_TRACEBACK_CHARS = 16000
MAX_KNOWN_FINGERPRINTS = 2000
DAY = 86400.0


class DigestError(Exception):
    """The digest could not be built or sent; the message is one line."""


class DigestBusy(DigestError):
    """Another digest holds the digest lock (it is mailing these records right now)."""


def origin(record: Mapping[str, Any]) -> str:
    """Where a record comes from, for humans: its host, and its node when that differs
    (``web-1 (node a)``); ``unknown`` when the record says neither."""
    host, node = record.get("host") or "", record.get("node") or ""
    if node and node != host:
        return f"{host} (node {node})" if host else f"node {node}"
    return host or "unknown"


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
    hosts: dict[str, int] = field(default_factory=dict)  # origin (host, node) -> count
    where: str = ""
    traceback: str = ""
    samples: list[dict[str, object]] = field(default_factory=list)  # the newest, oldest first
    is_new: bool = False
    sample_times: list[float] = field(default_factory=list, repr=False)  # ts of each sample

    def add(self, record: Mapping[str, Any]) -> None:
        """Count ``record`` in; the newest record supplies message, place and traceback.

        Records may come in any order (one store after the other): the samples kept are the
        :data:`MAX_SAMPLES` newest, in time order.
        """
        ts = float(record["ts"])
        self.count += 1
        self.first_seen = min(self.first_seen, ts)
        self.services.add(record.get("service") or "unknown")
        where = ".".join(str(record[k]) for k in ("module", "function") if record.get(k))
        if where:
            self.modules.add(where)
        where_from = origin(record)
        self.hosts[where_from] = self.hosts.get(where_from, 0) + 1
        ids = {k: record[k] for k in ID_KEYS if record.get(k)}
        if ids:
            place = bisect.bisect_right(self.sample_times, ts)
            self.sample_times.insert(place, ts)
            self.samples.insert(place, {"time": record.get("time") or iso_utc(ts), **ids})
            del self.sample_times[:-MAX_SAMPLES]
            del self.samples[:-MAX_SAMPLES]
        if ts >= self.last_seen:
            self.last_seen = ts
            self.message = record.get("message") or ""
            self.where = record.get("where") or ""
            self.traceback = truncate(record.get("traceback") or "", MAX_EMAIL_TRACEBACK_CHARS)

    @property
    def origins(self) -> list[str]:
        """``host (node n) x count`` for each place this kind happened, most frequent first."""
        ranked = sorted(self.hosts.items(), key=lambda item: (-item[1], item[0]))
        return [f"{name} x {count}" for name, count in ranked]


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
    marks: dict[str, float] = field(default_factory=dict)  # store key -> next digest's start

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
    """The digest state: ``{"watermark": ts, "watermarks": {store: ts}, ...}``; empty before
    the first digest. ``watermark`` (with ``watermark_time``) is the end of the last digest;
    ``watermarks`` the start of each store's next records (see :func:`marks_of`)."""
    path = state_path(settings)
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise DigestError(f"cannot read the digest state {path}: {exc}") from None
    if not isinstance(state, dict) or not isinstance(state.get("watermark", 0), (int, float)) \
            or not _marks_are_valid(state.get("watermarks", {})):
        raise DigestError(f"the digest state {path} is malformed; fix or delete it")
    return state


def _marks_are_valid(marks: object) -> bool:
    """True for a ``{store key: number}`` mapping."""
    return isinstance(marks, dict) and all(
        isinstance(key, str) and isinstance(value, (int, float)) and not isinstance(value, bool)
        for key, value in marks.items())


def marks_of(state: Mapping[str, Any]) -> dict[str, float] | None:
    """Each store's watermark in ``state``: ``None`` before the first digest. A state file of
    the single-store format (``watermark`` alone) gives the root store (``"."``) its
    watermark; node stores it does not name are then new, read whole."""
    if "watermarks" in state:
        return {key: float(value) for key, value in state["watermarks"].items()}
    if "watermark" in state:
        return {".": float(state["watermark"])}
    return None


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
            raise DigestBusy("another digest is running (lock "
                             f"{self.path} is held)") from None
        return self

    def __exit__(self, *exc_info: object) -> Literal[False]:
        """Release the lock."""
        os.close(self.fd)  # type: ignore[arg-type]  # set by __enter__
        return False


# -- building and rendering -------------------------------------------------------


def collect(settings: SherlockSettings, *, since: float | None = None,
            hours: float | None = None, now: datetime | None = None,
            known: Container[str] = (), marks: Mapping[str, float] | None = None) -> Digest:
    """Build the :class:`Digest` of every store's records from its start to its snapshot time.

    Without ``marks`` (a look at the last hours, or the very first digest) every store starts
    at ``since``, or ``hours`` before now. With ``marks`` (the digest state's watermarks) a
    store starts at its mark, and a store without one is new and read whole; ``since`` then
    only dates the period shown. The digest's ``marks`` are the starts of the next digest.

    The stores are read one after the other, each from its own snapshot (its files are
    opened, read and closed before the next store's are opened).
    """
    hours = settings.hours if hours is None else hours
    window = since if since is not None else time.time() - hours * 3600.0
    starts: dict[str, float | None] = {}
    newest: dict[str, float] = {}
    untils: list[float] = []
    warnings: list[str] = []

    def store_records(store: Store) -> Iterator[dict[str, Any]]:
        """One store's records, read from a snapshot taken when the previous store is done."""
        start = starts[store.key] = _start(store, marks, window)
        stats: dict[str, int] = {}
        snap_until, handles = store.snapshot()
        untils.append(snap_until)
        yield from _records(store, handles, start, snap_until, settings.max_line_bytes,
                            stats, newest)
        warnings.extend(_store_warnings(store, start, stats))

    records = itertools.chain.from_iterable(store_records(s) for s in stores(settings))
    groups = group_records(records, known)
    until = min(untils, default=time.time())
    oldest = min((g.first_seen for g in groups), default=window)
    shown_since = min(oldest, window)
    sent_on = now or datetime.now(timezone.utc)
    found, failed = alerts.collect(settings, hours)
    next_marks = {key: _next_mark(starts[key], newest.get(key)) for key in starts}
    return Digest(settings.project, hours, sent_on, shown_since, until, groups,
                  warnings + failed, found,
                  {key: mark for key, mark in next_marks.items() if mark is not None})


def _start(store: Store, marks: Mapping[str, float] | None, window: float) -> float | None:
    """Where ``store``'s records start: its mark, the window without marks, ``None`` (whole)
    for a store the marks do not name."""
    if marks is None:
        return window
    return marks.get(store.key)


def _records(store: Store, handles: list[BinaryIO], start: float | None, until: float,
             max_line_bytes: int, stats: dict[str, int], newest: dict[str, float]
             ) -> Iterator[dict[str, Any]]:
    """The store's records in ``[start, until)``, labelled with its node; the newest ``ts``
    read is kept in ``newest[store.key]``."""
    for record in read_handles(handles, start, until, max_line_bytes, stats):
        newest[store.key] = max(newest.get(store.key, -math.inf), _ts(record))
        yield store.label(record)


def _ts(record: Mapping[str, Any]) -> float:
    """A record's ``ts``."""
    return float(record["ts"])


def _next_mark(start: float | None, newest: float | None) -> float | None:
    """The next digest's start: just after the newest record read (records are stamped by
    their node's clock, so another node's clock never decides), else where this one started."""
    if newest is not None:
        return math.nextafter(newest, math.inf)
    return start


def _store_warnings(store: Store, start: float | None, stats: Mapping[str, int]) -> list[str]:
    """Records rotated away before they were digested, and unreadable lines, in ``store``.

    Rotation deleted undigested records when ``rotated-away.json`` names a newest deleted
    record at or after the store's start (any, for a store read whole: ``start`` ``None``).
    """
    warnings = []
    away = store.rotated_away()
    through = away.get("through_ts")
    if isinstance(through, (int, float)) and not isinstance(through, bool) \
            and (start is None or through >= start):
        warnings.append(
            f"Rotation deleted records up to {away.get('through')} in {store.dir} before they "
            "were digested: some exceptions are missing from this digest. Raise "
            "SHERLOCK_BACKUPS or SHERLOCK_MAX_BYTES, or send digests more often.")
    if stats.get("bad_lines"):
        warnings.append(f"{stats['bad_lines']} unreadable line(s) in {store.dir} were skipped.")
    return warnings


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
    marks = marks_of(state)
    try:
        digest = collect(settings, since=state.get("watermark"), hours=hours, now=now,
                         known=known, marks=marks)
    except OSError as exc:
        raise DigestError(f"cannot read {settings.dir}: {exc.strerror or exc}") from None
    summary = {"subject": digest.subject, "exceptions": digest.total,
               "alerts": len(digest.alerts),
               "kinds": len(digest.groups), "since": iso_utc(digest.since),
               "until": iso_utc(digest.until), "sent": False, "dry_run": dry_run,
               "recipients": len(settings.recipients), "warnings": digest.warnings,
               "removed": []}
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
    removed = summary["removed"] = _remove_idle_stores(settings, marks, digest.warnings)
    for key in removed:
        digest.marks.pop(key, None)
    for group in digest.groups:
        known[group.fingerprint] = group.last_seen
    if len(known) > MAX_KNOWN_FINGERPRINTS:
        newest = sorted(known.items(), key=lambda kv: kv[1])[-MAX_KNOWN_FINGERPRINTS:]
        known = dict(newest)
    state.update({"watermark": digest.until, "watermark_time": iso_utc(digest.until),
                  "watermarks": digest.marks,
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


def _remove_idle_stores(settings: SherlockSettings, marks: Mapping[str, float] | None,
                        warnings: list[str]) -> list[str]:
    """Remove every node store all of whose records an earlier digest mailed (``marks``, the
    state before this digest) and whose files were not modified for
    ``SHERLOCK_NODE_RETENTION_DAYS``; return their keys. Never the root store. A failure is
    added to ``warnings``: the digest is sent already."""
    idle_since = time.time() - settings.node_retention_days * DAY
    removed = []
    try:
        for store in stores(settings):
            mark = None if marks is None else marks.get(store.key)
            if store.node and store.remove_if_idle(mark, idle_since):
                removed.append(store.key)
        remove_leftovers(settings)
    except OSError as exc:
        warnings.append(f"could not remove idle node stores in {settings.dir}: "
                        f"{exc.strerror or exc}")
    return removed


def run_scheduled() -> dict[str, Any]:
    """Entry point for Celery beat (task ``sherlock.digest``) and cron: read the
    settings from the environment, run the digest, return its summary, raise on failure.

    A digest already running (on this node or another sharing ``SHERLOCK_DIR``) is mailing
    these records: this run does nothing and says so in its summary (``"skipped"``).
    """
    try:
        return run(load_settings())
    except DigestBusy as exc:
        return {"sent": False, "skipped": str(exc)}
