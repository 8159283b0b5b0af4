"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Sherlock's settings: every SHERLOCK_* environment variable, with its default, in one place.
Tagline: A detective keeps one notebook.

Nothing else in Sherlock reads ``os.environ`` for configuration: callers build a
:class:`SherlockSettings` with :func:`load_settings` (or take the cached
:func:`current`) and pass it down. ``sherlock settings`` prints the table with
the values in force, the SMTP password masked.

A value that does not parse fails loudly (``ValueError`` naming the variable;
``sherlock`` exits 2). Booleans are ``1/true/yes/on`` or ``0/false/no/off``, in
any case and with blanks ignored; any other word is refused. An empty boolean
means the same as an unset one: its default. Numbers that must be greater than
zero must also be finite (``nan`` and ``inf`` are refused).

This loader is deliberately independent of Cerebro's (``cerebro.settings``), so
Sherlock can be used on its own; the two follow the same rules.
"""

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SECURITY_MODES = ("none", "starttls", "ssl")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}


def _split(value):
    """Split a comma-separated string into a tuple of stripped, non-empty items."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _flag(value):
    """Read a boolean: 1/true/yes/on are true, 0/false/no/off false, anything else an error.

    An empty value never reaches here: :func:`load_settings` reads it as the default.
    """
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def _positive(parse):
    """Wrap ``parse`` so that zero, negative and non-finite (nan, inf) values are rejected."""
    def parse_positive(value):
        """Parse ``value`` and insist it is a finite number greater than zero."""
        number = parse(value)
        if not (math.isfinite(number) and number > 0):
            raise ValueError("must be a finite number greater than zero")
        return number
    return parse_positive


def _security(value):
    """Parse the SMTP security mode."""
    mode = value.strip().lower()
    if mode not in SECURITY_MODES:
        raise ValueError(f"must be one of {', '.join(SECURITY_MODES)}")
    return mode


def parse_clock(value):
    """Parse ``"HH:MM"`` into ``(hour, minute)``; raise ``ValueError`` otherwise."""
    hour, sep, minute = value.strip().partition(":")
    if not sep or not hour.isdigit() or not minute.isdigit() or len(minute) != 2:
        raise ValueError("expected HH:MM, such as 07:30")
    hour, minute = int(hour), int(minute)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValueError("hour must be 0-23 and minute 0-59")
    return hour, minute


def _clock(value):
    """Validate ``"HH:MM"`` and return it normalised (``7:5`` is refused, ``7:05`` kept)."""
    hour, minute = parse_clock(value)
    return f"{hour:02d}:{minute:02d}"


# name -> (environment variable, default as text, parser, help)
_SPEC = {
    "dir": ("SHERLOCK_DIR", str(PROJECT_ROOT / "logs" / "sherlock"), Path,
            "Directory of the exception file, its rotated backups and the digest state."),
    "project": ("SHERLOCK_PROJECT", "Falcon", str, "Project name in the digest subject."),
    "hours": ("SHERLOCK_HOURS", "24.0", _positive(float),
              "Digest window in hours (the subject's 'in last N hours'; first run's look-back)."),
    "max_bytes": ("SHERLOCK_MAX_BYTES", str(16 * 1024 * 1024), _positive(int),
                  "Size at which the exception file is rotated."),
    "backups": ("SHERLOCK_BACKUPS", "10", _positive(int),
                "Rotated files kept (sherlock.jsonl.1 ... .N); older ones are deleted."),
    "max_line_bytes": ("SHERLOCK_MAX_LINE_BYTES", str(64 * 1024), _positive(int),
                       "Largest record line; longer tracebacks/messages are truncated."),
    "smtp_host": ("SHERLOCK_SMTP_HOST", "localhost", str, "SMTP server host."),
    "smtp_port": ("SHERLOCK_SMTP_PORT", "0", int,
                  "SMTP port (0: 25 for none, 587 for starttls, 465 for ssl)."),
    "smtp_security": ("SHERLOCK_SMTP_SECURITY", "none", _security,
                      "SMTP transport security: none, starttls or ssl."),
    "smtp_user": ("SHERLOCK_SMTP_USER", "", str, "SMTP user name (empty: no login)."),
    "smtp_password": ("SHERLOCK_SMTP_PASSWORD", "", str,
                      "SMTP password (never printed or logged)."),
    "smtp_timeout": ("SHERLOCK_SMTP_TIMEOUT", "30", _positive(float),
                     "Seconds before an SMTP connection or command gives up."),
    "sender": ("SHERLOCK_SENDER", "sherlock@localhost", str, "From address of the digest."),
    "recipients": ("SHERLOCK_RECIPIENTS", "", _split,
                   "Comma-separated addresses of the on-call team."),
    "all_clear": ("SHERLOCK_ALL_CLEAR", "false", _flag,
                  "Send an 'all clear' digest when there is nothing to report."),
    "digest_at": ("SHERLOCK_DIGEST_AT", "07:00", _clock,
                  "Daily digest time HH:MM (Celery beat: the app's timezone, UTC by default)."),
}


@dataclass(frozen=True)
class SherlockSettings:
    """Sherlock's configuration, read from the environment by :func:`load_settings`."""

    dir: Path
    project: str
    hours: float
    max_bytes: int
    backups: int
    max_line_bytes: int
    smtp_host: str
    smtp_port: int
    smtp_security: str
    smtp_user: str
    smtp_password: str = field(repr=False)
    smtp_timeout: float
    sender: str
    recipients: tuple
    all_clear: bool
    digest_at: str

    @property
    def port(self):
        """The SMTP port in force (the security mode's standard port when 0)."""
        return self.smtp_port or DEFAULT_PORTS[self.smtp_security]

    @property
    def digest_clock(self):
        """``SHERLOCK_DIGEST_AT`` as ``(hour, minute)``."""
        return parse_clock(self.digest_at)

    def replace(self, **changes):
        """Return a copy with some values changed (for tests and CLI flags)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return SherlockSettings(**values)


def load_settings(environ=None):
    """Build :class:`SherlockSettings` from ``environ`` (default: ``os.environ``).

    A value that does not parse raises ``ValueError`` naming the variable. An empty
    boolean is read as its default.
    """
    environ = os.environ if environ is None else environ
    values = {}
    for name, (var, default, parse, _help) in _SPEC.items():
        raw = environ.get(var, default)
        if parse is _flag and not raw.strip():
            raw = default
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            raise ValueError(f"{var}={raw!r} is not valid: {exc}") from None
    return SherlockSettings(**values)


def describe(settings):
    """Yield ``(variable, value, help)`` rows; the password is shown only as set or not."""
    for name, (var, _default, _parse, text) in _SPEC.items():
        value = getattr(settings, name)
        if name == "smtp_password":
            value = "<set>" if value else ""
        elif isinstance(value, tuple):
            value = ",".join(value)
        yield var, str(value), text
