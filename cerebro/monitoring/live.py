"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Live profiles: served calls, sampled, counted against the reference's bins in time slots.
Tagline: Count what the model sees, cheaply, where every transport passes.

The dispatcher hands every group of served calls to the module's
:class:`ModuleMonitor` (``registry.monitors``), whatever the transport. A
sampled call (``CEREBRO_DRIFT_SAMPLE``, default 0.1) is counted, for the
version that answered it (the result's ``model_version``), against the bins of
that version's reference profile: per numeric field its bin, missing and
out-of-range counts; per category its count, missing and unseen; per list its
items. Counts are kept in slots of :data:`SLOT_SECONDS` and written by every
process, on every reload, to ``CEREBRO_STATE_DIR/monitoring/<module>/<version>/
<slot>/<process>.json``; :mod:`.drift` merges the slots of a window across
every process of the node (API, workers, consumer, subscriber).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import threading
import time
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cerebro.errors import CerebroError
from cerebro.monitoring.profile import OTHER, missing

if TYPE_CHECKING:
    from cerebro.dispatch import Call

log = logging.getLogger(__name__)
SLOT_SECONDS = 300
KEEP_SECONDS = 25 * 3600  # slots older than this are removed (the longest window is a day)


def slot_of(when: float) -> int:
    """The slot a time falls in."""
    return int(when // SLOT_SECONDS)


class FieldCounter:
    """Counts of one field's live values against its reference profile."""

    def __init__(self, reference: Mapping[str, Any]) -> None:
        self.kind = reference["kind"]
        self.edges: list[float] = list(reference.get("edges") or [])
        self.low = reference.get("min")
        self.high = reference.get("max")
        self.known = set(reference.get("shares") or {}) - {OTHER}

    def new(self) -> dict[str, Any]:
        """Empty counts for one slot."""
        if self.kind == "numeric":
            return {"n": 0, "missing": 0, "outside": 0, "bins": [0] * (len(self.edges) + 1)}
        return {"n": 0, "missing": 0, "unseen": 0, "rows": 0, "values": {}}

    def count(self, counts: dict[str, Any], value: object) -> None:
        """Count one live value into ``counts``."""
        counts["n"] += 1
        if missing(value):
            counts["missing"] += 1
            return
        if self.kind == "numeric":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                counts["missing"] += 1
                return
            counts["bins"][bisect_right(self.edges, value)] += 1
            if (self.low is not None and value < self.low) or \
                    (self.high is not None and value > self.high):
                counts["outside"] += 1
            return
        items = value if self.kind == "items" and isinstance(value, (list, tuple)) else [value]
        counts["rows"] += 1
        values = counts["values"]
        unseen = False
        for item in items:
            key = str(item)
            if key not in self.known:
                unseen, key = True, OTHER
            values[key] = values.get(key, 0) + 1
        counts["unseen"] += unseen


class VersionCounts:
    """The live counts of one module version, by slot."""

    def __init__(self, module: str, version: str, profile: Mapping[str, Any]) -> None:
        self.module = module
        self.version = version
        self.inputs = {name: FieldCounter(ref) for name, ref in profile["features"].items()
                       if ref.get("kind") != "identifier"}
        self.outputs = {name: FieldCounter(ref) for name, ref in profile["outputs"].items()
                        if ref.get("kind") != "identifier"}
        self.slots: dict[int, dict[str, Any]] = {}
        self.dirty: set[int] = set()
        self.lock = threading.Lock()

    def _slot(self, index: int) -> dict[str, Any]:
        """The counts of slot ``index`` (made on first use)."""
        slot = self.slots.get(index)
        if slot is None:
            slot = self.slots[index] = {
                "n": 0, "inputs": {name: c.new() for name, c in self.inputs.items()},
                "outputs": {name: c.new() for name, c in self.outputs.items()}}
        return slot

    def observe(self, row: Mapping[str, object], result: object) -> None:
        """Count one served call (its validated inputs and its result)."""
        index = slot_of(time.time())
        with self.lock:
            slot = self._slot(index)
            slot["n"] += 1
            for name, counter in self.inputs.items():
                if name in row:  # a function that does not take the field says nothing of it
                    counter.count(slot["inputs"][name], row[name])
            if isinstance(result, Mapping):
                for name, counter in self.outputs.items():
                    if name in result:
                        counter.count(slot["outputs"][name], result[name])
            self.dirty.add(index)

    def flush(self, folder: Path, process: str) -> None:
        """Write the slots changed since the last flush; forget the closed ones."""
        with self.lock:
            changed = {index: json.loads(json.dumps(self.slots[index])) for index in self.dirty}
            self.dirty.clear()
            current = slot_of(time.time())
            for index in [i for i in self.slots if i < current]:
                if index not in changed:
                    del self.slots[index]
        for index, counts in changed.items():
            target = folder / str(index)
            target.mkdir(parents=True, exist_ok=True)
            path = target / f"{process}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"slot": index, **counts}), encoding="utf-8")
            os.replace(tmp, path)


class ModuleMonitor:
    """Samples one module's served calls into the counts of the version that answered."""

    def __init__(self, module: str, rate: float, default_version: str | None,
                 counts: dict[str, VersionCounts], log_sink: Any = None) -> None:
        self.module = module
        self.rate = rate
        self.default_version = default_version
        self.counts = counts
        self.log_sink = log_sink

    def observe(self, calls: Sequence[Call], outcomes: Sequence[object]) -> None:
        """Count a sample of the served calls (never raises into the live path)."""
        rate = self.rate
        for call, outcome in zip(calls, outcomes):
            if rate < 1.0 and random.random() >= rate:
                continue
            if isinstance(outcome, CerebroError):
                continue
            version = outcome.get("model_version") if isinstance(outcome, dict) else None
            counts = self.counts.get(str(version or self.default_version))
            if counts is None:
                continue
            try:
                counts.observe(call.kwargs, outcome)
                if self.log_sink is not None:
                    self.log_sink.add(counts.version, call.kwargs, outcome)
            except Exception:  # monitoring must never fail a served call
                log.exception("monitoring: %s: a call could not be counted", self.module)


def process_name(service: str, node: str) -> str:
    """This process's name in the slot files: service, node (``CEREBRO_NODE``) and pid."""
    return f"{service}-{node}-{os.getpid()}"


def monitoring_dir(state_dir: Path, module: str, version: str | None = None) -> Path:
    """Where the live counts of a module (and a version) are written."""
    base = Path(state_dir) / "monitoring" / module
    return base / version if version else base


def prune_old(state_dir: Path, module: str) -> None:
    """Remove slot folders older than :data:`KEEP_SECONDS` (any process may)."""
    oldest = slot_of(time.time() - KEEP_SECONDS)
    base = monitoring_dir(state_dir, module)
    for version in base.iterdir() if base.is_dir() else []:
        for slot in version.iterdir() if version.is_dir() else []:
            if slot.name.isdigit() and int(slot.name) < oldest:
                shutil.rmtree(slot, ignore_errors=True)
