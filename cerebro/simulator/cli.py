"""
Author:  Cerebro team
Date:    2026-11-29
Subject: ``cerebro simulate``: run the main-app simulator (the ``simulator`` program).
Tagline: Someone has to answer the door while the real house is being built.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from cerebro.settings import ConfigurationError

if TYPE_CHECKING:
    import argparse

    from cerebro.settings import Settings


def _secret(settings: Settings) -> tuple[str, str]:
    """The callback secret the stack signs with, and where it came from; raises
    ConfigurationError when there is none."""
    from cerebro.ops import secretfile
    secret, source = secretfile.value(settings, "CEREBRO_CALLBACK_SECRET",
                                      settings.callback_secret)
    if not secret:
        raise ConfigurationError(
            "CEREBRO_CALLBACK_SECRET is empty and no "
            f"{secretfile.path(settings)} holds one: the simulator checks signatures with the "
            "stack's secret (run it under `cerebro up`, or set the variable)")
    return secret, source


def _cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the simulated main app until stopped."""
    import asyncio

    from cerebro.simulator.app import sample_neighbourhood, serve
    from cerebro.simulator.recorder import Recorder
    if settings.main_app_url.get_secret_value().startswith("https:"):
        raise ConfigurationError("the simulator serves plain http and CEREBRO_MAIN_APP_URL is "
                                 "https: give it an http:// URL, or CEREBRO_RUN_SIMULATOR=false")
    secret, source = _secret(settings)
    neighbourhood = sample_neighbourhood(settings.modules_package)
    where = f"http://{args.host}:{args.port}"
    print(f"[simulator] the main app, simulated, on {where}: POST <any path> (signatures "
          f"checked with CEREBRO_CALLBACK_SECRET from {source}), GET /amenities"
          f"{'' if neighbourhood else ' (no listing_enrichment sample: 404)'}, "
          f"GET /simulator/received, POST /simulator/reset", flush=True)
    try:
        asyncio.run(serve(args.host, args.port, Recorder(secret, args.keep), neighbourhood))
    except OSError as exc:
        print(f"cerebro simulate: cannot listen on {where}: {exc}", file=sys.stderr)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
             settings: Settings, formatter: type[argparse.HelpFormatter]) -> None:
    """Add the ``simulate`` sub-command to the ``cerebro`` parser."""
    from cerebro.ops.inspection import main_app_address
    host, port = main_app_address(settings)
    p = subparsers.add_parser("simulate",
                              help="the main-app simulator (development): amenities for the "
                                   "samples, callbacks and events received and counted",
                              formatter_class=formatter)
    p.add_argument("--host", default=host, help="address to bind (CEREBRO_MAIN_APP_URL's host)")
    p.add_argument("--port", type=int, default=port,
                   help="port to bind (CEREBRO_MAIN_APP_URL's port)")
    p.add_argument("--keep", type=int, default=settings.simulator_keep,
                   help="last calls whose bodies GET /simulator/received shows "
                        "(CEREBRO_SIMULATOR_KEEP)")
    p.set_defaults(func=_cmd_simulate)
