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

A file that cannot be read as an entry (hand-edited, truncated by a full disk,
copied in from elsewhere) is skipped, never deleted, and reported to the caller
(or logged), so one bad file cannot hide or block the other entries.

Entries hold results and URLs: the files are created 0600 and the directories
Cerebro creates 0700, whatever the umask (a directory left group- or
world-accessible by an older version is tightened when it is Cerebro's; the
same helpers as Sherlock's files, :func:`sherlock.store.private_dir`).
:meth:`DeadLetterStore.retry` sends an entry only to a URL the callback rules
still allow (the function's configured URL, or the allow-list), as the worker
checks on every attempt.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cerebro.callbacks.urls import CallbackURLs
from cerebro.errors import InvalidPayload
from sherlock.store import FILE_MODE, private_dir, private_fd

if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable

    from cerebro.clients.http import AttemptResult, MainAppClient
    from cerebro.settings import Settings

    UnreadableReporter = Callable[[Path, str], object]

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
log = logging.getLogger(__name__)


@dataclass
class Entry:
    """One dead-lettered callback: where it went, what it carried and why it failed."""

    id: str
    url: str
    body: dict[str, object]
    idempotency_key: str
    reason: str
    attempts: int = 0
    first_attempt_at: float | None = None
    failed_at: float = field(default_factory=time.time)
    source: str = ""
    retries: int = 0

    def to_dict(self) -> dict[str, object]:
        """The entry as a JSON-able dict."""
        return asdict(self)


class UnreadableEntry(ValueError):
    """A dead-letter file that is not a valid entry; ``path`` names it, ``reason`` says why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"dead-letter entry {path} is unreadable: {reason}")
        self.path = Path(path)
        self.reason = reason


def _load(path: Path) -> Entry:
    """The :class:`Entry` stored in ``path``. Raises ``FileNotFoundError`` when it is gone
    and :class:`UnreadableEntry` when it is not a valid entry."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise UnreadableEntry(path, f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(data, dict):
        raise UnreadableEntry(path, f"a JSON {type(data).__name__}, not an object")
    try:
        entry = Entry(**data)
    except TypeError as exc:
        raise UnreadableEntry(path, str(exc)) from exc
    for name, kinds in (("id", str), ("url", str), ("idempotency_key", str), ("body", dict),
                        ("failed_at", (int, float)), ("attempts", int), ("retries", int)):
        value = getattr(entry, name)
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise UnreadableEntry(path, f"field {name!r} has the wrong type: {value!r:.60}")
    return entry


def _warn_unreadable(path: Path, reason: str) -> None:
    """The default report of a skipped file: a warning in the log."""
    log.warning("skipping dead-letter entry %s: %s", path, reason)


def deadletter_dir(settings: Settings) -> Path:
    """The dead-letter directory in force for ``settings``."""
    configured = getattr(settings, "callback_deadletter_dir", "")
    if configured:
        return Path(configured)
    return Path(settings.data_volume) / ".callbacks" / "failed"


class DeadLetterStore:
    """Durable, directory-backed store of failed callbacks.

    ``urls`` (or the settings' callback rules, built when first needed) decide where
    :meth:`retry` may send; a store made without either sends where entries say.
    """

    def __init__(self, directory: str | os.PathLike[str], urls: CallbackURLs | None = None,
                 settings: Settings | None = None) -> None:
        self.directory = Path(directory)
        self._urls = urls
        self._settings = settings

    @classmethod
    def from_settings(cls, settings: Settings) -> DeadLetterStore:
        """The store at ``CEREBRO_CALLBACK_DEADLETTER_DIR`` (or its default), retrying
        only to URLs the settings' callback rules allow."""
        return cls(deadletter_dir(settings), settings=settings)

    @property
    def urls(self) -> CallbackURLs | None:
        """The callback rules :meth:`retry` checks each entry's URL against (or None)."""
        if self._urls is None and self._settings is not None:
            self._urls = CallbackURLs.from_settings(self._settings)
        return self._urls

    def _path(self, entry_id: str) -> Path:
        """The file of entry ``entry_id``."""
        return self.directory / f"{entry_id}.json"

    @staticmethod
    def entry_id(idempotency_key: object) -> str:
        """A file-system-safe id for an idempotency key."""
        return _SAFE.sub("_", str(idempotency_key))[:200] or uuid.uuid4().hex

    def add(self, url: str, body: dict[str, object], idempotency_key: object, reason: str, *,
            attempts: int = 0, first_attempt_at: float | None = None, source: str = "") -> Entry:
        """Store a failed callback (replacing an older entry with the same key); returns it."""
        entry = Entry(self.entry_id(idempotency_key), url, body, str(idempotency_key), reason,
                      attempts, first_attempt_at, time.time(), source)
        try:
            old = self.get(entry.id)
        except UnreadableEntry as exc:
            log.warning("%s; a fresh entry for the same key replaces it", exc)
            old = None
        if old is not None:
            entry.retries = old.retries
        self._write(entry)
        return entry

    def _write(self, entry: Entry) -> None:
        """Write ``entry`` atomically (temporary file, fsync, rename, fsync the directory)."""
        private_dir(self.directory)
        path = self._path(entry.id)
        tmp = self.directory / f".{entry.id}.{uuid.uuid4().hex}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        with open(fd, "w", encoding="utf-8") as handle:
            private_fd(fd)  # exactly 0600, whatever the umask
            json.dump(entry.to_dict(), handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def get(self, entry_id: str) -> Entry | None:
        """The entry ``entry_id``, or None; :class:`UnreadableEntry` when its file is corrupt."""
        try:
            return _load(self._path(self.entry_id(entry_id)))
        except FileNotFoundError:
            return None

    def list(self, on_unreadable: UnreadableReporter | None = None) -> builtins.list[Entry]:
        """Every readable entry, oldest failure first.

        A file that is not a valid entry is skipped (and left in place):
        ``on_unreadable(path, reason)`` is called for it, or a warning is logged
        when no callback is given.
        """
        if not self.directory.is_dir():
            return []
        report = on_unreadable or _warn_unreadable
        entries = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                entries.append(_load(path))
            except FileNotFoundError:
                continue  # removed by a concurrent retry
            except UnreadableEntry as exc:
                report(exc.path, exc.reason)
        return sorted(entries, key=lambda e: e.failed_at)

    def remove(self, entry_id: str) -> bool:
        """Delete an entry; True when it existed."""
        try:
            self._path(self.entry_id(entry_id)).unlink()
            return True
        except FileNotFoundError:
            return False

    def retry(self, client: MainAppClient, entry_id: str | None = None,
              on_unreadable: UnreadableReporter | None = None
              ) -> builtins.list[tuple[Entry, AttemptResult]]:
        """Re-send one entry (or all) once each with ``client``.

        Delivered entries are removed; the others are kept with the new
        reason. An entry whose URL the callback rules no longer allow is not
        sent (a final :class:`~cerebro.clients.http.FinalFailure` says why).
        Unreadable files are skipped and kept, as in :meth:`list`.
        Returns ``[(entry, AttemptResult)]``; raises ``KeyError`` for an
        unknown ``entry_id`` and :class:`UnreadableEntry` when that one's file
        is corrupt.
        """
        if entry_id is not None:
            entry = self.get(entry_id)
            if entry is None:
                raise KeyError(f"no dead-lettered callback with id {entry_id!r}")
            entries = [entry]
        else:
            entries = self.list(on_unreadable)
        outcomes = []
        for entry in entries:
            result = self._refusal(entry) or \
                client.attempt(entry.url, entry.body, entry.idempotency_key)
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

    def _refusal(self, entry: Entry) -> AttemptResult | None:
        """A final failure when the rules in force do not allow ``entry``'s URL, else None."""
        from cerebro.clients.http import FinalFailure  # the client imports this package
        urls = self.urls
        if urls is None:
            return None
        try:
            urls.check_delivery(entry.url, entry.body.get("module"), entry.body.get("function"))
        except InvalidPayload as exc:
            return FinalFailure(entry.url, None, f"the callback rules refuse it: {exc.message}")
        return None
