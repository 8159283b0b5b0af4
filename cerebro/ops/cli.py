"""
Author:  Cerebro team
Date:    2026-11-24
Subject: ``cerebro up``, ``down``, ``status``, ``health``, ``bootstrap``, ``slice``, ``programs``.
Tagline: One switch for the lights, one for the dark, one window to look through.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from cerebro.printing import printing

if TYPE_CHECKING:
    import argparse

    from cerebro.ops.programs import Program
    from cerebro.settings import Settings


def _cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    """Build missing models, start supervisord, wait until everything is ready, print where."""
    from cerebro.ops import conf, supervise
    started = time.monotonic()
    env = supervise.supervisor_environment(settings)
    if not args.no_build:
        failed = supervise.build_missing(settings)
        if failed:
            print(f"cerebro up: the build of {', '.join(failed)} failed", file=sys.stderr)
            return 1
    try:
        supervise.start_supervisord(settings, env, Path(args.config) if args.config else None)
        conf.write_ctl_conf(settings.state_dir)  # supervisorctl -c <it> status: nothing to expand
        if args.no_wait:
            return 0
        supervise.wait_ready(settings, env, timeout=args.timeout)
    except RuntimeError as exc:
        print(f"cerebro up: {exc}", file=sys.stderr)
        return 1
    print(f"\nCerebro is up and ready in {time.monotonic() - started:.1f}s:")
    for line in supervise.endpoints(settings, env):
        print("  " + line)
    return 0


def _cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    """Stop supervisord and every program; wait until no process is left."""
    from cerebro.ops import supervise
    try:
        supervise.stop_supervisord(settings, timeout=args.timeout)
    except RuntimeError as exc:
        print(f"cerebro down: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_bootstrap(args: argparse.Namespace, settings: Settings) -> int:
    """Build every module whose model is missing from the data volume."""
    from cerebro.ops import supervise
    failed = supervise.build_missing(settings)
    if failed:
        print(f"cerebro bootstrap: the build of {', '.join(failed)} failed", file=sys.stderr)
        return 1
    print("cerebro bootstrap: every module has a model")
    return 0


def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """Programs, modules, queues, consumer lag and Sherlock in one place; with ``--all``,
    every node of the deployment (the roster in Redis)."""
    from cerebro.ops import deployment, status
    if args.forget:
        gone = deployment.forget(settings, args.forget)
        print(f"cerebro status: forgot {gone} process(es) of node {args.forget}")
        return 0
    report = deployment.collect(settings) if args.all else status.collect(settings)
    if args.json:
        from cerebro import jsonio
        print(jsonio.dumps(report).decode())
    else:
        print((deployment if args.all else status).render(report))
    return 0 if report["healthy"] else 1


def _cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    """Every program supervisord is configured to run is RUNNING and ready: exit 0, else 1;
    with ``--program``, that one program's readiness probe, without supervisord."""
    import os

    from cerebro.ops import health
    if args.program:
        code = health.run_program(settings, args.program, timeout=args.timeout)
    else:
        code = health.run(settings, timeout=args.timeout)
    if health.hanging():  # a probe outlived the deadline: do not wait for it to give up
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _cmd_slice(args: argparse.Namespace, settings: Settings) -> int:
    """Write a self-contained deployable folder for one module."""
    from cerebro.ops.slice import SliceError, write_slice
    try:
        folder = write_slice(settings, args.module, Path(args.dir), platform=args.platform,
                             force=args.force)
    except SliceError as exc:
        print(f"cerebro slice: {exc}", file=sys.stderr)
        return 2
    print(f"cerebro slice: {args.module} written to {folder} (see {folder / 'README.md'})")
    return 0


