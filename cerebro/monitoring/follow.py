"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Monitoring in a serving process: which versions are profiled, counts written, gauges set.
Tagline: Built once in the core, fed by every transport.

On every refresh of the core :meth:`Monitor.update` gives each module whose
served versions were published with a reference profile a
:class:`~cerebro.monitoring.live.ModuleMonitor` (``registry.monitors``, which
the dispatcher feeds), writes the counts of the slots that changed, and, in
the API, refreshes the drift gauges every ``CEREBRO_DRIFT_REFRESH`` seconds.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cerebro import volume
from cerebro.monitoring import drift
from cerebro.monitoring.live import (ModuleMonitor, VersionCounts, monitoring_dir,
                                     process_name, prune_old)
from cerebro.monitoring.policy import DEFAULT
from cerebro.monitoring.predictions import PredictionLog, log_dir

if TYPE_CHECKING:
    from cerebro.registry import Module, Registry
    from cerebro.settings import Settings

log = logging.getLogger(__name__)
PRUNE_EVERY = 600.0


class Monitor:
    """Follows which versions each module serves and keeps their live counts."""

    def __init__(self, settings: Settings, service: str, registry: Registry) -> None:
        self.settings = settings
        self.service = service
        self.registry = registry
        self._counts: dict[tuple[str, str], VersionCounts] = {}
        self._logs: dict[str, PredictionLog] = {}
        self._missing: set[tuple[str, str]] = set()  # versions without a profile (said once)
        self._pruned = 0.0
        self._gauged = 0.0

    @property
    def state_dir(self) -> Path:
        """Where the counts go."""
        return self.settings.shared_state_dir

    def update(self) -> None:
        """Monitors for the versions served now; counts flushed; gauges refreshed."""
        if self.settings.drift_sample <= 0:
            self.registry.monitors = {}
            return
        monitors = {}
        for mod in list(self.registry.modules.values()):
            monitor = self._monitor(mod)
            if monitor is not None:
                monitors[mod.name] = monitor
        self.registry.monitors = monitors
        self.flush()
        now = time.monotonic()
        if now - self._pruned > PRUNE_EVERY:
            self._pruned = now
            for name in monitors:
                prune_old(self.state_dir, name)
        if self.service == "api" and now - self._gauged > self.settings.drift_refresh:
            self._gauged = now
            self._gauges(monitors)

    def _monitor(self, mod: Module) -> ModuleMonitor | None:
        """The module's monitor, or ``None`` when none of its served versions has a profile
        (or its policy turns monitoring off)."""
        policy = mod.monitoring or DEFAULT
        if not policy.enabled or not mod.handles:
            return None
        served = {v for h in mod.handles for v in (h.version, h.candidate) if v}
        counts = {}
        for version in served:
            known = self._counts.get((mod.name, version)) or self._load(mod.name, version)
            if known is not None:
                counts[version] = known
        if not counts:
            return None
        rate = policy.sample if policy.sample is not None else self.settings.drift_sample
        sink = self._log(mod) if policy.log_predictions else None
        return ModuleMonitor(mod.name, rate, mod.handles[0].version, counts, sink)

    def _load(self, module: str, version: str) -> VersionCounts | None:
        """Counts for a version, from its published profile (``None`` without one)."""
        if (module, version) in self._missing:
            return None
        try:
            profile = drift.read_profile(Path(self.settings.data_volume), module, version)
        except (OSError, volume.VolumeError) as exc:
            log.warning("monitoring: %s %s: profile unreadable: %s", module, version, exc)
            profile = None
        if profile is None:
            self._missing.add((module, version))
            log.info("monitoring: %s version %s has no reference profile: not monitored",
                     module, version)
            return None
        counts = self._counts[(module, version)] = VersionCounts(module, version, profile)
        return counts

    def _log(self, mod: Module) -> PredictionLog:
        """The module's prediction log (made on first use)."""
        sink = self._logs.get(mod.name)
        if sink is None:
            policy = mod.monitoring or DEFAULT
            sink = self._logs[mod.name] = PredictionLog(
                log_dir(self.settings, mod.name), tuple(policy.log_fields),
                self.settings.prediction_log_days, self.settings.node_name)
        return sink

    def flush(self) -> None:
        """Write every changed slot and the prediction logs; never raises."""
        for (module, version), counts in list(self._counts.items()):
            try:
                # named at each flush: a process forked after this core was built (the API's
                # and the worker's) writes under its own pid, never over a sibling's counts
                counts.flush(monitoring_dir(self.state_dir, module, version),
                             process_name(self.service, self.settings.node_name))
            except OSError as exc:
                log.warning("monitoring: cannot write the counts of %s %s: %s", module,
                            version, exc)
        for module, sink in list(self._logs.items()):
            try:
                sink.flush()
            except OSError as exc:
                log.warning("monitoring: cannot write the prediction log of %s: %s", module,
                            exc)

    def _gauges(self, monitors: dict[str, ModuleMonitor]) -> None:
        """Set the drift gauges of the current versions (window: the last hour)."""
        from cerebro import metrics
        for name, monitor in monitors.items():
            version = monitor.default_version
            mod = self.registry.modules.get(name)
            if version is None or mod is None:
                continue
            try:
                found = drift.report(Path(self.settings.data_volume), self.state_dir, name,
                                     version, drift.WINDOWS["1h"], mod.monitoring or DEFAULT)
                drift.record_flags(self.state_dir, found)
            except (OSError, volume.VolumeError) as exc:
                log.warning("monitoring: drift of %s not computed: %s", name, exc)
                continue
            for field in found["fields"]:
                labels = (name, version, field["field"])
                metrics.DRIFT_PSI.labels(*labels).set(field["psi"])
                metrics.DRIFT_FLAGGED.labels(*labels).set(1.0 if field["drifted"] else 0.0)
