"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The exception file: whole-line appends from many processes, rotation by size, reading back.
Tagline: Many hands write in one ledger, and no page is ever torn.

Layout of ``SHERLOCK_DIR``::

    sherlock.jsonl        the current file, one JSON record per line
    sherlock.jsonl.1..N   rotated files, .1 the newest (N = SHERLOCK_BACKUPS)
    .sherlock.lock        the lock every writer and reader takes with flock
    rotated-away.json     newest record time of the last file deleted by rotation
    digest-state.json     the digest's watermarks, one per store (see sherlock.digest)
    nodes/<node>/         one node's own store, same layout (SHERLOCK_NODE, multi-node)

With ``SHERLOCK_NODE`` set, a process writes to ``nodes/<node>/`` instead of the
root, so no two machines ever append to one file (appends from several NFS
clients are not atomic); readers (:func:`stores`) read the root and every node,
one store at a time (so hundreds of node stores never exhaust the open files).

A node store idle for long, every record digested, is removed by the digest
(:meth:`Store.remove_if_idle`, under the store's lock). A process still writing
there recreates the directory: the lock is taken on the lock file the path names
*now* (:class:`_Lock` checks it after locking), so no record goes to a removed store.

Writing a record: take the exclusive lock, stamp ``ts``/``time`` (so record
times follow the order in the file), rotate when the line would push the file
over ``max_bytes``, then one ``os.write`` of the whole line on an ``O_APPEND``
descriptor. A short write (full disk) is cut back so no torn line stays.
Nothing here raises into the caller: failures go to stderr in one line.

Records hold tracebacks and context: every file is 0600 and every directory
Sherlock creates 0700, whatever the umask (:func:`private_fd`,
:func:`private_dir`; a file or directory of ours left open to others by an
older version is tightened when next opened).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from sherlock.record import truncate
from sherlock.settings import NODE_NAME, NODES_DIR

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from typing import Self

    from sherlock.settings import SherlockSettings

FILE_MODE = 0o600
DIR_MODE = 0o700
FILE_NAME = "sherlock.jsonl"
LOCK_NAME = ".sherlock.lock"
ROTATED_AWAY_NAME = "rotated-away.json"
REMOVED_MARK = ".removed-"  # nodes/.<node>.removed-<hex>: a store being removed
WRITE_LOCK_TIMEOUT = 5.0
READ_LOCK_TIMEOUT = 60.0
COMPLAINT_INTERVAL = 60.0
_PREFIX_RESERVE = 80  # room for the {"ts":...,"time":"..."} prefix stamped under the lock

_complaints: dict[str, tuple[float, int]] = {}  # key -> (last time shown, suppressed)
_complaints_lock = threading.Lock()


def complain(message: str, key: str | None = None) -> None:
    """Write one line to stderr, at most once a minute per ``key`` (default: the message).

    Used whenever recording fails: the service carries on, a human can see why.
    """
    key = key or message
    now = time.monotonic()
    with _complaints_lock:
        last, suppressed = _complaints.get(key, (None, 0))
        if last is not None and now - last < COMPLAINT_INTERVAL:
            _complaints[key] = (last, suppressed + 1)
            return
        _complaints[key] = (now, 0)
    more = f" ({suppressed} similar messages suppressed)" if suppressed else ""
    try:
        sys.stderr.write(f"sherlock: {message}{more}\n")
        sys.stderr.flush()
    except Exception:  # stderr itself is gone: nothing more we can do
        pass


def _chmod(target: int | Path, mode: int) -> None:
    """``chmod`` a descriptor or path, best effort: a file system that cannot (some network
    or host mounts) must not cost a record; stderr says so, once a minute."""
    try:
        if isinstance(target, int):
            os.fchmod(target, mode)
        else:
            os.chmod(target, mode)
    except OSError as exc:
        complain(f"cannot make {target if isinstance(target, Path) else 'a file'} private "
                 f"({mode:o}): {exc.strerror or exc}", key=f"chmod:{type(exc).__name__}")


def private_fd(fd: int) -> None:
    """Make the open file ``fd`` exactly 0600 when it is ours and has another mode (a file
    of another owner is left alone)."""
    status = os.fstat(fd)
    if status.st_mode & 0o777 != FILE_MODE and status.st_uid == os.geteuid():
        _chmod(fd, FILE_MODE)


def private_dir(directory: str | os.PathLike[str]) -> None:
    """Create ``directory`` and its missing parents 0700, whatever the umask; tighten it to
    0700 when it exists, is ours and is open to others."""
    directory = Path(directory)
    missing = []
    for parent in (directory, *directory.parents):
        if parent.exists():
            break
        missing.append(parent)
    for path in reversed(missing):
        try:
            path.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process: checked below
        _chmod(path, DIR_MODE)
    status = directory.stat()
    if status.st_mode & 0o077 and status.st_uid == os.geteuid():
        _chmod(directory, DIR_MODE)


def open_private(path: str | os.PathLike[str], flags: int) -> int:
    """``os.open(path, flags | O_CREAT | O_CLOEXEC)`` of a 0600 file (see :func:`private_fd`)."""
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        private_fd(fd)
    except OSError:  # fstat failed: the descriptor is of no use
        os.close(fd)
        raise
    return fd


def iso_utc(ts: float) -> str:
    """``ts`` (seconds since the epoch) as an ISO 8601 UTC string."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="microseconds")


def encode(record: Mapping[str, Any], max_line_bytes: int) -> bytes:
    """Encode ``record`` (without ``ts``/``time``) as a JSON object in bytes, bounded so
    the stamped line stays within ``max_line_bytes``.

    The traceback is shortened first (keeping its head and its innermost tail),
    then the extra context and log message are dropped.
    """
    budget = max_line_bytes - _PREFIX_RESERVE
    record = dict(record)
    for _attempt in range(6):
        data = json.dumps(record, ensure_ascii=False, default=str,
                          separators=(",", ":")).encode("utf-8", "replace")
        over = len(data) - budget
        if over <= 0:
            return data
        text = record.get("traceback") or ""
        if len(text) > 200:
            record["traceback"] = truncate(text, max(len(text) - over - 200, 100))
        elif record.get("context") or record.get("log_message"):
            record["context"], record["log_message"] = {"truncated": True}, None
        else:
            record["message"] = (record.get("message") or "")[: max(budget // 8, 10)]
    minimal = {k: record.get(k) for k in ("v", "id", "service", "type", "fingerprint")}
    minimal["message"] = "record too large; truncated by Sherlock"
    return json.dumps(minimal, default=str).encode("utf-8", "replace")[:budget]


class LockTimeout(OSError):
    """The Sherlock lock could not be taken in time."""


class _Lock:
    """An exclusive ``flock`` on the directory's lock file, opened afresh for each use
    (so forked processes and threads never share one lock by accident).

    A store can be removed (moved away by the digest, under this lock) while a writer waits
    for its lock: once locked, the lock file must still be the one at ``path``, else the lock
    is taken again on the file there now. ``FileNotFoundError`` means the directory is gone
    (the writer recreates it and tries again).
    """

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.fd: int | None = None

    def __enter__(self) -> Self:
        """Take the lock, polling with a growing pause until ``timeout``."""
        deadline = time.monotonic() + self.timeout
        while True:
            fd = open_private(self.path, os.O_RDWR)
            try:
                self._flock(fd, deadline)
                if self._still_at_path(fd):
                    self.fd = fd
                    return self
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the store was moved away while we waited: lock the one there now

    def _flock(self, fd: int, deadline: float) -> None:
        """``flock`` ``fd`` exclusively, polling until ``deadline`` (then :class:`LockTimeout`)."""
        pause = 0.00005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(errno.ETIMEDOUT, f"lock {self.path} busy") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.005)

    def _still_at_path(self, fd: int) -> bool:
        """True when the locked file ``fd`` is still the lock file at ``path``."""
        try:
            there = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino)

    def __exit__(self, *exc_info: object) -> Literal[False]:
        """Release the lock (closing the descriptor releases it)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        return False


class Store:
    """The exception file in one directory: append, rotate, read back.

    ``node`` names the node whose store this is (``""``: the root store of SHERLOCK_DIR);
    records read from a node's store carry it as ``node``.
    """

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int = 16 * 1024 * 1024,
                 backups: int = 10, max_line_bytes: int = 64 * 1024, node: str = "") -> None:
        self.dir = Path(directory)
        self.node = node
        self.max_bytes = max_bytes
        self.backups = max(1, backups)
        self.max_line_bytes = max_line_bytes
        self.path = self.dir / FILE_NAME
        self.lock_path = self.dir / LOCK_NAME
        self.rotated_away_path = self.dir / ROTATED_AWAY_NAME

    @classmethod
    def from_settings(cls, settings: SherlockSettings) -> Self:
        """The store this process writes to: ``SHERLOCK_DIR/nodes/<SHERLOCK_NODE>`` when the
        node is named, else ``SHERLOCK_DIR``."""
        return cls(settings.store_dir, settings.max_bytes, settings.backups,
                   settings.max_line_bytes, settings.node)

    @property
    def key(self) -> str:
        """The store's name in the digest state: ``"."`` (root) or ``"nodes/<node>"``."""
        return f"{NODES_DIR}/{self.node}" if self.node else "."

    def backup(self, number: int) -> Path:
        """Path of rotated file ``number`` (1 is the newest)."""
        return self.dir / f"{FILE_NAME}.{number}"

    def files(self) -> list[Path]:
        """Existing record files, oldest first (the current file last)."""
        paths = [self.backup(n) for n in range(self.backups, 0, -1)] + [self.path]
        return [p for p in paths if p.exists()]

    # -- writing ---------------------------------------------------------------

    def append(self, record: Mapping[str, Any]) -> bool:
        """Append ``record``; return ``True`` when written. Never raises."""
        try:
            body = encode(record, self.max_line_bytes)
            self._append(body)
            return True
        except Exception as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            complain(f"could not record {record.get('type', 'an exception')} in "
                     f"{self.dir}: {type(exc).__name__}: {reason}",
                     key=f"append:{self.dir}:{type(exc).__name__}")
            return False

    def _append(self, body: bytes) -> None:
        """Write ``body`` as one stamped line under the lock, creating the directory.

        If the lock stays busy past ``WRITE_LOCK_TIMEOUT`` (a writer stuck while
        holding it), the line is still appended whole with one ``O_APPEND``
        write, without rotating, rather than lost; stderr says so.
        """
        lock = _Lock(self.lock_path, WRITE_LOCK_TIMEOUT)
        try:
            try:
                lock.__enter__()
            except FileNotFoundError:
                private_dir(self.dir)
                lock.__enter__()
        except LockTimeout:
            complain(f"{self.lock_path} busy for {WRITE_LOCK_TIMEOUT:.0f}s; "
                     "appending without the lock", key=f"lock:{self.dir}")
            try:
                self._write_line(self._stamp(body), rotate=False)
            except FileNotFoundError:  # the store was removed meanwhile
                private_dir(self.dir)
                self._write_line(self._stamp(body), rotate=False)
            return
        try:
            self._write_line(self._stamp(body))
        finally:
            lock.__exit__()

    @staticmethod
    def _stamp(body: bytes) -> bytes:
        """Prefix the encoded record with its time: ``{"ts":..., "time":"...", ...}``."""
        ts = time.time()
        return b'{"ts":%.6f,"time":"%s",' % (ts, iso_utc(ts).encode()) + body[1:] + b"\n"

    def _open_current(self) -> int:
        """Open the current file for appending."""
        return open_private(self.path, os.O_WRONLY | os.O_APPEND)

    def _write_line(self, line: bytes, rotate: bool = True) -> None:
        """Rotate if needed, then write ``line`` whole (the lock is held)."""
        fd: int | None  # None once closed for rotation, until reopened
        fd = self._open_current()
        try:
            size = os.fstat(fd).st_size
            if rotate and size > 0 and size + len(line) > self.max_bytes:
                os.close(fd)
                fd = None
                self._rotate()
                fd = self._open_current()
                size = os.fstat(fd).st_size
            written = os.write(fd, line)
            if written != len(line):  # a short write: cut it back, never leave a torn line
                os.ftruncate(fd, size)
                raise OSError(errno.ENOSPC, f"short write ({written} of {len(line)} bytes)")
        finally:
            if fd is not None:
                os.close(fd)

    def _rotate(self) -> None:
        """Shift ``.N-1 -> .N`` ... ``current -> .1`` (the lock is held).

        The oldest file is overwritten; the time of its newest record is noted
        in ``rotated-away.json`` so the digest can warn that records it had not
        mailed yet may be gone.
        """
        oldest = self.backup(self.backups)
        if oldest.exists():
            self._note_rotated_away(oldest)
        for number in range(self.backups - 1, 0, -1):
            if self.backup(number).exists():
                os.replace(self.backup(number), self.backup(number + 1))
        os.replace(self.path, self.backup(1))

    def _note_rotated_away(self, path: Path) -> None:
        """Remember the newest record time of ``path`` before rotation deletes it."""
        ts = last_ts(path, self.max_line_bytes)
        if ts is None:
            return
        previous = self.rotated_away()
        state = {"through_ts": max(ts, previous.get("through_ts", 0.0)),
                 "through": iso_utc(ts), "files": previous.get("files", 0) + 1}
        write_json_atomic(self.rotated_away_path, state)

    def rotated_away(self) -> dict[str, Any]:
        """The ``rotated-away.json`` state (empty when nothing was ever deleted, or when the
        file is not a JSON object: a damaged state file never stops the recording)."""
        try:
            state = json.loads(self.rotated_away_path.read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    # -- reading ---------------------------------------------------------------

    def snapshot(self) -> tuple[float, list[BinaryIO]]:
        """Take the lock once, note the time and open every file; return ``(until, files)``.

        Every record stamped before ``until`` is already whole in one of the
        opened files (writers stamp under the lock), and the open descriptors
        keep their data even if rotation renames or deletes the files later.
        """
        if not self.dir.exists():
            return time.time(), []
        lock = _Lock(self.lock_path, READ_LOCK_TIMEOUT)
        try:
            lock.__enter__()
        except FileNotFoundError:  # removed since (an idle node store): nothing to read
            return time.time(), []
        until = time.time()
        handles: list[BinaryIO] = []
        try:
            for path in self.files():
                try:
                    handles.append(open(path, "rb"))
                except FileNotFoundError:
                    continue
        except BaseException:
            for handle in handles:
                handle.close()
            raise
        finally:
            lock.__exit__()
        return until, handles

    def read(self, since: float | None = None, until: float | None = None,
             stats: dict[str, int] | None = None) -> Iterator[dict[str, Any]]:
        """Yield records with ``since <= ts < until``, oldest file first.

        ``until`` defaults to a fresh :meth:`snapshot` time. Lines that are not
        whole JSON objects are skipped and counted in ``stats["bad_lines"]``.
        """
        snap_until, handles = self.snapshot()
        until = snap_until if until is None else until
        for record in read_handles(handles, since, until, self.max_line_bytes, stats):
            yield self.label(record)

    def label(self, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` with ``node`` set to this store's node (unchanged for the root store)."""
        if self.node:
            record["node"] = self.node
        return record

    # -- removing an idle node store ---------------------------------------------

    def newest_ts(self) -> float | None:
        """The ``ts`` of the newest record in any of the store's files, or ``None``."""
        found = [ts for ts in (last_ts(path, self.max_line_bytes) for path in self.files())
                 if ts is not None]
        return max(found, default=None)

    def last_modified(self) -> float:
        """The newest modification time of the store's directory and of every file in it (an
        empty directory just made by a starting node counts as just modified)."""
        times = [os.stat(self.dir).st_mtime]
        for entry in os.scandir(self.dir):
            try:
                times.append(entry.stat(follow_symlinks=False).st_mtime)
            except FileNotFoundError:
                continue
        return max(times)

    def remove_if_idle(self, mark: float | None, idle_since: float) -> bool:
        """Remove this node store when every record in it is before ``mark`` (all digested;
        ``None``: it must hold no record) and none of its files was modified after
        ``idle_since``; return whether it was removed. Never the root store.

        Under the store's lock the directory is moved to ``nodes/.<node>.removed-<hex>`` (no
        node's name: readers skip it), then deleted. A writer waiting for the lock meanwhile
        writes to a new directory (see :class:`_Lock`).
        """
        if not self.node:
            return False
        try:
            with _Lock(self.lock_path, WRITE_LOCK_TIMEOUT):
                newest = self.newest_ts()
                if newest is not None and (mark is None or newest >= mark):
                    return False
                if self.last_modified() > idle_since:
                    return False
                removed = self.dir.with_name(f".{self.node}{REMOVED_MARK}{uuid.uuid4().hex}")
                os.rename(self.dir, removed)
        except (FileNotFoundError, LockTimeout):
            return False  # already gone, or a writer holds it (so not idle)
        shutil.rmtree(removed, ignore_errors=True)
        return True


def stores(settings: SherlockSettings) -> list[Store]:
    """Every store of the deployment: the root ``SHERLOCK_DIR`` first, then each
    ``SHERLOCK_DIR/nodes/<node>/`` directory in name order (dead nodes' included: their
    records stay on the shared volume until digested)."""
    root = Path(settings.dir)
    found = [Store(root, settings.max_bytes, settings.backups, settings.max_line_bytes)]
    try:
        names = sorted(entry.name for entry in (root / NODES_DIR).iterdir()
                       if NODE_NAME.fullmatch(entry.name) and entry.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        names = []
    found.extend(Store(root / NODES_DIR / name, settings.max_bytes, settings.backups,
                       settings.max_line_bytes, name) for name in names)
    return found


def remove_leftovers(settings: SherlockSettings) -> None:
    """Delete what a removal could not (``nodes/.<node>.removed-*``: a file still open on NFS
    leaves a ``.nfs*`` file behind until it is closed)."""
    try:
        entries = list(os.scandir(Path(settings.dir) / NODES_DIR))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.name.startswith(".") and REMOVED_MARK in entry.name and entry.is_dir():
            shutil.rmtree(entry.path, ignore_errors=True)


def read_handles(handles: Sequence[BinaryIO], since: float | None, until: float | None,
                 max_line_bytes: int, stats: dict[str, int] | None = None
                 ) -> Iterator[dict[str, Any]]:
    """Yield records with ``since <= ts < until`` from open binary files, closing them."""
    stats = {} if stats is None else stats
    stats.setdefault("bad_lines", 0)
    try:
        for handle in handles:
            with handle:
                if since is not None:
                    newest = _last_ts_of_handle(handle, max_line_bytes)
                    if newest is not None and newest < since:
                        continue
                    handle.seek(0)
                for line in handle:
                    if not line.endswith(b"\n"):
                        break  # being written right now: after ``until`` by construction
                    try:
                        record = json.loads(line)
                        ts = float(record["ts"])
                    except (ValueError, KeyError, TypeError):
                        stats["bad_lines"] += 1
                        continue
                    if (since is None or ts >= since) and (until is None or ts < until):
                        yield record
    finally:
        for handle in handles:
            handle.close()


def _last_ts_of_handle(handle: BinaryIO, max_line_bytes: int) -> float | None:
    """The ``ts`` of the last whole record in an open binary file, or ``None``."""
    size = os.fstat(handle.fileno()).st_size
    handle.seek(max(0, size - max_line_bytes - 1))
    lines = handle.read().split(b"\n")
    for line in reversed(lines[1:] if size > max_line_bytes else lines):
        if not line.strip():
            continue
        try:
            return float(json.loads(line)["ts"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def last_ts(path: str | os.PathLike[str], max_line_bytes: int) -> float | None:
    """The ``ts`` of the last whole record in ``path``, or ``None``."""
    try:
        with open(path, "rb") as handle:
            return _last_ts_of_handle(handle, max_line_bytes)
    except OSError:
        return None


def write_json_atomic(path: str | os.PathLike[str], value: object) -> None:
    """Write ``value`` as JSON to ``path`` durably: temp file, fsync, rename, fsync dir."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = json.dumps(value, indent=2, sort_keys=True).encode()
    fd = open_private(tmp, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
