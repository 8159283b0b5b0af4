"""
Author:  Cerebro team
Date:    2026-11-24
Subject: ``cerebro worker``, ``beat``, ``flower``, ``callbacks failed|retry`` and ``queues delete``.
Tagline: Start the hands, open the window, sweep the undelivered.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from envsettings import redact

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from celery import Celery

    from cerebro.settings import Settings


def run_celery(app: Celery, argv: list[str]) -> int:
    """Run a ``celery`` sub-command (``worker``, ``beat``, ``flower``) on ``app``; return its
    exit code.

    Does what ``app.start`` does, but keeps the code: in click's non-standalone
    mode the command *returns* it (a worker's ``Unrecoverable error``, such as a
    queue declared with other arguments, gives 1), and both ``app.start`` and
    ``app.worker_main`` drop that return value, so the process would exit 0 and
    a supervisor would take a fatal start-up error for a clean stop.
    """
    from celery.bin.celery import celery as command
    from click.exceptions import Exit

    command.params[0].default = app
    try:
        return command.main(args=argv, standalone_mode=False) or 0
    except Exit as exc:
        return exc.exit_code
    finally:
        command.params[0].default = None


def _modules(settings: Settings) -> list[str]:
    """Names of the modules a default worker serves (every discovered module)."""
    from cerebro.core import Core
    core = Core.start("worker", settings, load=False, watch=False, configure_logging=False)
    return sorted(core.registry.modules)


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run a Celery worker for the chosen module queues with the project's settings."""
    if not settings.callback_secret.get_secret_value():
        print("cerebro worker: CEREBRO_CALLBACK_SECRET is empty; callbacks to the main app "
              "must be signed", file=sys.stderr)
        return 2
    from cerebro.clients.rabbitmq import check_broker
    from cerebro.clients.redis import check_redis
    from cerebro.core import Core
    from cerebro.taskqueue.celery_app import make_app
    from cerebro.tasks import consumer
    from cerebro.tasks import task  # noqa: F401  (the shared tasks join the app)
    # a refused password, virtual host or Redis database: exit 2 now, before any work
    check_broker(settings.broker_url.get_secret_value(), settings.broker_timeout)
    check_redis(settings.result_backend.get_secret_value(), settings.broker_timeout)
    settings = settings.replace(log_level=args.loglevel)
    # models are loaded here, before the pool forks: its processes share their pages (copy
    # on write) instead of each loading its own copy; each process then follows the volume
    core = Core.start("worker", settings, load=True, watch=False)
    task.inherit(core)
    names = [n.strip() for n in (args.queues or "").split(",") if n.strip()]
    every_module = not names
    if every_module:
        # every module, plus the default queue where scheduled jobs (sherlock.digest) land
        modules = sorted(core.registry.modules)
        names = modules + ["default"] if modules else []
    if not names:
        print(f"cerebro worker: no modules in {settings.modules_package}/ and no --queues",
              file=sys.stderr)
        return 2
    app = make_app(settings)
    consumer.stop_on_refusal(app)
    if every_module:
        consumer.follow_modules(app, core)
    queues = ",".join(core.names.worker_queues(names))
    concurrency = args.concurrency or settings.worker_concurrency or os.cpu_count() or 1
    hostname = args.hostname.replace("{pid}", str(os.getpid()))
    argv = ["worker", f"--queues={queues}", f"--concurrency={concurrency}",
            f"--loglevel={args.loglevel}", f"--hostname={hostname}", f"--pool={args.pool}",
            "--task-events", "--without-gossip"]
    gc.freeze()  # what is loaded now stays out of the collector: its pages stay shared
    code = run_celery(app, argv)
    if consumer.REFUSED:  # RabbitMQ refused the URL after start-up: exit 2, not 1
        raise consumer.REFUSED[0]
    return code


