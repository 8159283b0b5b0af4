"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The prediction log: sampled live inputs and outputs, for the next build to learn from.
Tagline: Yesterday's traffic is tomorrow's training data.

Opt-in per module (``Monitoring(log_predictions=True, log_fields=(...))``):
each sampled call is written as one JSON line ``{"ts", "version", "inputs",
"outputs"}`` with only the input fields the module names (personal data stays
out unless named), into ``<CEREBRO_PREDICTION_LOG_DIR or the data volume>/
<module>/predictions/<YYYY-MM-DD>.<node>.jsonl``, one file per UTC day and node
(``node`` is ``settings.node_name``: ``CEREBRO_NODE``, else the host name), so no
two machines append to one file on shared storage (appends from several NFS
clients are not atomic). Every node's files older than ``CEREBRO_PREDICTION_LOG_DAYS``
days are removed. A module's ``extract.py`` reads them back with :func:`read`:
every node's records of each day (and a ``<YYYY-MM-DD>.jsonl`` of the single-file
layout, if any), in time order.
"""

from __future__ import annotations

import json
import os
import re
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


# <day>.jsonl (one file for every node, before nodes had their own) or <day>.<node>.jsonl
DAY_FILE = re.compile(r"(?P<day>\d{4}-\d{2}-\d{2})(?:\.(?P<node>[A-Za-z0-9._-]+))?\.jsonl")


def file_node(node: str) -> str:
    """``node`` as the node part of a file name: letters, digits, ``.``, ``_`` and ``-``
    (anything else becomes ``_``), never empty."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", node).strip(".") or "unknown"


def day_files(folder: Path) -> dict[str, list[Path]]:
    """The log files in ``folder`` by UTC day (``YYYY-MM-DD``): a day's single-file log first,
    then its nodes' files by name. Other files are ignored."""
    found: dict[str, list[tuple[bool, str, Path]]] = {}
    try:
        paths = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return {}
    for path in paths:
        match = DAY_FILE.fullmatch(path.name)
        if match:
            found.setdefault(match["day"], []).append((match["node"] is not None, path.name,
                                                       path))
    return {day: [path for _node, _name, path in sorted(entries)]
            for day, entries in found.items()}


def _first_day(days: int) -> str:
    """The UTC day ``days`` days ago, ``YYYY-MM-DD``."""
    return f"{datetime.now(timezone.utc) - timedelta(days=days):%Y-%m-%d}"


class PredictionLog:
    """Buffers a module's sampled calls and appends them to the day's file of this node on
    flush."""

    def __init__(self, folder: Path, fields: tuple[str, ...], days: int, node: str) -> None:
        self.folder = folder
        self.fields = fields
        self.days = days
        self.node = file_node(node)
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

    def path(self, day: datetime) -> Path:
        """This node's file of the UTC day of ``day``: ``<YYYY-MM-DD>.<node>.jsonl``."""
        return self.folder / f"{day:%Y-%m-%d}.{self.node}.jsonl"

    def flush(self) -> None:
        """Append the buffered lines to this node's file of today; remove every node's files
        of days past the kept days."""
        with self.lock:
            lines, self.lines = self.lines, []
        if not lines:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(datetime.now(timezone.utc))
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, b"".join(lines))
        finally:
            os.close(fd)
        self._prune()

    def _prune(self) -> None:
        """Remove the files of days older than ``days``, every node's (and the single-file
        layout's)."""
        oldest = _first_day(self.days)
        for day, paths in day_files(self.folder).items():
            if day < oldest:
                for path in paths:
                    path.unlink(missing_ok=True)


def _outputs(result: object) -> object:
    """The result without its version (kept once per line already)."""
    if isinstance(result, Mapping):
        return {k: v for k, v in result.items() if k != "model_version"}
    return result


def read(settings: Settings, module: str, since_days: int | None = None
         ) -> Iterator[dict[str, Any]]:
    """Every logged call of ``module`` (the last ``since_days`` days), oldest first.

    Each day's files (every node's, and a single-file log of that day) are read one after
    the other and their records merged by ``ts`` (a record without one stays just after
    the record before it in its file); one day is held in memory at a time.
    """
    oldest = _first_day(since_days) if since_days is not None else ""
    for day, paths in sorted(day_files(log_dir(settings, module)).items()):
        if day < oldest:
            continue
        records: list[tuple[float, Any]] = []
        for path in paths:
            last = float("-inf")
            for record in _lines(path):
                ts = record.get("ts") if isinstance(record, dict) else None
                if isinstance(ts, (int, float)) and not isinstance(ts, bool):
                    last = float(ts)
                records.append((last, record))
        records.sort(key=lambda item: item[0])
        yield from (record for _ts, record in records)


def _lines(path: Path) -> Iterator[Any]:
    """The JSON values of ``path``'s lines (a line torn by a crash is skipped; a file removed
    meanwhile by retention reads as empty)."""
    try:
        handle = open(path, encoding="utf-8")
    except FileNotFoundError:
        return
    with handle:
        for line in handle:
            try:
                yield json.loads(line)
            except ValueError:
                continue  # a line torn by a crash
