"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The prediction log: sampled live inputs and outputs, for the next build to learn from.
Tagline: Yesterday's traffic is tomorrow's training data.

Opt-in per module (``Monitoring(log_predictions=True, log_fields=(...))``):
each sampled call is written as one JSON line ``{"ts", "version", "inputs",
"outputs"}`` with only the input fields the module names (personal data stays
out unless named), into ``<CEREBRO_PREDICTION_LOG_DIR or the data volume>/
<module>/predictions/<YYYY-MM-DD>.jsonl``, one file per UTC day, the oldest
removed after ``CEREBRO_PREDICTION_LOG_DAYS``. A module's ``extract.py``
reads them back with :func:`read`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cerebro.settings import Settings

MAX_BUFFER = 10_000  # lines held between two flushes; beyond, the oldest are dropped


def log_dir(settings: Settings, module: str) -> Path:
    """The folder of a module's prediction log."""
    root = Path(settings.prediction_log_dir or settings.data_volume)
    return root / module / "predictions"


class PredictionLog:
    """Buffers a module's sampled calls and appends them to the day's file on flush."""

    def __init__(self, folder: Path, fields: tuple[str, ...], days: int) -> None:
        self.folder = folder
        self.fields = fields
        self.days = days
        self.lines: list[bytes] = []
        self.dropped = 0
        self.lock = threading.Lock()

    def add(self, version: str, row: Mapping[str, object], result: object) -> None:
        """Keep one sampled call (only the named input fields)."""
        line = json.dumps({"ts": round(time.time(), 3), "version": version,
                           "inputs": {k: row.get(k) for k in self.fields if k in row},
                           "outputs": _outputs(result)}, default=str)
        with self.lock:
            if len(self.lines) >= MAX_BUFFER:
                self.dropped += 1
                return
            self.lines.append(line.encode() + b"\n")

    def flush(self) -> None:
        """Append the buffered lines to today's file; remove files past the kept days."""
        with self.lock:
            lines, self.lines = self.lines, []
        if not lines:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{datetime.now(timezone.utc):%Y-%m-%d}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, b"".join(lines))
        finally:
            os.close(fd)
        self._prune()

    def _prune(self) -> None:
        """Remove the files of days older than ``days``."""
        oldest = f"{datetime.now(timezone.utc) - timedelta(days=self.days):%Y-%m-%d}"
        for path in self.folder.glob("*.jsonl"):
            if path.stem < oldest:
                path.unlink(missing_ok=True)


def _outputs(result: object) -> object:
    """The result without its version (kept once per line already)."""
    if isinstance(result, Mapping):
        return {k: v for k, v in result.items() if k != "model_version"}
    return result


def read(settings: Settings, module: str, since_days: int | None = None
         ) -> Iterator[dict[str, Any]]:
    """Every logged call of ``module`` (the last ``since_days`` days), oldest first."""
    folder = log_dir(settings, module)
    oldest = (f"{datetime.now(timezone.utc) - timedelta(days=since_days):%Y-%m-%d}"
              if since_days is not None else "")
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        if path.stem < oldest:
            continue
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a line torn by a crash
