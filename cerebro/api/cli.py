"""
Author:  Cerebro team
Date:    2026-11-29
Subject: ``cerebro serve``: run the REST API (the ``api`` program).
Tagline: Open the front door.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from cerebro.settings import Settings


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the REST API until stopped."""
    # prometheus_client must see PROMETHEUS_MULTIPROC_DIR before it is first imported
    from cerebro.api.server import prepare_multiprocess_metrics, serve
    if (args.processes or os.cpu_count() or 1) > 1:
        prepare_multiprocess_metrics()
    changes = {"host": args.host, "port": args.port, "processes": args.processes}
    if args.modules is not None:
        changes["modules"] = tuple(m for m in args.modules.split(",") if m)
    serve(settings.replace(**changes))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
             settings: Settings, formatter: type[argparse.HelpFormatter]) -> None:
    """Add the ``serve`` sub-command to the ``cerebro`` parser."""
    p = subparsers.add_parser("serve", help="run the REST API", formatter_class=formatter)
    p.add_argument("--host", default=settings.host, help="address to bind (CEREBRO_HOST)")
    p.add_argument("--port", type=int, default=settings.port, help="port (CEREBRO_PORT)")
    p.add_argument("--processes", type=int, default=settings.processes,
                   help="API processes, 0 = one per CPU core (CEREBRO_PROCESSES)")
    p.add_argument("--modules", default=None,
                   help="comma-separated modules to serve (CEREBRO_MODULES; default all)")
    p.set_defaults(func=_cmd_serve)
