"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Sherlock's settings: every SHERLOCK_* environment variable, with its default, in one place.
Tagline: A detective keeps one notebook.

Nothing else in Sherlock reads ``os.environ`` for configuration: callers build a
:class:`SherlockSettings` with :func:`load_settings` and pass it down.
``sherlock settings`` prints the table with the values in force, the SMTP
password masked.

A value that does not parse fails loudly (``ValueError`` naming the variable;
``sherlock`` exits 2). Booleans are ``1/true/yes/on`` or ``0/false/no/off``, in
any case and with blanks ignored; any other word is refused. An empty boolean
means the same as an unset one: its default. Numbers that must be greater than
zero must also be finite (``nan`` and ``inf`` are refused).

The mechanism is :mod:`envsettings`, which Cerebro's settings use too: one
declaration per variable, secrets typed as secrets. Sherlock imports nothing of
the platform, so it can be used on its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator

from envsettings import Csv, EnvSettings, Flag, SecretStr, choice, setting

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SECURITY_MODES = ("none", "starttls", "ssl")
NODES_DIR = "nodes"
NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}


Security = Annotated[str, choice(*SECURITY_MODES)]


def parse_clock(value: str) -> tuple[int, int]:
    """Parse ``"HH:MM"`` into ``(hour, minute)``; raise ``ValueError`` otherwise."""
    hour: str | int  # the text, then the number
    minute: str | int
    hour, sep, minute = value.strip().partition(":")
    if not sep or not hour.isdigit() or not minute.isdigit() or len(minute) != 2:
        raise ValueError("expected HH:MM, such as 07:30")
    hour, minute = int(hour), int(minute)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValueError("hour must be 0-23 and minute 0-59")
    return hour, minute


def _clock(value: object) -> str:
    """Validate ``"HH:MM"`` and return it normalised (``7:5`` is refused, ``7:05`` kept)."""
    hour, minute = parse_clock(str(value))
    return f"{hour:02d}:{minute:02d}"


def _positive(value: object) -> object:
    """A number that must be finite and greater than zero (nan and inf are refused)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError("must be a finite number greater than zero") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError("must be a finite number greater than zero")
    return value


def _non_negative(value: object) -> object:
    """A whole number of seconds that must be zero or more."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError("must be a whole number of seconds, 0 or more") from None
    if number < 0:
        raise ValueError("must be a whole number of seconds, 0 or more")
    return number


def _node(value: object) -> str:
    """A node name: empty, or one safe path component (letters, digits, ``.``, ``_``, ``-``;
    starting with a letter or digit; at most 64 characters)."""
    name = str(value).strip()
    if name and not NODE_NAME.fullmatch(name):
        raise ValueError("must be one directory name: letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit, at most 64 characters")
    return name


PositiveFloat = Annotated[float, BeforeValidator(_positive)]
PositiveInt = Annotated[int, BeforeValidator(_positive)]
Clock = Annotated[str, BeforeValidator(_clock)]
NonNegativeInt = Annotated[int, BeforeValidator(_non_negative)]
NodeName = Annotated[str, BeforeValidator(_node)]


