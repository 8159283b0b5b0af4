"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Logging set-up shared by every Cerebro service process, Sherlock included.
Tagline: Every service speaks in the same voice, to the same ears, and never says a secret.

Every service (api, worker, consumer, build...) calls :func:`configure` once at
start (the core's start-up does it): console logging at ``CEREBRO_LOG_LEVEL``,
and Sherlock's handler on the root logger so every exception logged with a
traceback, by any logger, lands in Sherlock's file (configured by the
``SHERLOCK_*`` variables). Neither ever writes a secret: every console line
and every Sherlock record has the settings' secret values and any password
inside a URL masked.
"""

from __future__ import annotations

import logging

import sherlock
from cerebro.settings import ConfigurationError, Settings, parse_log_level
from envsettings import redact


class RedactingFormatter(logging.Formatter):
    """A formatter whose every line (message and traceback) has the secrets masked."""

    def __init__(self, fmt: str, secrets: tuple[str, ...]) -> None:
        super().__init__(fmt)
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        """The formatted record with passwords in URLs and the known secrets masked."""
        return redact(super().format(record), self.secrets)


def configure(settings: Settings, service: str) -> None:
    """Configure the root logger for ``service`` (api, worker, consumer, build...)
    and install Sherlock's exception handler for it (idempotent).

    An unknown level (one that bypassed :func:`~cerebro.settings.load_settings`, such
    as a ``--loglevel`` flag) raises :class:`ConfigurationError`, never becomes INFO.
    """
    try:
        level = parse_log_level(settings.log_level)
    except ValueError as exc:
        raise ConfigurationError(f"log level {settings.log_level!r} is not valid: {exc}") from None
    secrets = tuple(settings.secret_values())
    logging.basicConfig(level=getattr(logging, level))
    root = logging.getLogger()
    formatter = RedactingFormatter(
        f"%(asctime)s %(levelname)s [{service}:%(process)d] %(name)s: %(message)s", secrets)
    for handler in root.handlers:
        if type(handler) is logging.StreamHandler:
            handler.setFormatter(formatter)
    sherlock.install(service, secrets=secrets)
