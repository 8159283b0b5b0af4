"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The lifecycle in a serving process: candidates loaded, calls routed, canaries watched.
Tagline: Built once in the core, so REST, Celery, Kafka and pub-sub all follow the same volume.

On every refresh of the core (every ``CEREBRO_RELOAD_INTERVAL``)
:meth:`Tracker.update` reads each module's ``lifecycle.json``, loads or drops
its candidate version in every model handle, and keeps one
:class:`ModuleControl` per module whose candidate is loaded. The dispatcher
hands every group of calls to a module with a control to
:meth:`ModuleControl.run`:

* shadow: the live version answers; the same calls are queued for the candidate
  (:mod:`.shadow`), off the hot path;
* canary: each call goes to the candidate with the set percent (sticky per
  sticky key, :mod:`.routing`); the result's ``model_version`` says which
  version answered. The candidate's error rate and p99 are watched
  (:mod:`.canary`); past the margins the canary is stopped in the volume,
  recorded in the history and reported to Sherlock.

A module with no candidate has no control: its calls pay one dictionary lookup.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cerebro.lifecycle import state as lifecycle
from cerebro.lifecycle.canary import CanaryWatch, Limits, failed
from cerebro.lifecycle.compare import Tally
from cerebro.lifecycle.routing import to_candidate
from cerebro.lifecycle.shadow import ShadowRunner
from cerebro.models import serving_candidate
from cerebro.reporting import report
from cerebro.volume import VolumeError

if TYPE_CHECKING:
    from cerebro.dispatch import Call
    from cerebro.registry import Module, Registry
    from cerebro.settings import Settings

log = logging.getLogger(__name__)

#: Runs a group of calls on whatever version is being served: (calls, request ids) -> outcomes
RunGroup = Callable[["Sequence[Call]", "Sequence[str | None]"], "list[object]"]


class CanaryRolledBack(Exception):
    """A canary was stopped automatically: its candidate did worse than the current version."""


class ModuleControl:
    """How one module's calls are served while a candidate is tried."""

    def __init__(self, module: str, state: lifecycle.State, limits: Limits,
                 runner: ShadowRunner) -> None:
        self.module = module
        self.version = str(state.candidate)
        self.mode = state.mode
        self.percent = state.percent
        self.since = state.since
        self.runner = runner
        self.tally = Tally(module, self.version)
        self.watch = CanaryWatch(limits)
        self.tripped: str | None = None  # why routing to the candidate stopped
        self.counts: dict[tuple[str, str], int] = {}  # (side, ok|failed) -> calls
        self.pushed: dict[tuple[str, ...], float] = {}  # what went to Prometheus already

    def same(self, state: lifecycle.State) -> bool:
        """True when ``state`` asks for what this control does."""
        return (state.candidate, state.mode, state.percent, state.since) == \
            (self.version, self.mode, self.percent, self.since)

    def run(self, run_group: RunGroup, calls: Sequence[Call],
            request_ids: Sequence[str | None]) -> list[object]:
        """Serve a group of calls to one endpoint of the module; one outcome per call."""
        if self.mode == "shadow":
            start = time.perf_counter()
            outcomes = run_group(calls, request_ids)
            self.runner.submit(self.tally, calls, outcomes, time.perf_counter() - start)
            return outcomes
        if self.tripped:
            return run_group(calls, request_ids)
        sides = [to_candidate(self.module, self.percent, call.sticky_key) for call in calls]
        if not any(sides):
            return self._side(run_group, False, calls, request_ids)
        if all(sides):
            return self._side(run_group, True, calls, request_ids)
        merged: list[object] = [None] * len(calls)
        for flag in (False, True):
            slots = [i for i, side in enumerate(sides) if side is flag]
            got = self._side(run_group, flag, [calls[i] for i in slots],
                             [request_ids[i] for i in slots])
            for slot, outcome in zip(slots, got):
                merged[slot] = outcome
        return merged

    def _side(self, run_group: RunGroup, candidate: bool, calls: Sequence[Call],
              request_ids: Sequence[str | None]) -> list[object]:
        """Run calls on one side (the candidate or the current version), watched."""
        start = time.perf_counter()
        if candidate:
            with serving_candidate():
                outcomes = run_group(calls, request_ids)
        else:
            outcomes = run_group(calls, request_ids)
        self.watch.record(candidate, outcomes, time.perf_counter() - start)
        side = "candidate" if candidate else "current"
        for outcome in outcomes:
            key = (side, "failed" if failed(outcome) else "ok")
            self.counts[key] = self.counts.get(key, 0) + 1
        return outcomes


