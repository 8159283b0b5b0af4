"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Logging set-up shared by every Cerebro service process, Sherlock included.
Tagline: Every service speaks in the same voice, to the same ears.

Every service (api, worker, consumer, build...) calls :func:`configure` once at
start: console logging at ``CEREBRO_LOG_LEVEL``, and Sherlock's handler on the
root logger so every exception logged with a traceback, by any logger, lands
in Sherlock's file (configured by the ``SHERLOCK_*`` variables).
"""

import logging

import sherlock
from cerebro.settings import ConfigurationError, parse_log_level


def configure(settings, service):
    """Configure the root logger for ``service`` (api, worker, consumer, build...)
    and install Sherlock's exception handler for it (idempotent).

    An unknown level (one that bypassed :func:`~cerebro.settings.load_settings`, such
    as a ``--loglevel`` flag) raises :class:`ConfigurationError`, never becomes INFO.
    """
    try:
        level = parse_log_level(settings.log_level)
    except ValueError as exc:
        raise ConfigurationError(f"log level {settings.log_level!r} is not valid: {exc}") from None
    logging.basicConfig(
        level=getattr(logging, level),
        format=f"%(asctime)s %(levelname)s [{service}:%(process)d] %(name)s: %(message)s",
    )
    sherlock.install(service)