def _cmd_programs(args: argparse.Namespace, settings: Settings) -> int:
    """Print the program table (or the supervisord.conf generated from it)."""
    from cerebro.ops import conf, programs
    rows = programs.table()
    if args.conf:
        print(conf.platform_conf(rows), end="")
        return 0
    defaults = programs.default_services()
    if args.json:
        from cerebro import jsonio
        print(jsonio.dumps([{"name": r.name, "kind": r.kind, "command": r.command,
                             "runs_when": _runs_when(r, defaults), "about": r.about,
                             "probe": r.probe.__doc__ if r.probe else None}
                            for r in rows]).decode())
        return 0
    for row in rows:
        probe = (row.probe.__doc__ or "").strip() if row.probe else "-"
        print(f"{row.name:<11} {row.kind:<8} {_runs_when(row, defaults):<40} ready: {probe}")
    return 0


def _runs_when(row: Program, defaults: Collection[str]) -> str:
    """When supervisord starts a program, in words."""
    if row.kind == "broker":
        return f"{row.run_flag} (auto: nothing answers)"
    if row.name in defaults:
        return "by default (CEREBRO_PROGRAMS)"
    return "when CEREBRO_PROGRAMS names it"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
             settings: Settings, formatter: type[argparse.HelpFormatter]) -> None:
    """Add ``up``, ``down``, ``status``, ``health``, ``bootstrap``, ``slice`` and ``programs`` to
    the ``cerebro`` command."""
    p = subparsers.add_parser("up", help="start everything under supervisord and wait until ready",
                              formatter_class=formatter)
    p.add_argument("--config", default=None,
                   help="supervisord configuration file (default: generated from the program "
                        "table into CEREBRO_STATE_DIR/supervisord.conf)")
    p.add_argument("--timeout", type=float, default=settings.ready_timeout,
                   help="seconds to wait for readiness (CEREBRO_READY_TIMEOUT)")
    p.add_argument("--no-build", action="store_true", help="do not build missing models first")
    p.add_argument("--no-wait", action="store_true", help="return once supervisord is started")
    p.set_defaults(func=_cmd_up)

    p = subparsers.add_parser("down", help="stop supervisord and every program it runs",
                              formatter_class=formatter)
    p.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the stop")
    p.set_defaults(func=_cmd_down)

    p = subparsers.add_parser("status", help="programs, modules, queues, consumer lag, Sherlock",
                              formatter_class=formatter)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--all", action="store_true",
                   help="every node of the deployment: its programs, model versions and Kafka "
                        "partitions (from the heartbeats in Redis)")
    p.add_argument("--forget", metavar="NODE",
                   help="remove a node that is gone for good from the roster (its processes "
                        "show as LOST until then)")
    p.set_defaults(func=printing(_cmd_status))

    p = subparsers.add_parser("health",
                              help="exit 0 when every program supervisord runs is RUNNING and "
                                   "ready (the container's HEALTHCHECK)",
                              formatter_class=formatter)
    from cerebro.ops.health import DEFAULT_TIMEOUT
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help="seconds the whole command may take from its start (every probe "
                        "runs at once; Docker's HEALTHCHECK timeout is 5 s)")
    from cerebro.ops.health import add_arguments
    add_arguments(p)
    p.set_defaults(func=printing(_cmd_health))

    p = subparsers.add_parser("bootstrap", help="build every module whose model is missing",
                              formatter_class=formatter)
    p.set_defaults(func=_cmd_bootstrap)

    p = subparsers.add_parser("slice",
                              help="write a self-contained deployable folder for one module",
                              formatter_class=formatter)
    p.add_argument("module", help="the module to slice out")
    p.add_argument("dir", help="the folder to write (created; must be empty unless --force)")
    p.add_argument("--platform", default=None,
                   help="pip requirement of the platform package (default: cerebro==<this "
                        "version>; e.g. a path or git URL)")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder")
    p.set_defaults(func=_cmd_slice)

    p = subparsers.add_parser("programs",
                              help="the programs supervisord runs: when, and how readiness is "
                                   "probed (--conf: the generated supervisord.conf)",
                              formatter_class=formatter)
    p.add_argument("--conf", action="store_true",
                   help="print the supervisord.conf generated from the program table")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=printing(_cmd_programs))
