"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The drift part of Sherlock's digest: every module whose current version drifted.
Tagline: Say which feature moved, by how much, since when, over how many calls.

Sherlock calls :func:`collect` (``SHERLOCK_ALERTS``) when it builds a digest;
it reads this node's live counts over the digest's window (at most a day) and
returns one alert per module with a drifted field, for example::

    rent_predictor: area_sqft PSI 0.31 (threshold 0.2) since 2026-12-01T06:05Z,
    ~18,400 calls (1,840 sampled)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cerebro import volume
from cerebro.monitoring import drift
from cerebro.monitoring.policy import DEFAULT
from cerebro.settings import load_settings


def collect(hours: float = 24.0) -> list[dict[str, Any]]:
    """One alert per module whose current version drifted over the last ``hours`` (<= 24)."""
    from cerebro.registry import Registry
    settings = load_settings()
    registry = Registry.discover(settings)
    root, state = Path(settings.data_volume), settings.shared_state_dir
    alerts = []
    for name, mod in sorted(registry.modules.items()):
        try:
            version = volume.current_version(root, name)
            if version is None or not mod.handles:
                continue
            policy = mod.monitoring or DEFAULT
            found = drift.report(root, state, name, version, min(hours, 24.0), policy)
        except volume.VolumeError:
            continue
        if not found["drifted"]:
            continue
        since = drift.record_flags(state, found)
        rate = policy.sample if policy.sample is not None else settings.drift_sample
        alerts.append({"source": "drift", "subject": name,
                       "title": f"{name} {version}: {len(found['drifted'])} field(s) drifted",
                       "lines": [_line(name, f, since, found["samples"], rate)
                                 for f in found["fields"] if f["drifted"]]})
    return alerts


def _line(module: str, field: dict[str, Any], since: dict[str, str], samples: int,
          rate: float) -> str:
    """One drifted field, in a sentence."""
    reasons = []
    for reason in field["reasons"]:
        if reason == "psi":
            reasons.append(f"PSI {field['psi']:.2f} (threshold {field['psi_threshold']:g})")
        elif reason == "missing":
            reasons.append(f"missing {field['missing']:.1%} "
                           f"(training {field['missing_reference'] or 0:.1%})")
        elif reason == "out_of_range":
            reasons.append(f"{field['out_of_range']:.1%} outside the training range")
        else:
            reasons.append(f"{field['unseen']:.1%} unseen categories")
    calls = f"~{round(samples / rate):,} calls ({samples:,} sampled)" if rate < 1 \
        else f"{samples:,} calls"
    return (f"{module}: {field['field']} ({field['role']}) {', '.join(reasons)} since "
            f"{since.get(field['field'], '?')}, {calls}")
