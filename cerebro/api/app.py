"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The Tornado application: routes, and the context every handler shares.
Tagline: A short table of roads, all leading to the dispatcher.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tornado.log import access_log
from tornado.web import Application, RequestHandler

from cerebro.api import handlers, tasks
from cerebro.api.deadlines import BodyDeadlines
from cerebro.api.endpoint_route import ENDPOINT_PATH, NAME, EndpointCall, EndpointRouter
from cerebro.api.limits import FailedKeys
from cerebro.batching import Batcher
from cerebro.runner import Runner

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cerebro.api.submit import Submitter
    from cerebro.core import Core
    from cerebro.endpoint import Endpoint


@dataclass
class Context:
    """What every handler needs: the core (settings, registry, dispatcher), the
    model-call runners, and the async submitter.

    Each module gets its own :class:`~cerebro.runner.Runner` (``CEREBRO_THREADS``
    threads), so a slow module never queues calls to another one.
    """

    core: Core
    submitter: Submitter | None = None
    runners: dict[str, Runner] = field(default_factory=dict)
    batchers: dict[str, Batcher] = field(default_factory=dict)
    inflight: set[EndpointCall] = field(default_factory=set)
    stopping: bool = False
    api_keys: tuple[bytes, ...] = field(init=False)
    failed_keys: FailedKeys = field(init=False)
    bodies: BodyDeadlines = field(init=False)  # CEREBRO_BODY_TIMEOUT, kept by one sweep

    def __post_init__(self) -> None:
        """Shortcuts to the core's parts, and the API keys encoded once."""
        self.settings = self.core.settings
        self.registry = self.core.registry
        self.dispatcher = self.core.dispatcher
        self.api_keys = tuple(key.get_secret_value().encode()
                              for key in self.settings.api_keys)
        self.failed_keys = FailedKeys(self.settings.auth_failure_limit)
        self.bodies = BodyDeadlines(self.settings.body_timeout)

    def runner(self, module: str) -> Runner:
        """The threads running ``module``'s model calls in this process."""
        runner = self.runners.get(module)
        if runner is None:
            runner = self.runners[module] = Runner(self.settings.threads, f"cerebro-{module}")
        return runner

    def batcher(self, endpoint: Endpoint) -> Batcher:
        """The :class:`~cerebro.batching.Batcher` of a batch endpoint in this process."""
        batcher = self.batchers.get(endpoint.key)
        if batcher is None:
            batcher = self.batchers[endpoint.key] = Batcher(
                self.dispatcher, endpoint, self.runner(endpoint.module),
                max_size=self.core.batch_size(endpoint))
        return batcher

    def forget(self, modules: Iterable[str]) -> None:
        """Drop the batchers of modules added (again) or removed, so a module's new code
        never runs through a batcher holding its old function; its runner threads stay,
        idle, for when it comes back. Call it on the IOLoop's thread."""
        names = set(modules)
        for key in [k for k, b in self.batchers.items() if b.endpoint.module in names]:
            del self.batchers[key]

    async def drain(self, timeout: float) -> int:
        """Stop keeping connections alive and wait (up to ``timeout`` s) until no endpoint
        request is in flight; returns how many still are."""
        self.stopping = True
        deadline = asyncio.get_running_loop().time() + timeout
        while self.inflight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        return len(self.inflight)

    def shutdown(self) -> None:
        """Stop the body sweep and every runner (calls not started are cancelled)."""
        self.bodies.stop()
        for runner in self.runners.values():
            runner.shutdown()


def log_request(handler: RequestHandler | EndpointCall) -> None:
    """The access log line: status, method, path (never the query string, which may carry
    data or keys), duration and client address; 4xx as warnings, 5xx as errors."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    if not access_log.isEnabledFor(level):  # the usual case for 2xx: nothing to format
        return
    request = handler.request
    access_log.log(level, "%d %s %s %.2fms %s", status, request.method, request.path,
                   1000.0 * request.request_time(), request.remote_ip)


def make_app(ctx: Context) -> Application:
    """The Tornado :class:`Application` serving ``ctx``."""
    args = {"ctx": ctx}
    # Tornado tries the routes in order: the endpoint route, which nearly every request
    # takes, comes first after the one route it would shadow (/v1/tasks/<id>)
    routes: list[tuple[Any, ...]] = [
        (r"/v1/tasks/([^/]+)", tasks.TaskStatusHandler, args),
        (ENDPOINT_PATH, EndpointRouter(ctx, log_request)),
        (r"/healthz", handlers.HealthHandler, args),
        (r"/readyz", handlers.ReadyHandler, args),
        (r"/metrics", handlers.MetricsHandler, args),
        (r"/openapi.json", handlers.OpenAPIHandler, args),
        (r"/v1/modules", handlers.ModulesHandler, args),
        (rf"/v1/modules/{NAME}/drift", handlers.DriftHandler, args),
    ]
    return Application(routes, default_handler_class=handlers.NotFoundHandler,
                       default_handler_args=args, compress_response=False,
                       log_function=log_request)