class SherlockSettings(EnvSettings):
    """Sherlock's configuration: one declaration per ``SHERLOCK_*`` variable."""

    dir: Path = setting(
        "SHERLOCK_DIR", PROJECT_ROOT / "logs" / "sherlock",
        "Directory of the exception file, its rotated backups and the digest state (on the "
        "shared volume in a multi-node deployment: every node's records and one digest state).")
    node: NodeName = setting(
        "SHERLOCK_NODE", "",
        "This node's name in a multi-node deployment: its records go to "
        "SHERLOCK_DIR/nodes/<name>/ (empty: to SHERLOCK_DIR itself, one node).")
    node_retention_days: PositiveFloat = setting(
        "SHERLOCK_NODE_RETENTION_DAYS", 7.0,
        "Days after which the digest removes a node's store (SHERLOCK_DIR/nodes/<name>/) whose "
        "records were all digested and whose files were not modified since (a retired pod's); "
        "never the root store.")
    project: str = setting(
        "SHERLOCK_PROJECT", "Falcon",
        "Project name in the digest's subject and footer ('Falcon' until you set it).")
    hours: PositiveFloat = setting(
        "SHERLOCK_HOURS", 24.0,
        "Digest window in hours (the subject's 'in last N hours'; first run's look-back).")
    max_bytes: PositiveInt = setting(
        "SHERLOCK_MAX_BYTES", 16 * 1024 * 1024, "Size at which the exception file is rotated.")
    backups: PositiveInt = setting(
        "SHERLOCK_BACKUPS", 10,
        "Rotated files kept (sherlock.jsonl.1 ... .N); older ones are deleted.")
    max_line_bytes: PositiveInt = setting(
        "SHERLOCK_MAX_LINE_BYTES", 64 * 1024,
        "Largest record line; longer tracebacks/messages are truncated.")
    smtp_host: str = setting("SHERLOCK_SMTP_HOST", "localhost", "SMTP server host.")
    smtp_port: int = setting(
        "SHERLOCK_SMTP_PORT", 0, "SMTP port (0: 25 for none, 587 for starttls, 465 for ssl).")
    smtp_security: Security = setting(
        "SHERLOCK_SMTP_SECURITY", "none", "SMTP transport security: none, starttls or ssl.")
    smtp_user: str = setting("SHERLOCK_SMTP_USER", "", "SMTP user name (empty: no login).")
    smtp_password: SecretStr = setting(
        "SHERLOCK_SMTP_PASSWORD", SecretStr(""), "SMTP password (never printed or logged).")
    smtp_timeout: PositiveFloat = setting(
        "SHERLOCK_SMTP_TIMEOUT", 30.0, "Seconds before an SMTP connection or command gives up.")
    sender: str = setting("SHERLOCK_SENDER", "sherlock@localhost", "From address of the digest.")
    recipients: Csv = setting(
        "SHERLOCK_RECIPIENTS", (), "Comma-separated addresses of the on-call team.")
    all_clear: Flag = setting(
        "SHERLOCK_ALL_CLEAR", False, "Send an 'all clear' digest when there is nothing to report.")
    alerts: Csv = setting(
        "SHERLOCK_ALERTS", ("cerebro.monitoring.alerts:collect",),
        "Alert providers (package.module:function) whose alerts join the digest, such as "
        "Cerebro's model drift (empty: exceptions only).")
    digest_at: Clock = setting(
        "SHERLOCK_DIGEST_AT", "07:00",
        "Daily digest time HH:MM (Celery beat: the app's timezone, UTC by default).")
    digest_every: NonNegativeInt = setting(
        "SHERLOCK_DIGEST_EVERY", 0,
        "Seconds between two digests (Celery beat); 0: daily at SHERLOCK_DIGEST_AT.")

    @property
    def port(self) -> int:
        """The SMTP port in force (the security mode's standard port when 0)."""
        return self.smtp_port or DEFAULT_PORTS[self.smtp_security]

    @property
    def store_dir(self) -> Path:
        """Where this process writes its records: ``SHERLOCK_DIR/nodes/<SHERLOCK_NODE>`` when
        the node is named, else ``SHERLOCK_DIR``."""
        return Path(self.dir) / NODES_DIR / self.node if self.node else Path(self.dir)

    @property
    def digest_clock(self) -> tuple[int, int]:
        """``SHERLOCK_DIGEST_AT`` as ``(hour, minute)``."""
        return parse_clock(self.digest_at)


def load_settings(environ: Mapping[str, str] | None = None) -> SherlockSettings:
    """The :class:`SherlockSettings` in ``environ`` (default: ``os.environ``).

    A value that does not parse raises ``ValueError`` naming the variable. An empty
    boolean is read as its default.
    """
    return SherlockSettings.load(environ)


def describe(settings: SherlockSettings) -> Iterator[tuple[str, str, str]]:
    """``(variable, value, help)`` rows; the password is shown only as set or not."""
    return settings.describe()
