"""
Author:  Cerebro team
Date:    2026-11-29
Subject: What the simulated main app received: signatures checked, idempotency keys counted.
Tagline: Every letter opened, every seal checked, every repeat noticed.

A :class:`Recorder` takes each main-app call (method, request target, headers,
body), checks its signature (:func:`cerebro.callbacks.signing.check`, the
receiving side of the contract: scheme ``v2`` covers the method, the target as
received, the ``Idempotency-Key`` and the body), and counts it under its path and
key: a key seen
again on the same path is a duplicate (delivery is at-least-once), counted
apart, so ``unique`` is exactly the work that reached the main app. Counting
is a few dictionary operations per call; the bodies of the last ``keep`` calls
are kept for inspection. :meth:`Recorder.report` is the JSON of
``GET /simulator/received``.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cerebro import jsonio
from cerebro.callbacks import signing
from cerebro.errors import InvalidPayload

ACCEPTED = b'{"ok":true}'


@dataclass
class PathCounts:
    """The calls of one path: accepted ones by idempotency key, and the refused ones."""

    calls: int = 0
    duplicates: int = 0
    missing_key: int = 0
    bad_signatures: int = 0
    keys: dict[str, int] = field(default_factory=dict)

    def report(self) -> dict[str, int]:
        """The counts as JSON-able numbers."""
        return {"calls": self.calls, "unique": len(self.keys), "duplicates": self.duplicates,
                "missing_key": self.missing_key, "bad_signatures": self.bad_signatures}


class Recorder:
    """Checks and counts main-app calls (see the module docstring); not thread-safe: the
    simulator calls it from its one event loop."""

    def __init__(self, secret: str | bytes, keep: int = 100,
                 tolerance: float | None = signing.DEFAULT_TOLERANCE) -> None:
        if not secret:
            raise ValueError("the simulator needs the callback secret (CEREBRO_CALLBACK_SECRET)")
        self.secret = secret
        self.keep = max(0, keep)
        self.tolerance = tolerance
        self.reset()

    def reset(self) -> None:
        """Forget everything received; counting starts again now."""
        self.since = time.time()
        self.paths: dict[str, PathCounts] = {}
        self.by_status: collections.Counter[str] = collections.Counter()
        self.amenities = 0
        self.last: collections.deque[dict[str, Any]] = collections.deque(maxlen=self.keep)

    def call(self, target: str, headers: Mapping[str, str], body: bytes,
             method: str = signing.METHOD) -> tuple[int, bytes]:
        """Check and count one main-app call to ``target`` (the request target as received:
        path and query); returns ``(HTTP status, response body)``: 200 when its signature
        is good, 401 otherwise (as a real main app must answer). A call without an
        ``Idempotency-Key`` cannot be signed: it is refused and counted as ``missing_key``
        too."""
        path = target.partition("?")[0]
        counts = self.paths.get(path)
        if counts is None:
            counts = self.paths[path] = PathCounts()
        key = headers.get(signing.IDEMPOTENCY_HEADER, "")
        try:
            signing.check(self.secret, headers.get(signing.TIMESTAMP_HEADER), body,
                          headers.get(signing.SIGNATURE_HEADER), self.tolerance,
                          method=method, target=target, idempotency_key=key)
        except signing.SignatureError as exc:
            counts.bad_signatures += 1
            if not key:
                counts.missing_key += 1
            self._keep(path, key, body, str(exc))
            return 401, jsonio.dumps({"error": f"bad signature: {exc}"})
        counts.calls += 1
        if key in counts.keys:
            counts.keys[key] += 1
            counts.duplicates += 1
        else:
            counts.keys[key] = 1
        self.by_status[self._keep(path, key, body, None)] += 1
        return 200, ACCEPTED

    def _keep(self, path: str, key: str, body: bytes, error: str | None) -> str:
        """Keep the call among the last ones; returns its body's ``status`` field."""
        try:
            parsed = jsonio.loads(body)
        except InvalidPayload:
            parsed = body[:2000].decode("utf-8", "replace")
        status = str(parsed.get("status")) if isinstance(parsed, dict) else "<not an object>"
        if self.keep:
            self.last.append({"at": round(time.time(), 3), "path": path,
                              "idempotency_key": key, "verified": error is None,
                              "error": error, "body": parsed})
        return status

    def report(self, keys: bool = False, last: int | None = None) -> dict[str, Any]:
        """What was received since :attr:`since`: totals, then per path, the last calls and,
        with ``keys``, every idempotency key with its count (``{path: {key: count}}``)."""
        paths = {path: counts.report() for path, counts in sorted(self.paths.items())}
        totals = {name: sum(p[name] for p in paths.values())
                  for name in ("calls", "unique", "duplicates", "missing_key", "bad_signatures")}
        shown = list(self.last)[-last:] if last else ([] if last == 0 else list(self.last))
        report: dict[str, Any] = {"since": round(self.since, 3), **totals,
                                  "amenities": self.amenities, "by_path": paths,
                                  "by_status": dict(self.by_status), "last": shown}
        if keys:
            report["keys"] = {path: dict(counts.keys) for path, counts in self.paths.items()}
        return report