class Tracker:
    """Follows every module's lifecycle state in one process (see the module docstring)."""

    def __init__(self, settings: Settings, service: str, registry: Registry) -> None:
        self.settings = settings
        self.service = service
        self.registry = registry
        self.limits = Limits(settings.canary_window, settings.canary_min_calls,
                             settings.canary_max_error_delta, settings.canary_max_p99_ratio,
                             settings.canary_p99_slack)
        self.runner = ShadowRunner(settings.shadow_queue, settings.shadow_gather,
                                   settings.shadow_budget)

    @property
    def root(self) -> Path:
        """The data volume."""
        return Path(self.settings.data_volume)

    def update(self) -> None:
        """Follow the volume: candidates loaded or dropped, controls kept or replaced, the
        canaries judged, the shadow tallies written for ``cerebro compare``."""
        controls: dict[str, ModuleControl] = {}
        for mod in list(self.registry.modules.values()):
            try:
                control = self._follow(mod)
            except (OSError, VolumeError) as exc:  # one module's trouble stops no other
                report(exc, f"module {mod.name}: lifecycle not followed: {exc}",
                       service="models", module=mod.name)
                control = self.registry.controls.get(mod.name)
            if control is not None:
                controls[mod.name] = control
        before, self.registry.controls = self.registry.controls, controls
        for name, old in before.items():
            if controls.get(name) is not old:
                old.tally.retired = True
        for control in controls.values():
            if control.mode == "canary" and not control.tripped:
                control.tripped = self._tripped_before(control)
                if not control.tripped:
                    self._judge(control)
            self._publish(control)

    def _follow(self, mod: Module) -> ModuleControl | None:
        """The module's control for its state now (``None``: no candidate is served)."""
        handles = [h for h in mod.handles if h.module == mod.name]
        if not handles:
            return None
        state = lifecycle.read_state(self.root, mod.name)
        wanted = state.candidate if state.active else None
        key = self.settings.model_signing_key.get_secret_value() or None
        for handle in handles:
            try:
                if handle.refresh_candidate(self.root, wanted, key):
                    log.info("module %s: candidate %s loaded (%s)", mod.name, wanted, state.mode)
            except (OSError, VolumeError) as exc:
                report(exc, f"module {mod.name}: candidate failed to load: {exc}",
                       service="models", module=mod.name)
        if wanted is None or any(h.candidate != wanted for h in handles):
            return None
        known = self.registry.controls.get(mod.name)
        if known is not None and known.same(state):
            return known
        return ModuleControl(mod.name, state, self.limits, self.runner)

    def _trip_marker(self, control: ModuleControl) -> Path:
        """The file saying this canary was stopped, in ``CEREBRO_SHARED_DIR``: every process
        of every node sharing it honours it, after a restart too, even when the volume is
        read-only (one node: the state directory)."""
        since = "".join(c for c in str(control.since) if c.isalnum())
        return snapshot_dir(self.settings, control.module, control.version) / \
            f"canary-stopped-{since}.json"

    def _tripped_before(self, control: ModuleControl) -> str | None:
        """Why this canary was already stopped (by any node sharing the directory), or
        ``None``."""
        try:
            return str(json.loads(self._trip_marker(control).read_text())["reason"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _judge(self, control: ModuleControl) -> None:
        """Stop a canary whose candidate does worse than the margins allow."""
        why = control.watch.verdict()
        if why is None:
            return
        control.tripped = why
        marker = self._trip_marker(control)
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            partial = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
            partial.write_text(json.dumps({"reason": why, "at": lifecycle.now()}))
            os.replace(partial, marker)  # whole or absent for a node reading it over NFS
        except OSError as exc:
            log.warning("canary: cannot write %s: %s", marker, exc)
        by = f"cerebro {self.service} on {self.settings.node_name} (automatic)"
        try:
            entry = lifecycle.stop_candidate(self.root, control.module, by=by,
                                             action="canary-rollback", reason=why,
                                             expected=control.version)
        except (OSError, VolumeError) as exc:
            entry = {"error": f"stopped on this node, but it could not be recorded in the "
                              f"volume: {exc}"}
        if entry is None:
            return  # another process stopped it first, and reported it
        error = CanaryRolledBack(f"{control.module}: canary {control.version} rolled back "
                                 f"automatically: {why}")
        report(error, str(error), service=self.service, module=control.module,
               version=control.version, **({"note": entry["error"]} if "error" in entry else {}))

    def _publish(self, control: ModuleControl) -> None:
        """Push the control's counts to Prometheus and its shadow tally to the state dir."""
        from cerebro import metrics  # lazily: prometheus is set up by the API first
        labels = (control.module, control.version)
        if control.mode == "canary":
            for (side, outcome), count in list(control.counts.items()):
                _push(control, metrics.CANARY_CALLS.labels(*labels, side, outcome),
                      ("canary", side, outcome), count)
            return
        snap = control.tally.snapshot()
        for name in ("calls", "errors", "dropped"):
            _push(control, metrics.SHADOW_COUNTS.labels(*labels, name), ("shadow", name),
                  snap[name])
        for name, total in snap["sums"].items():
            _push(control, metrics.SHADOW_MEASURE_SUM.labels(*labels, name), ("sum", name),
                  total)
            _push(control, metrics.SHADOW_MEASURE_COUNT.labels(*labels, name),
                  ("count", name), snap["counts"][name])
        if snap["calls"] or snap["dropped"]:
            snap["since"] = control.since
            self._write_snapshot(control, snap)

    def _write_snapshot(self, control: ModuleControl, snap: dict[str, Any]) -> None:
        """Write this process's tally where ``cerebro compare`` merges them."""
        folder = snapshot_dir(self.settings, control.module, control.version)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{self.service}-{self.settings.node_name}-{os.getpid()}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(snap), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("shadow: cannot write the tally of %s to %s: %s", control.module,
                        folder, exc)


def _push(control: ModuleControl, counter: Any, key: tuple[str, ...], total: float) -> None:
    """Add to a Prometheus counter what ``total`` (this control's count) grew by since the
    last push; a new control starts from zero, so nothing is lost when one is replaced."""
    delta = total - control.pushed.get(key, 0.0)
    if delta > 0:
        counter.inc(delta)
        control.pushed[key] = total


def snapshot_dir(settings: Settings, module: str, version: str) -> Path:
    """Where processes write their shadow tallies of one candidate."""
    return settings.shared_state_dir / "lifecycle" / module / version


def read_snapshots(settings: Settings, module: str, version: str,
                   since: str | None) -> list[dict[str, Any]]:
    """Every process's tally of this candidate since it became one (``since``)."""
    folder = snapshot_dir(settings, module, version)
    snaps = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            snap = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(snap, dict) and (since is None or snap.get("since") == since):
            snap["process"] = path.stem  # service-node-pid: which node counted these
            snaps.append(snap)
    return snaps
