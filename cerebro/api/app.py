"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The Tornado application: routes, and the context every handler shares.
Tagline: A short table of roads, all leading to the dispatcher.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tornado.web import Application

from cerebro.api import handlers
from cerebro.dispatch import Dispatcher

_NAME = r"([A-Za-z_][A-Za-z0-9_]*)"


@dataclass
class Context:
    """What every handler needs: settings, registry, dispatcher, the model-call
    executor, and the async submitter (set by the async path when configured)."""

    settings: object
    registry: object
    dispatcher: Dispatcher
    executor: ThreadPoolExecutor
    submitter: object = None


def make_context(settings, registry, submitter=None):
    """Build the shared :class:`Context` for one API process."""
    return Context(settings, registry, Dispatcher(registry),
                   ThreadPoolExecutor(max_workers=settings.threads,
                                      thread_name_prefix="cerebro-model"),
                   submitter)


def make_app(ctx, extra_routes=()):
    """The Tornado :class:`Application` serving ``ctx``; ``extra_routes`` are
    ``(pattern, handler)`` pairs added by other transports (such as task status)."""
    args = {"ctx": ctx}
    routes = [(pattern, handler, args) for pattern, handler in extra_routes]
    routes += [
        (r"/healthz", handlers.HealthHandler, args),
        (r"/readyz", handlers.ReadyHandler, args),
        (r"/metrics", handlers.MetricsHandler, args),
        (r"/openapi.json", handlers.OpenAPIHandler, args),
        (r"/v1/modules", handlers.ModulesHandler, args),
        (rf"/v1/{_NAME}/{_NAME}", handlers.EndpointHandler, args),
    ]
    return Application(routes, default_handler_class=handlers.NotFoundHandler,
                       default_handler_args=args, compress_response=False)