def _cmd_flower(args: argparse.Namespace, settings: Settings) -> int:
    """Run Flower on the project's broker with basic auth."""
    if not settings.flower_password.get_secret_value():
        print("cerebro flower: set CEREBRO_FLOWER_PASSWORD (Flower always runs with basic auth)",
              file=sys.stderr)
        return 2
    if ":" in settings.flower_user:
        print("cerebro flower: CEREBRO_FLOWER_USER cannot contain ':'", file=sys.stderr)
        return 2
    # Through the environment, so the password never shows in `ps`.
    password = settings.flower_password.get_secret_value()
    os.environ["FLOWER_BASIC_AUTH"] = f"{settings.flower_user}:{password}"
    from cerebro.taskqueue.celery_app import make_app
    app = make_app(settings)
    argv = ["flower", f"--port={args.port}", f"--address={args.address}",
            f"--purge_offline_workers={args.purge_offline_workers}"]
    return run_celery(app, argv)


def _cmd_beat(args: argparse.Namespace, settings: Settings) -> int:
    """Run Celery beat with celery-redbeat: it sends the scheduled tasks (Sherlock's digest) to
    the workers. Every node may run one: the beat holding the Redis lock sends, the others
    wait for it as standbys (``CEREBRO_STATE_DIR/beat.json`` says which this one is)."""
    interval = args.max_interval
    problem = _beat_problem(settings, interval)
    if problem:
        print(f"cerebro beat: {problem}", file=sys.stderr)
        return 2
    from cerebro import logsetup
    from cerebro.clients.redis import check_redis
    from cerebro.taskqueue.celery_app import BEAT_SCHEDULER, beat_options, make_app
    logsetup.configure(settings.replace(log_level=args.loglevel), "beat")
    check_redis(settings.result_backend.get_secret_value(), settings.broker_timeout)
    app = make_app(settings)
    app.conf.update(beat_options(settings))  # beat's app only: the URL holds a password
    argv = ["beat", f"--scheduler={BEAT_SCHEDULER}", f"--loglevel={args.loglevel}",
            f"--max-interval={interval}"]
    _follow_beat_role(settings)
    try:
        return run_celery(app, argv)
    finally:
        _beat_status(settings, None)


