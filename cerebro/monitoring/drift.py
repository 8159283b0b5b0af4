"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Drift: live counts of a window against the reference profile, per feature and prediction.
Tagline: Measure how far the world moved, and say so only when it matters.

For each field: the population stability index over the reference bins or
categories (``sum((live - ref) * ln(live / ref))``, shares floored at
:data:`FLOOR`), the Jensen-Shannon distance (base 2, 0 to 1), the share of
missing values against training, the share of numbers outside the training
range, and the share of rows holding a category or item the training never
showed (beyond the reference's own ``__other__`` share). A field drifts when
one of them crosses its threshold (:class:`~cerebro.monitoring.policy.Monitoring`)
over at least ``min_samples`` sampled calls.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cerebro import volume
from cerebro.monitoring.live import SLOT_SECONDS, monitoring_dir, slot_of
from cerebro.monitoring.policy import DEFAULT, Monitoring
from cerebro.monitoring.profile import FILE, OTHER

FLOOR = 1e-4
WINDOWS = {"1h": 1.0, "24h": 24.0}


def read_profile(root: Path, module: str, version: str) -> dict[str, Any] | None:
    """The reference profile published with a version, or ``None`` when it has none."""
    folder = volume.module_dir(root, module) / "versions" / volume.safe_name(
        module, "version", version)
    if not folder.is_dir():
        raise volume.VolumeError(f"{module}: no published version {version!r}")
    path = folder / FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise volume.VolumeError(f"{module}: {FILE} of {version} is corrupt: {exc}") from None
    return data if isinstance(data, dict) and "features" in data else None


def merge(folder: Path, hours: float, now: float | None = None) -> dict[str, Any]:
    """The counts of every process and slot of the last ``hours`` in ``folder``."""
    first = slot_of((now or time.time()) - hours * 3600.0) + 1
    total: dict[str, Any] = {"n": 0, "inputs": {}, "outputs": {}, "slots": 0,
                             "first_slot": None}
    for slot in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not slot.name.isdigit() or int(slot.name) < first:
            continue
        for path in slot.glob("*.json"):
            try:
                counts = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            total["n"] += counts.get("n", 0)
            total["slots"] += 1
            if total["first_slot"] is None or int(slot.name) < total["first_slot"]:
                total["first_slot"] = int(slot.name)
            for role in ("inputs", "outputs"):
                for name, field in counts.get(role, {}).items():
                    _add(total[role].setdefault(name, {}), field)
    return total


def _add(into: dict[str, Any], counts: Mapping[str, Any]) -> None:
    """Add one slot's counts of a field into ``into``."""
    for key, value in counts.items():
        if key == "bins":
            bins = into.setdefault("bins", [0] * len(value))
            for i, count in enumerate(value[:len(bins)]):
                bins[i] += count
        elif key == "values":
            values = into.setdefault("values", {})
            for item, count in value.items():
                values[item] = values.get(item, 0) + count
        else:
            into[key] = into.get(key, 0) + value


def psi(reference: list[float], live: list[float]) -> float:
    """Population stability index of two distributions over the same bins."""
    total = 0.0
    for e, a in zip(reference, live):
        e, a = max(e, FLOOR), max(a, FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def js_distance(reference: list[float], live: list[float]) -> float:
    """Jensen-Shannon distance (base 2) of two distributions over the same bins."""
    def kl(p: list[float], q: list[float]) -> float:
        """Kullback-Leibler divergence, base 2 (terms with p = 0 are 0)."""
        return sum(x * math.log2(x / y) for x, y in zip(p, q) if x > 0 and y > 0)
    middle = [(e + a) / 2 for e, a in zip(reference, live)]
    return math.sqrt(max(0.0, (kl(reference, middle) + kl(live, middle)) / 2))


def _shares(counts: Iterable[float]) -> list[float]:
    """Counts as shares of their sum (all zero for an empty sum)."""
    values = list(counts)
    total = sum(values)
    return [v / total for v in values] if total else [0.0] * len(values)


def field_drift(name: str, role: str, reference: Mapping[str, Any],
                live: Mapping[str, Any] | None, policy: Monitoring) -> dict[str, Any]:
    """The drift measures of one field, whether it drifted, and why."""
    live = live or {}
    n = int(live.get("n", 0))
    present = n - int(live.get("missing", 0))
    if reference["kind"] == "numeric":
        labels = _bin_labels(reference.get("edges") or [])
        expected = list(reference.get("shares") or [])
        observed = _shares(live.get("bins") or [0] * len(expected))
        outside = live.get("outside", 0) / present if present else 0.0
        unseen = 0.0
    else:
        ref_shares = dict(reference.get("shares") or {})
        labels = sorted(ref_shares, key=lambda k: -ref_shares[k])
        if OTHER not in labels:
            labels.append(OTHER)
        expected = [ref_shares.get(k, 0.0) for k in labels]
        values = live.get("values") or {}
        observed = _shares(values.get(k, 0) for k in labels)
        outside = 0.0
        rows = live.get("rows", 0)
        unseen = max(0.0, (live.get("unseen", 0) / rows if rows else 0.0)
                     - ref_shares.get(OTHER, 0.0))
    missing_live = live.get("missing", 0) / n if n else 0.0
    missing_delta = missing_live - float(reference.get("missing") or 0.0)
    measures = {"psi": psi(expected, observed) if present else 0.0,
                "js": js_distance(expected, observed) if present else 0.0}
    threshold = policy.psi_threshold(name)
    ratios = {"psi": measures["psi"] / threshold,
              "missing": missing_delta / policy.missing,
              "out_of_range": outside / policy.out_of_range,
              "unseen": unseen / policy.unseen}
    judged = n >= policy.min_samples
    reasons = [k for k, r in ratios.items() if r > 1.0] if judged else []
    return {"field": name, "role": role, "kind": reference["kind"], "samples": n,
            **{k: round(v, 6) for k, v in measures.items()}, "psi_threshold": threshold,
            "missing": round(missing_live, 6), "missing_reference": reference.get("missing"),
            "out_of_range": round(outside, 6), "unseen": round(unseen, 6),
            "judged": judged, "drifted": bool(reasons), "reasons": reasons,
            "severity": round(max(ratios.values()), 4), "labels": labels,
            "reference_shares": expected, "live_shares": observed}


def _bin_labels(edges: list[float]) -> list[str]:
    """Readable labels of the bins around ``edges``."""
    if not edges:
        return ["all"]
    cuts = [f"{e:.4g}" for e in edges]
    return [f"<{cuts[0]}", *[f"{a}-{b}" for a, b in zip(cuts, cuts[1:])], f">={cuts[-1]}"]


def report(root: Path, state_dir: Path, module: str, version: str, hours: float,
           policy: Monitoring = DEFAULT, now: float | None = None) -> dict[str, Any]:
    """The drift report of one module version over the last ``hours``; fields sorted by
    severity. ``profile`` is false when the version was published without one."""
    base: dict[str, Any] = {"module": module, "version": version, "window_hours": hours}
    profile = read_profile(root, module, version)
    if profile is None:
        return {**base, "profile": False, "samples": 0, "fields": [], "drifted": [],
                "why": f"version {version} was published without a reference profile "
                       f"({FILE}): build it again with the shared build helpers"}
    merged = merge(monitoring_dir(state_dir, module, version), hours, now)
    fields = [field_drift(name, "input", ref, merged["inputs"].get(name), policy)
              for name, ref in profile["features"].items() if ref.get("kind") != "identifier"]
    fields += [field_drift(name, "prediction", ref, merged["outputs"].get(name), policy)
               for name, ref in profile["outputs"].items() if ref.get("kind") != "identifier"]
    fields.sort(key=lambda f: (-f["severity"], f["field"]))
    first = merged["first_slot"]
    return {**base, "profile": True, "samples": merged["n"], "fields": fields,
            "min_samples": policy.min_samples,
            "drifted": [f["field"] for f in fields if f["drifted"]],
            "since": _iso(first * SLOT_SECONDS) if first is not None else None}


def _iso(ts: float) -> str:
    """A UTC time as ISO 8601 to the minute."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def record_flags(state_dir: Path, drift: Mapping[str, Any]) -> dict[str, str]:
    """Remember since when each drifted field has been drifting (kept in the state dir);
    returns ``{field: since}`` for the fields drifting now."""
    path = monitoring_dir(state_dir, drift["module"], drift["version"]) / "flags.json"
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    now = _iso(time.time())
    flags = {name: str(known.get(name) or now) for name in drift["drifted"]}
    if flags != known:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(flags), encoding="utf-8")
        tmp.replace(path)
    return flags
