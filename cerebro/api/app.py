"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The Tornado application: routes, and the context every handler shares.
Tagline: A short table of roads, all leading to the dispatcher.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tornado.web import Application

from cerebro.api import handlers
from cerebro.batching import Batcher
from cerebro.dispatch import Dispatcher

_NAME = r"([A-Za-z_][A-Za-z0-9_]*)"


@dataclass
class Context:
    """What every handler needs: settings, registry, dispatcher, the model-call
    executors, and the async submitter (set by the async path when configured).

    Each module gets its own small thread pool (``CEREBRO_THREADS`` threads),
    so a slow module never queues calls to another one.
    """

    settings: object
    registry: object
    dispatcher: Dispatcher
    submitter: object = None
    executors: dict = field(default_factory=dict)
    batchers: dict = field(default_factory=dict)

    def executor(self, module):
        """The thread pool running ``module``'s model calls in this process."""
        pool = self.executors.get(module)
        if pool is None:
            pool = self.executors[module] = ThreadPoolExecutor(
                max_workers=self.settings.threads, thread_name_prefix=f"cerebro-{module}")
        return pool

    def batcher(self, endpoint):
        """The :class:`~cerebro.batching.Batcher` of a batch endpoint in this process."""
        batcher = self.batchers.get(endpoint.key)
        if batcher is None:
            batcher = self.batchers[endpoint.key] = Batcher(
                self.dispatcher, endpoint, self.executor(endpoint.module),
                max_size=None if self.settings.batching else 1)
        return batcher

    def shutdown(self):
        """Stop every thread pool (calls not started are cancelled)."""
        for pool in self.executors.values():
            pool.shutdown(wait=False, cancel_futures=True)


def make_context(settings, registry, submitter=None):
    """Build the shared :class:`Context` for one API process."""
    return Context(settings, registry, Dispatcher(registry), submitter)


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
