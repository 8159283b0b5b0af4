"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Static group membership: a group instance id per consumer process, unique on its host.
Tagline: Come back under the same name and your seat is still there; never sit in another's.

With a group instance id (``group.instance.id``, Kafka 2.3 and later) a consumer
killed and restarted within the session timeout rejoins as the same member: the
broker hands its partitions straight back, without waiting for the dead
member's session to expire and without a rebalance of the others.

The id must be stable across restarts yet never shared by two live processes
of a group (the broker would fence one). ``CEREBRO_KAFKA_INSTANCE_ID=auto``
(the default) gives ``<host>-<n>``, ``n`` the lowest number no other consumer
of the same group on this host holds. Holding is an exclusive ``flock`` on a
lock file (in ``/run/lock``, else the temporary directory) kept for the life of
the process: the kernel lets go of it when the process dies, even by SIGKILL,
so a restarted process (by supervisord, or by hand) gets its predecessor's
number, while two processes started side by side get 0 and 1. ``off`` turns
static membership off; any other value is the id itself (``{host}`` and
``{n}`` are filled in), also locked, so reusing it on one host fails at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import socket
import tempfile
from pathlib import Path

from cerebro.settings import ConfigurationError

log = logging.getLogger(__name__)

AUTO = "{host}-{n}"
OFF = frozenset({"", "off", "none", "no", "false", "0"})
MAX_SLOTS = 1000
_ILLEGAL = re.compile(r"[^A-Za-z0-9._-]")
_VALID = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class Membership:
    """The group instance id of this process (None: dynamic membership) and its lock."""

    def __init__(self, instance_id: str | None, lock: int | None = None,
                 path: Path | None = None) -> None:
        self.instance_id = instance_id
        self._lock = lock
        self._path = path

    @classmethod
    def claim(cls, setting: str, group: str) -> Membership:
        """The membership ``CEREBRO_KAFKA_INSTANCE_ID=setting`` gives a consumer of ``group``;
        raises :class:`ConfigurationError` for an id Kafka refuses or one in use here."""
        value = setting.strip()
        if value.lower() in OFF:
            return cls(None)
        template = AUTO if value.lower() == "auto" else value
        template = template.replace("{host}", _ILLEGAL.sub("_", socket.gethostname()))
        folder = lock_dir()
        if "{n}" not in template:
            return cls._fixed(_valid(template), group, folder)
        if folder is None:
            log.warning("no writable lock directory: static group membership is off")
            return cls(None)
        for n in range(MAX_SLOTS):
            instance_id = _valid(template.replace("{n}", str(n)))
            held = _try_lock(folder, group, instance_id)
            if held is not None:
                return cls(instance_id, *held)
        raise ConfigurationError(f"CEREBRO_KAFKA_INSTANCE_ID: {MAX_SLOTS} consumers of group "
                                 f"{group} already run on this host")

    @classmethod
    def _fixed(cls, instance_id: str, group: str, folder: Path | None) -> Membership:
        """A membership with the literal ``instance_id``, locked when a folder allows."""
        if folder is None:
            return cls(instance_id)
        held = _try_lock(folder, group, instance_id)
        if held is None:
            raise ConfigurationError(
                f"CEREBRO_KAFKA_INSTANCE_ID={instance_id} is in use by another consumer of group "
                f"{group} on this host: give each process its own id (auto, or put {{n}} in it)")
        return cls(instance_id, *held)

    def release(self) -> None:
        """Let go of the id (its lock file is removed): a stopped consumer frees its number."""
        if self._lock is None:
            return
        if self._path is not None:
            try:
                self._path.unlink()
            except OSError:
                pass
        os.close(self._lock)
        self._lock = None

    def __repr__(self) -> str:
        return f"Membership({self.instance_id!r})"


def lock_dir() -> Path | None:
    """Where the lock files live: ``/run/lock`` when writable, else the temporary directory."""
    for folder in (Path("/run/lock"), Path(tempfile.gettempdir())):
        if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
            return folder
    return None


def lock_path(folder: Path, group: str, instance_id: str) -> Path:
    """The lock file of ``instance_id`` in ``group`` (group names may hold any character)."""
    digest = hashlib.sha256(f"{group}\n{instance_id}".encode()).hexdigest()[:24]
    return folder / f"cerebro-kafka-{digest}.lock"


def _try_lock(folder: Path, group: str, instance_id: str) -> tuple[int, Path] | None:
    """``(fd, path)`` of the lock of ``instance_id`` once held by this process; None when
    another process holds it."""
    path = lock_path(folder, group, instance_id)
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
        except PermissionError:  # another user's lock file
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd, path
        os.close(fd)  # its holder removed it as we opened it: take the new file


def _valid(instance_id: str) -> str:
    """``instance_id`` when Kafka accepts it; else a :class:`ConfigurationError`."""
    if not _VALID.match(instance_id) or instance_id in (".", ".."):
        raise ConfigurationError(f"CEREBRO_KAFKA_INSTANCE_ID gives {instance_id!r}: a group "
                                 "instance id is 1 to 249 of A-Z a-z 0-9 . _ -")
    return instance_id
