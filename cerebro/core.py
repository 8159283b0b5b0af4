"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The core start-up every transport shares: settings, logging, modules, dispatcher, models.
Tagline: One way in: every door opens onto the same house.

The REST API, the Celery worker, the Kafka consumer, the pub-sub subscriber,
``cerebro slice``, the operations commands and the tests all build what they
need with :meth:`Core.start`, and nothing else assembles these parts::

    core = Core.start("consumer", settings)    # logging + Sherlock, modules, models, reloader
    call = core.dispatcher.prepare("vigilante", "screen", payload)
    outcome = core.dispatcher.run_batch([call], service=core.service)
    decision = core.policy.decide(error, attempt=1, waited=0.0)
    core.stop()

So a capability built here (hot reload, the outcome policy, batching limits,
broker names) holds on every transport at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from cerebro import logsetup
from cerebro.dispatch import Dispatcher
from cerebro.lifecycle.control import Tracker
from cerebro.monitoring.follow import Monitor
from cerebro.names import Names
from cerebro.outcomes import OutcomePolicy
from cerebro.registry import Registry
from cerebro.reporting import report
from cerebro.roster import Beacon
from cerebro.settings import Settings, load_settings

if TYPE_CHECKING:
    from cerebro.endpoint import Endpoint
    from cerebro.registry import Module

log = logging.getLogger(__name__)

RefreshListener = Callable[[Registry], None]
ModulesListener = Callable[[list[str], list[str]], object]


class PeriodicThread(threading.Thread):
    """A daemon thread calling ``func()`` every ``interval`` seconds until stopped."""

    def __init__(self, interval: float, func: Callable[[], object],
                 name: str = "cerebro-periodic") -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.func = func
        self._stop_event = threading.Event()

    def run(self) -> None:
        """Call the function on schedule; an exception is logged and never ends the loop."""
        while not self._stop_event.wait(self.interval):
            try:
                self.func()
            except Exception:
                log.exception("%s: periodic call failed", self.name)

    def stop(self) -> None:
        """Ask the thread to finish after its current call."""
        self._stop_event.set()


class Core:
    """What every transport needs, built once per process by :meth:`start`."""

    def __init__(self, settings: Settings, service: str, registry: Registry) -> None:
        self.settings = settings
        self.service = service
        self.registry = registry
        self.dispatcher = Dispatcher(registry)
        self.policy = OutcomePolicy.from_settings(settings)
        self.names = Names.from_settings(settings)
        self.lifecycle = Tracker(settings, service, registry)
        self.monitor = Monitor(settings, service, registry)
        self.beacon = Beacon(settings, service, registry)
        self._listeners: list[RefreshListener] = []
        self._module_listeners: list[ModulesListener] = []
        self._reloader: PeriodicThread | None = None

    @classmethod
    def start(cls, service: str, settings: Settings | None = None, *, load: bool = True,
              watch: bool = True, configure_logging: bool = True,
              on_refresh: RefreshListener | None = None) -> Core:
        """Build the core of one ``service`` process (api, worker, consumer, subscriber...).

        ``configure_logging``: console logging and Sherlock (off for commands that
        only print). ``load``: load every module's models now, and say what each
        module is doing. ``watch``: keep polling the data volume for new versions
        every ``CEREBRO_RELOAD_INTERVAL`` seconds (hot reload). ``on_refresh`` is
        called with the registry after every load (such as the API's metrics).
        """
        settings = settings or load_settings()
        if configure_logging:
            logsetup.configure(settings, service)
        core = cls(settings, service, Registry.discover(settings))
        if on_refresh is not None:
            core._listeners.append(on_refresh)
        if load:
            if not settings.model_signing_key.get_secret_value():
                log.warning("model signatures are not checked: CEREBRO_MODEL_SIGNING_KEY is "
                            "not set, so whoever can write the data volume can run code here")
            core.refresh()
            core.log_modules()
        if watch:
            core.watch()
        return core

    def add_refresh_listener(self, listener: RefreshListener) -> None:
        """Call ``listener(registry)`` after every refresh (as ``Core.start(on_refresh=)``)."""
        self._listeners.append(listener)

    def on_modules_changed(self, listener: ModulesListener) -> None:
        """Call ``listener(added, removed)`` (module names, on the reloader thread) after a
        refresh found module folders added to or removed from the modules package: each
        transport subscribes here to start or stop serving them (queues, topics)."""
        self._module_listeners.append(listener)

    def refresh(self) -> list[str]:
        """Pick up module folders added or removed, new model versions and the lifecycle
        (candidates, shadow, canary) from the data volume, and write the live profiles;
        returns the modules that swapped a model in."""
        added, removed = self.registry.scan()
        swapped = self.registry.refresh_models()
        _guarded(self.lifecycle.update)
        _guarded(self.monitor.update)
        if added or removed:
            for name in added:
                self.log_module(self.registry.modules[name], "new ")
            for changed in self._module_listeners:
                _guarded(changed, added, removed)
        for listener in self._listeners:
            _guarded(listener, self.registry)
        return swapped

    def watch(self) -> None:
        """Start the reloader thread and the roster's heartbeats (idempotent)."""
        if self._reloader is None:
            self._reloader = PeriodicThread(self.settings.reload_interval, self.refresh,
                                            name=f"cerebro-{self.service}-models")
            self._reloader.start()
        if self.settings.node_heartbeat > 0:
            self.beacon.start()

    def log_modules(self) -> None:
        """Say clearly what each module is doing (ready with its versions, or why not)."""
        for mod in self.registry.modules.values():
            self.log_module(mod)

    @staticmethod
    def log_module(mod: Module, prefix: str = "") -> None:
        """Say what one module is doing: ready with its versions, or why not."""
        versions = ", ".join(f"{h.artifact}={h.version}" for h in mod.handles) or "no models"
        if mod.ready:
            log.info("%smodule %s: ready (%s)", prefix, mod.name, versions)
        else:
            log.error("%smodule %s: %s: %s", prefix, mod.name, mod.status,
                      "; ".join(mod.errors()))

    def batch_size(self, endpoint: Endpoint) -> int:
        """How many calls to ``endpoint`` one call of its function may take: its declared
        batch size, or 1 for a plain function or with ``CEREBRO_BATCHING=false``."""
        if endpoint.batch is None or not self.settings.batching:
            return 1
        return endpoint.batch.max_size

    def stop(self) -> None:
        """Stop the reloader and write the live profiles counted so far."""
        if self._reloader is not None:
            self._reloader.stop()
            self._reloader = None
        if self.settings.node_heartbeat > 0:
            self.beacon.stop()
        self.monitor.flush()


def _guarded(listener: Callable[..., object], *args: object) -> None:
    """Call one listener; its failure is reported and never keeps the others from running."""
    try:
        listener(*args)
    except Exception as exc:
        report(exc, f"a listener of the core failed: {type(exc).__name__}: {exc}",
               service="core")
