"""
Author:  Cerebro team
Date:    2026-11-24
Subject: ``cerebro subscribe``: serve every module's requests from RabbitMQ and publish the results.
Tagline: Listen on every line at once, and answer each caller by name.

Run it under Supervisor like the consumer; start more processes to share the
queues. SIGTERM or SIGINT finish the batch in hand, wait for its confirms and
close; whatever was not answered is redelivered to another subscriber.
``--declare-only`` declares the exchanges and queues and exits (for a
deployment step, or a main app that publishes before any subscriber ran).

A module folder added while it runs is served without a restart (its queues
declared and consumed), a removed one no longer consumed
(:meth:`cerebro.core.Core.on_modules_changed`); a module that fails to import
is reported and waits, the others go on. RabbitMQ refusing the broker URL
(credentials, virtual host) stops it with exit 2 and a message naming
``CEREBRO_BROKER_URL``.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from cerebro.settings import ConfigurationError

if TYPE_CHECKING:
    import argparse

    from cerebro.core import Core
    from cerebro.pubsub.contract import Delivery
    from cerebro.pubsub.session import Session
    from cerebro.registry import Registry
    from cerebro.settings import Settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
             settings: Settings, formatter: type[argparse.HelpFormatter]) -> None:
    """Add the ``subscribe`` sub-command to the ``cerebro`` parser."""
    p = subparsers.add_parser(
        "subscribe", help="serve requests published to RabbitMQ, publish their results",
        formatter_class=formatter,
        description="Consume one durable queue per module from the requests exchange (routing "
                    "key <module>.<function>), run each request and publish its result to the "
                    "results exchange (<module>.<function>.<succeeded|failed>) or to reply_to. "
                    "Bad requests and requests failing past the retry limit are dead-lettered.")
    p.add_argument("--modules", default=None,
                   help="comma-separated modules to serve (CEREBRO_MODULES; default all)")
    p.add_argument("--broker-url", default=settings.broker_url,
                   help="RabbitMQ URL (CEREBRO_BROKER_URL)")
    p.add_argument("--prefetch", type=int, default=settings.pubsub_prefetch,
                   help="unacknowledged requests per module queue (CEREBRO_PUBSUB_PREFETCH)")
    p.add_argument("--retries", type=int, default=settings.retries,
                   help="retries of a retryable failure before dead-lettering (CEREBRO_RETRIES)")
    p.add_argument("--requests-exchange", default=settings.pubsub_requests_exchange,
                   help="requests exchange; queues are <exchange>.<module> "
                        "(CEREBRO_PUBSUB_REQUESTS_EXCHANGE)")
    p.add_argument("--results-exchange", default=settings.pubsub_results_exchange,
                   help="results exchange (CEREBRO_PUBSUB_RESULTS_EXCHANGE)")
    p.add_argument("--dlx", default=settings.pubsub_dlx,
                   help="dead-letter exchange and queue (CEREBRO_PUBSUB_DLX)")
    p.add_argument("--declare-only", action="store_true",
                   help="declare exchanges, queues and bindings, then exit")
    p.set_defaults(func=_cmd_subscribe)


def _cmd_subscribe(args: argparse.Namespace, settings: Settings) -> int:
    """Apply the command-line options and subscribe until stopped."""
    if args.prefetch < 1:
        raise ConfigurationError("--prefetch must be at least 1")
    if args.retries < 0:
        raise ConfigurationError("--retries cannot be negative")
    changes = {"broker_url": args.broker_url, "pubsub_prefetch": args.prefetch,
               "retries": args.retries,
               "pubsub_requests_exchange": args.requests_exchange,
               "pubsub_results_exchange": args.results_exchange, "pubsub_dlx": args.dlx}
    if args.modules is not None:
        changes["modules"] = tuple(m for m in args.modules.split(",") if m)
    return subscribe(settings.replace(**changes), declare_only=args.declare_only)


def served_functions(registry: Registry) -> dict[str, list[str]]:
    """Map every importable module to its function names (a broken module has none)."""
    functions = {name: sorted(mod.endpoints) for name, mod in registry.modules.items()
                 if not mod.import_error}
    broken = sorted(set(registry.modules) - set(functions))
    if broken:
        log.error("not subscribing for broken module(s) %s: their requests wait in their "
                  "queues until a fixed subscriber starts", ", ".join(broken))
    if not functions:
        raise ConfigurationError("no importable module to serve")
    return functions


def subscribe(settings: Settings, declare_only: bool = False) -> int:
    """Run one subscriber process with ``settings``; returns the exit code."""
    import queue

    import pika.exceptions

    from cerebro.core import Core
    from cerebro.pubsub import topology
    from cerebro.pubsub.handler import Handler
    from cerebro.pubsub.runner import Runner
    from cerebro.pubsub.session import Session

    # the core watches once the session follows its module changes (below)
    core = Core.start("subscriber", settings, load=not declare_only, watch=False)
    # pika logs every failed connection attempt as ERROR with a traceback (Sherlock would
    # file each one); the session logs every loss and reconnect itself, once, as a warning.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    try:
        functions = served_functions(core.registry)
        if declare_only:
            try:
                topology.declare_with(settings, core.names, functions)
            except pika.exceptions.AMQPError as exc:
                log.error("cannot declare on RabbitMQ: %s", exc or type(exc).__name__)
                return 1
            return 0
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda number, _frame: _stop(stop, number))
        inbox: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        session = Session(settings, core.names, functions, inbox, stop)
        core.on_modules_changed(follow_modules(core, session))
        core.watch()
        session.start()
        try:
            Runner(session, Handler(core), inbox, stop,
                   max_batch=settings.pubsub_prefetch * len(functions)).run()
        finally:
            session.shutdown()
    finally:
        core.stop()
    if session.fatal is not None:  # RabbitMQ refused: retrying cannot fix it (exit 2)
        raise session.fatal
    log.info("subscriber stopped")
    return 0


def follow_modules(core: Core, session: Session) -> Callable[[list[str], list[str]], None]:
    """The core's listener of module folders added or removed: hand the session the new
    importable modules with their functions (a broken one is reported and waits until its
    files change and it imports), and the removed ones. Never raises."""
    def changed(added: list[str], removed: list[str]) -> None:
        """Apply one change of the modules package."""
        try:
            modules = core.registry.modules
            importable = {name: sorted(modules[name].endpoints) for name in added
                          if name in modules and not modules[name].import_error}
            broken = sorted(set(added) - set(importable))
            if broken:
                log.error("not subscribing for new module(s) %s: they failed to import (their "
                          "requests wait in their queues)", ", ".join(broken))
            session.modules_changed(importable, removed)
        except Exception:  # a listener must never break the core's refresh
            log.exception("subscriber: applying module changes failed")
    return changed


def _stop(stop: threading.Event, signum: int) -> None:
    """Signal handler: finish the batch in hand, then close."""
    log.info("received %s: finishing the current batch", signal.Signals(signum).name)
    stop.set()
