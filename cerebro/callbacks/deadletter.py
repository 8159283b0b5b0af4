"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The dead-letter store: callbacks that finally failed, kept as JSON files until re-sent.
Tagline: Undelivered letters wait in a drawer that never loses one.

One JSON file per callback, named after its idempotency key, in a directory
(``CEREBRO_CALLBACK_DEADLETTER_DIR``; default ``<data volume>/.callbacks/failed``).
Files are written to a temporary name, fsynced and renamed, so a crash never
leaves half an entry; any process on any host sharing the directory sees the
same entries. ``cerebro callbacks failed`` lists them, ``cerebro callbacks
retry`` re-sends them and removes those delivered.
"""

import json
import os
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class Entry:
    """One dead-lettered callback: where it went, what it carried and why it failed."""

    id: str
    url: str
    body: dict
    idempotency_key: str
    reason: str
    attempts: int = 0
    first_attempt_at: float = None
    failed_at: float = field(default_factory=time.time)
    source: str = ""
    retries: int = 0

    def to_dict(self):
        """The entry as a JSON-able dict."""
        return asdict(self)


def deadletter_dir(settings):
    """The dead-letter directory in force for ``settings``."""
    configured = getattr(settings, "callback_deadletter_dir", "")
    if configured:
        return Path(configured)
    return Path(settings.data_volume) / ".callbacks" / "failed"


class DeadLetterStore:
    """Durable, directory-backed store of failed callbacks."""

    def __init__(self, directory):
        self.directory = Path(directory)

    @classmethod
    def from_settings(cls, settings):
        """The store at ``CEREBRO_CALLBACK_DEADLETTER_DIR`` (or its default)."""
        return cls(deadletter_dir(settings))

    def _path(self, entry_id):
        """The file of entry ``entry_id``."""
        return self.directory / f"{entry_id}.json"

    @staticmethod
    def entry_id(idempotency_key):
        """A file-system-safe id for an idempotency key."""
        return _SAFE.sub("_", str(idempotency_key))[:200] or uuid.uuid4().hex

    def add(self, url, body, idempotency_key, reason, *, attempts=0, first_attempt_at=None,
            source=""):
        """Store a failed callback (replacing an older entry with the same key); returns it."""
        entry = Entry(self.entry_id(idempotency_key), url, body, str(idempotency_key), reason,
                      attempts, first_attempt_at, time.time(), source)
        old = self.get(entry.id)
        if old is not None:
            entry.retries = old.retries
        self._write(entry)
        return entry

    def _write(self, entry):
        """Write ``entry`` atomically (temporary file, fsync, rename, fsync the directory)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(entry.id)
        tmp = self.directory / f".{entry.id}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(entry.to_dict(), handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def get(self, entry_id):
        """The entry ``entry_id``, or None."""
        try:
            with open(self._path(self.entry_id(entry_id)), encoding="utf-8") as handle:
                return Entry(**json.load(handle))
        except FileNotFoundError:
            return None

    def list(self):
        """Every entry, oldest failure first. An unreadable file raises ``ValueError``
        naming it, rather than being skipped silently."""
        if not self.directory.is_dir():
            return []
        entries = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                with open(path, encoding="utf-8") as handle:
                    entries.append(Entry(**json.load(handle)))
            except FileNotFoundError:
                continue  # removed by a concurrent retry
            except (ValueError, TypeError) as exc:
                raise ValueError(f"dead-letter entry {path} is unreadable: {exc}") from exc
        return sorted(entries, key=lambda e: e.failed_at)

    def remove(self, entry_id):
        """Delete an entry; True when it existed."""
        try:
            self._path(self.entry_id(entry_id)).unlink()
            return True
        except FileNotFoundError:
            return False

    def retry(self, client, entry_id=None):
        """Re-send one entry (or all) once each with ``client``.

        Delivered entries are removed; the others are kept with the new
        reason. Returns ``[(entry, AttemptResult)]``; raises ``KeyError`` for
        an unknown ``entry_id``.
        """
        if entry_id is not None:
            entry = self.get(entry_id)
            if entry is None:
                raise KeyError(f"no dead-lettered callback with id {entry_id!r}")
            entries = [entry]
        else:
            entries = self.list()
        outcomes = []
        for entry in entries:
            result = client.attempt(entry.url, entry.body, entry.idempotency_key)
            if result.ok:
                self.remove(entry.id)
            else:
                entry.retries += 1
                entry.attempts += 1
                entry.reason = result.describe()
                entry.failed_at = time.time()
                self._write(entry)
            outcomes.append((entry, result))
        return outcomes
