"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Alerts beside exceptions: what the platform wants on-call to know that is not a traceback.
Tagline: A model can be wrong without raising; the digest still says so.

``SHERLOCK_ALERTS`` names providers as ``package.module:function``; each is
called with ``hours=`` (the digest's window) and returns a list of alerts::

    {"source": "drift", "subject": "rent_predictor",
     "title": "rent_predictor 20261201T... drifted",
     "lines": ["area_sqft PSI 0.31 (threshold 0.2) since ..., ~18,400 calls"]}

Sherlock itself knows nothing of models: Cerebro's provider
(``cerebro.monitoring.alerts:collect``, the default) computes the drift. A
provider that cannot be imported or fails is named in the digest's warnings:
the digest is still sent.
"""

from __future__ import annotations

import importlib
from typing import Any

from sherlock.settings import SherlockSettings


def collect(settings: SherlockSettings, hours: float) -> tuple[list[dict[str, Any]], list[str]]:
    """Every provider's alerts, and a warning for each provider that failed."""
    alerts: list[dict[str, Any]] = []
    warnings: list[str] = []
    for name in settings.alerts:
        module, _, function = name.partition(":")
        try:
            provider = getattr(importlib.import_module(module), function or "collect")
            found = provider(hours=hours)
        except Exception as exc:  # a provider's failure must not stop the digest
            warnings.append(f"alert provider {name} failed: {type(exc).__name__}: {exc}")
            continue
        alerts.extend(a for a in found if isinstance(a, dict) and a.get("lines"))
    return alerts, warnings
