"""
Author:  Cerebro team
Date:    2026-11-24
Subject: ``cerebro consume``: run the Kafka consumer for every declared topic (or those named).
Tagline: Open the mailbox, and keep it open through every storm.

Start more processes with the same ``--group`` to share the partitions. The
process stops cleanly on SIGTERM or SIGINT: the batch in hand finishes, its
offsets are committed, the client closes (a static member keeps its partitions
until its session times out, so a restart gets them straight back). A refusal
no retry can fix stops it with exit code 2 and a message saying what to change.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING

from cerebro.settings import ConfigurationError

if TYPE_CHECKING:
    import argparse

    from cerebro.consumer.router import Router
    from cerebro.core import Core
    from cerebro.settings import Settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
             settings: Settings, formatter: type[argparse.HelpFormatter]) -> None:
    """Add the ``consume`` sub-command to the ``cerebro`` parser."""
    p = subparsers.add_parser("consume", help="consume Kafka events and dispatch them to modules",
                              formatter_class=formatter,
                              description="Consume Kafka topics, run each event through its expose "
                                          "function and post the outcome to the main app. Failed "
                                          "events go to <topic>.dlq.")
    p.add_argument("topics", nargs="*", default=list(settings.kafka_topics),
                   help="topics to consume (CEREBRO_KAFKA_TOPICS; default: every declared topic)")
    p.add_argument("--group", default=settings.kafka_group,
                   help="consumer group (CEREBRO_KAFKA_GROUP)")
    p.add_argument("--bootstrap", default=",".join(settings.kafka_bootstrap),
                   help="bootstrap servers host:port,... (CEREBRO_KAFKA_BOOTSTRAP)")
    p.add_argument("--api-version", default=settings.kafka_api_version,
                   help="broker version such as 3.7; empty negotiates (CEREBRO_KAFKA_API_VERSION)")
    p.add_argument("--modules", default=None,
                   help="comma-separated modules to load (CEREBRO_MODULES; default all)")
    p.add_argument("--concurrency", type=int, default=settings.consumer_concurrency,
                   help="threads running handlers and main-app calls "
                        "(CEREBRO_CONSUMER_CONCURRENCY)")
    p.add_argument("--max-poll-records", type=int, default=settings.kafka_max_poll_records,
                   help="largest batch per poll (CEREBRO_KAFKA_MAX_POLL_RECORDS)")
    p.add_argument("--retries", type=int, default=settings.retries,
                   help="retries of a retryable failure before dead-lettering (CEREBRO_RETRIES)")
    p.add_argument("--main-app-url", default=settings.main_app_url,
                   help="main-app base URL outcomes are posted to (CEREBRO_MAIN_APP_URL)")
    p.set_defaults(func=_cmd_consume)


def _cmd_consume(args: argparse.Namespace, settings: Settings) -> int:
    """Apply the command-line options and run the consumer until stopped."""
    changes = {
        "kafka_topics": tuple(args.topics),
        "kafka_group": args.group,
        "kafka_bootstrap": tuple(b.strip() for b in args.bootstrap.split(",") if b.strip()),
        "kafka_api_version": args.api_version,
        "consumer_concurrency": args.concurrency,
        "kafka_max_poll_records": args.max_poll_records,
        "retries": args.retries,
        "main_app_url": args.main_app_url,
    }
    if args.modules is not None:
        changes["modules"] = tuple(m for m in args.modules.split(",") if m)
    return consume(settings.replace(**changes))


def consume(settings: Settings) -> int:
    """Run one consumer process with ``settings``; returns the exit code. Raises
    :class:`ConfigurationError` (exit 2) for what no retry can fix (:mod:`.fatal`)."""
    from cerebro.consumer.membership import Membership
    from cerebro.consumer.router import Router
    from cerebro.consumer.topics import prepare
    from cerebro.core import Core

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: _stop(stop, number))
    # the reloader starts once the runner follows module changes (_serve): a folder added
    # while the broker is still awaited is then seen as a change, not absorbed unseen
    core = Core.start("consumer", settings, watch=False)
    membership = Membership(None)
    try:
        router = Router(core.registry, settings.kafka_topics, settings.consumer_event_id_field)
        membership = Membership.claim(settings.kafka_instance_id, settings.kafka_group)
        prepare(settings, router.topics)
        _serve(settings, core, router, membership.instance_id, stop)
    finally:
        core.stop()
        membership.release()
    log.info("consumer stopped")
    return 0


def _serve(settings: Settings, core: Core, router: Router, instance_id: str | None,
           stop: threading.Event) -> None:
    """Open the main-app client and the dead-letter producer, then run the poll loop (following
    module folders added or removed) until ``stop`` is set; close them all."""
    from cerebro.consumer.dlq import DeadLetters
    from cerebro.consumer.notify import Notifier
    from cerebro.consumer.processor import Processor
    from cerebro.consumer.runner import Runner, until_connected

    try:
        notifier = Notifier.from_settings(settings, core.policy, stop)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    dead_letters = until_connected(lambda: DeadLetters.from_settings(settings),
                                   "dead-letter producer", settings, stop)
    if dead_letters is None:
        notifier.close()
        return
    processor = Processor(router, core, notifier, dead_letters, stop_event=stop)
    runner = Runner(settings, router, processor, settings.kafka_group, stop,
                    instance_id=instance_id, announce=core.beacon.tell)
    runner.follow_modules(core)
    core.watch()
    try:
        runner.run()
    finally:
        processor.close()
        dead_letters.close()
        notifier.close()


def _stop(stop: threading.Event, signum: int) -> None:
    """Signal handler: ask the loop to finish the batch in hand and exit."""
    log.info("received %s: finishing the current batch", signal.Signals(signum).name)
    stop.set()