def _beat_interval(settings: Settings) -> int:
    """Default longest sleep of beat: a quarter of the lock timeout (so the active beat renews
    its lock several times before it expires, and a standby tries to take it that often)."""
    return max(1, int(settings.beat_lock_timeout // 4))


def _beat_problem(settings: Settings, interval: int) -> str | None:
    """Why beat cannot keep its lock with these values, or ``None``."""
    timeout = settings.beat_lock_timeout
    if timeout < 2:
        return f"CEREBRO_BEAT_LOCK_TIMEOUT={timeout:g} is too short: 2 seconds at least"
    if interval < 1 or interval * 2 > timeout:
        return (f"--max-interval {interval} must be 1 to half of CEREBRO_BEAT_LOCK_TIMEOUT "
                f"({timeout:g}): the lock would expire between two renewals")
    return None


def _follow_beat_role(settings: Settings) -> None:
    """Write ``beat.json`` as a standby now, and as the active beat once redbeat's handler of
    ``beat_init`` (connected first, when redbeat is imported) returns holding the lock."""
    import importlib

    from celery import signals

    # imported now, so its beat_init handler (which takes the lock) is connected before ours
    importlib.import_module("redbeat.schedulers")

    def took_lock(sender: object = None, **_kwargs: object) -> None:
        """redbeat acquired the lock (or gave up trying): record the role."""
        scheduler = getattr(sender, "scheduler", None)
        lock = getattr(scheduler, "lock", None)
        _beat_status(settings, "active" if lock is not None else "standby")

    signals.beat_init.connect(took_lock, weak=False)
    _beat_status(settings, "standby")


def _beat_status(settings: Settings, role: str | None) -> None:
    """Write this beat's role to ``CEREBRO_STATE_DIR/beat.json`` (``None``: remove the file)."""
    import json

    from cerebro.taskqueue.celery_app import beat_lock_key, beat_status_path
    path = beat_status_path(settings)
    if role is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    status = {"pid": os.getpid(), "role": role, "since": time.time(),
              "lock": beat_lock_key(settings)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status))
    os.replace(tmp, path)


def _when(timestamp: float | None) -> str:
    """A Unix time as ISO 8601 UTC."""
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def _unreadable_reporter(command: str, skipped: list[Path]) -> Callable[[Path, str], None]:
    """An ``on_unreadable`` callback: warn on stderr naming the file and count it in
    ``skipped``."""
    def warn(path: Path, reason: str) -> None:
        """Report one skipped dead-letter file."""
        skipped.append(path)
        print(f"cerebro callbacks {command}: warning: skipping unreadable entry {path} "
              f"({reason}); it is left in place", file=sys.stderr)
    return warn


def _skipped_note(skipped: list[Path]) -> str:
    """The summary's note on skipped files ('' when none)."""
    if not skipped:
        return ""
    return f"; {len(skipped)} unreadable file(s) skipped and kept (fix or move them)"


def _cmd_failed(args: argparse.Namespace, settings: Settings) -> int:
    """List dead-lettered callbacks; unreadable files are skipped with a warning."""
    from cerebro import jsonio
    from cerebro.callbacks import DeadLetterStore
    store = DeadLetterStore.from_settings(settings)
    skipped: list[Path] = []
    entries = store.list(on_unreadable=_unreadable_reporter("failed", skipped))
    if args.json:  # the file keeps the whole URL (to send it again); nothing prints a password
        print(jsonio.dumps([dict(e.to_dict(), url=redact(e.url), reason=redact(e.reason))
                            for e in entries]).decode())
    else:
        for e in entries:
            print(f"{e.id}  failed {_when(e.failed_at)}  attempts={e.attempts}  "
                  f"retries={e.retries}  {redact(e.url)}\n    {redact(e.reason)}")
    print(f"{len(entries)} failed callback(s) in {store.directory}{_skipped_note(skipped)}",
          file=sys.stderr)
    return 0


def _cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    """Re-send dead-lettered callbacks once each; delivered ones are removed.

    Unreadable files are skipped (with a warning) and never deleted; the exit
    code is then 1, as when a callback is still failing.
    """
    from cerebro.callbacks import DeadLetterStore, UnreadableEntry
    from cerebro.clients.http import MainAppClient
    if not settings.callback_secret.get_secret_value():
        print("cerebro callbacks retry: CEREBRO_CALLBACK_SECRET is empty", file=sys.stderr)
        return 2
    store = DeadLetterStore.from_settings(settings)
    client = MainAppClient.from_settings(settings)
    skipped: list[Path] = []
    try:
        outcomes = store.retry(client, args.id, _unreadable_reporter("retry", skipped))
    except KeyError as exc:
        print(f"cerebro callbacks retry: {exc.args[0]}", file=sys.stderr)
        return 2
    except UnreadableEntry as exc:
        print(f"cerebro callbacks retry: {exc}; it is left in place", file=sys.stderr)
        return 2
    finally:
        client.close()
    failed = 0
    for entry, result in outcomes:
        if result.ok:
            print(f"{entry.id}  delivered (HTTP {result.status})")
        else:
            failed += 1
            print(f"{entry.id}  still failing: {result.describe()}")
    print(f"{len(outcomes) - failed} delivered, {failed} still failing{_skipped_note(skipped)} "
          f"({time.strftime('%H:%M:%S')})", file=sys.stderr)
    return 1 if failed or skipped else 0


def _cmd_queues_delete(args: argparse.Namespace, settings: Settings) -> int:
    """Delete the task queues (empty ones only, unless --force) and their exchanges."""
    from cerebro.names import Names
    from cerebro.taskqueue.topology import delete
    names = [n.strip() for n in (args.queues or "").split(",") if n.strip()]
    broker = Names.from_settings(settings)
    queues = broker.worker_queues(names) if names else broker.task_queues(_modules(settings))
    url = settings.broker_url.get_secret_value()
    kept = delete(url, queues, [], if_empty=not args.force)
    delete(url, [], [q for q in queues if q not in kept])
    for name in queues:
        if name in kept:
            held = "messages" if kept[name] is None else f"{kept[name]} message(s)"
            print(f"{name}  kept: it still holds {held} (drain it, or --force)")
        else:
            print(f"{name}  removed (queue and exchange)")
    return 1 if kept else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
             settings: Settings, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``worker``, ``flower`` and ``callbacks`` to the ``cerebro`` command."""
    p = subparsers.add_parser("worker", help="run a Celery worker for async (external=True) calls",
                              formatter_class=formatter)
    p.add_argument("--queues", default="",
                   help="comma-separated modules (or queue names) to serve; default: every "
                        f"module, queue {settings.queue_prefix}.<module> (CEREBRO_QUEUE_PREFIX)")
    p.add_argument("--concurrency", type=int, default=settings.worker_concurrency,
                   help="worker processes, 0 = one per CPU core (CEREBRO_WORKER_CONCURRENCY)")
    p.add_argument("--loglevel", default=settings.log_level, help="log level (CEREBRO_LOG_LEVEL)")
    p.add_argument("--hostname", default="cerebro-{pid}@%h",
                   help="worker node name ({pid}: this process id, %%h: host name)")
    p.add_argument("--pool", default="prefork", choices=("prefork", "solo", "threads"),
                   help="Celery execution pool")
    p.set_defaults(func=_cmd_worker)

    p = subparsers.add_parser("beat", help="run Celery beat (sends scheduled tasks: Sherlock's "
                                           "digest at SHERLOCK_DIGEST_AT); one per node: the one "
                                           "holding the Redis lock sends, the others stand by",
                              formatter_class=formatter)
    p.add_argument("--loglevel", default=settings.log_level, help="log level (CEREBRO_LOG_LEVEL)")
    p.add_argument("--max-interval", type=int, default=_beat_interval(settings),
                   help="longest sleep between two checks of the schedule (and between two "
                        "tries of a standby to take the lock), in seconds; at most half of "
                        "CEREBRO_BEAT_LOCK_TIMEOUT")
    p.set_defaults(func=_cmd_beat)

    p = subparsers.add_parser("flower", help="run Flower (Celery monitor) with basic auth",
                              formatter_class=formatter)
    p.add_argument("--port", type=int, default=settings.flower_port,
                   help="port (CEREBRO_FLOWER_PORT)")
    p.add_argument("--address", default=settings.flower_address,
                   help="address to bind (CEREBRO_FLOWER_ADDRESS)")
    p.add_argument("--purge-offline-workers", type=int, default=3600,
                   help="seconds after which offline workers disappear from Flower")
    p.set_defaults(func=_cmd_flower)

    p = subparsers.add_parser("callbacks", help="failed (dead-lettered) callbacks to the main app",
                              formatter_class=formatter)
    sub = p.add_subparsers(dest="callbacks_command", required=True, metavar="ACTION")
    q = sub.add_parser("failed", help="list dead-lettered callbacks", formatter_class=formatter)
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=_cmd_failed)
    q = sub.add_parser("retry", help="re-send dead-lettered callbacks (all, or one with --id)",
                       formatter_class=formatter)
    q.add_argument("--id", default=None,
                   help="the entry id (as listed by `cerebro callbacks failed`)")
    q.set_defaults(func=_cmd_retry)

    p = subparsers.add_parser("queues", help="the task queues on RabbitMQ",
                              formatter_class=formatter)
    sub = p.add_subparsers(dest="queues_command", required=True, metavar="ACTION")
    q = sub.add_parser("delete", help="delete the task queues and their exchanges, e.g. to switch "
                                      "CEREBRO_QUEUE_TYPE (stop the API and workers first)",
                       formatter_class=formatter)
    q.add_argument("--queues", default="",
                   help="comma-separated modules (and/or 'default'); default: every module and "
                        f"the default queue, {settings.queue_prefix}.<module>")
    q.add_argument("--force", action="store_true",
                   help="delete queues that still hold messages too (the messages are lost)")
    q.set_defaults(func=_cmd_queues_delete)
