"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The lifecycle state of a module in the data volume: current, candidate, pins, history.
Tagline: Every switch written down: who, when, from what, to what.

Beside ``current.json`` each module folder holds::

    lifecycle.json   {"candidate": V, "mode": "shadow"|"canary", "percent": P,
                      "pinned": [...], "since": ..., "by": ...}
    history.jsonl    one line per switch: {"at", "by", "action", "from", "to", ...}

Every change takes the module's lock (``.lifecycle.lock``, an ``flock``), so two
operators, a build and an automatic canary rollback never interleave. Readers
(every serving process, every reload interval) take no lock: each file is
replaced whole (``current.json``, ``lifecycle.json``) or appended by whole lines.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cerebro import volume
from cerebro.volume import VolumeError

if TYPE_CHECKING:
    from _typeshed import StrPath

STATE = "lifecycle.json"
HISTORY = "history.jsonl"
LOCK = ".lifecycle.lock"
Mode = Literal["shadow", "canary"]
MODES: tuple[Mode, ...] = ("shadow", "canary")


class LifecycleError(VolumeError):
    """A lifecycle command cannot do what it was asked (unknown version, bad percent...)."""


@dataclass(frozen=True)
class State:
    """A module's lifecycle state: the candidate version and how it is tried, and pins."""

    candidate: str | None = None
    mode: Mode | None = None
    percent: float = 0.0
    pinned: tuple[str, ...] = ()
    since: str | None = None
    by: str | None = None

    @property
    def active(self) -> bool:
        """True when a candidate is being tried (shadow or canary)."""
        return self.candidate is not None and self.mode is not None

    def to_json(self) -> dict[str, Any]:
        """The state as ``lifecycle.json`` holds it."""
        data = asdict(self)
        data["pinned"] = list(self.pinned)
        return data


@dataclass(frozen=True)
class VersionInfo:
    """One published version, as ``cerebro versions`` and ``GET /v1/modules`` show it."""

    version: str
    created_at: str | None
    metrics: dict[str, Any]
    params: dict[str, Any]
    sha256: str | None
    bytes: int
    roles: list[str] = field(default_factory=list)  # current, candidate, pinned
    error: str | None = None


def now() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def who() -> str:
    """Who makes a change: ``CEREBRO_OPERATOR`` if set, else ``user@host``."""
    given = os.environ.get("CEREBRO_OPERATOR", "").strip()
    if given:
        return given[:80]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


@contextmanager
def locked(root: StrPath, module: str) -> Iterator[None]:
    """Hold the module's lifecycle lock (exclusive ``flock``) for a read-modify-write."""
    base = volume.module_dir(root, module)
    if not base.is_dir():
        raise LifecycleError(f"{module}: nothing is published in the data volume at {root}")
    try:
        fd = os.open(base / LOCK, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, volume.FILE_MODE)
    except OSError as exc:
        raise LifecycleError(f"{module}: cannot take the lifecycle lock in {base}: "
                             f"{exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _read_small(module: str, path: Path) -> bytes | None:
    """The bytes of a small lifecycle file, opened without following a link and only if it
    is a regular file (a FIFO would block the reloader); ``None`` when it does not exist."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise VolumeError(f"{module}: {path.name} cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise VolumeError(f"{module}: {path.name} is not a regular file: refused")
        return handle.read(1 << 20)


def read_state(root: StrPath, module: str) -> State:
    """The module's lifecycle state (no candidate, no pins when there is no file)."""
    data = _read_small(module, volume.module_dir(root, module) / STATE)
    if data is None:
        return State()
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise VolumeError(f"{module}: {STATE} is unreadable: {exc}") from None
    return _parse_state(module, parsed)


def _parse_state(module: str, data: object) -> State:
    """A :class:`State` from ``lifecycle.json``'s content; every name checked as plain."""
    if not isinstance(data, dict):
        raise VolumeError(f"{module}: {STATE} is not a JSON object")
    candidate = data.get("candidate")
    if candidate is not None:
        candidate = volume.safe_name(module, f"the candidate in {STATE}", candidate)
    mode = data.get("mode") if data.get("mode") in MODES else None
    pinned = data.get("pinned") or []
    if not isinstance(pinned, list):
        raise VolumeError(f"{module}: 'pinned' in {STATE} is not a list")
    try:
        percent = float(data.get("percent") or 0.0)
    except (TypeError, ValueError):
        raise VolumeError(f"{module}: 'percent' in {STATE} is not a number") from None
    return State(candidate=candidate, mode=mode if candidate else None, percent=percent,
                 pinned=tuple(volume.safe_name(module, "a pinned version", v) for v in pinned),
                 since=_text(data.get("since")), by=_text(data.get("by")))


def _text(value: object) -> str | None:
    """A short string from the file, or ``None``."""
    return value[:120] if isinstance(value, str) else None


def write_state(root: StrPath, module: str, state: State) -> None:
    """Replace ``lifecycle.json`` atomically (hold :func:`locked`)."""
    volume.write_json_atomically(volume.module_dir(root, module) / STATE, state.to_json())


def record(root: StrPath, module: str, action: str, **entry: object) -> dict[str, object]:
    """Append one switch to ``history.jsonl`` (one whole line, fsynced); returns it."""
    line = {"at": now(), "by": entry.pop("by", None) or who(), "action": action, **entry}
    path = volume.module_dir(root, module) / HISTORY
    data = (json.dumps(line, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW,
                 volume.FILE_MODE)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return line


def history(root: StrPath, module: str) -> list[dict[str, Any]]:
    """Every recorded switch, oldest first (a torn or foreign line is skipped)."""
    path = volume.module_dir(root, module) / HISTORY
    try:
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise VolumeError(f"{module}: {HISTORY} cannot be read: {exc.strerror}") from None
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def published(root: StrPath, module: str) -> list[str]:
    """The names of the published versions, newest first."""
    folder = volume.module_dir(root, module) / "versions"
    if not folder.is_dir():
        return []
    names = [p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(names, reverse=True)


def protected(root: StrPath, module: str) -> set[str]:
    """Versions pruning must never remove: the current one, the candidate, the pinned."""
    state = read_state(root, module)
    keep = set(state.pinned) | ({state.candidate} if state.candidate else set())
    current = volume.current_version(root, module)
    return keep | ({current} if current else set())


def versions(root: StrPath, module: str) -> list[VersionInfo]:
    """Every published version with its metadata and roles, newest first."""
    state = read_state(root, module)
    current = volume.current_version(root, module)
    infos = []
    for name in published(root, module):
        roles = [role for role, on in (("current", name == current),
                                       ("candidate", name == state.candidate),
                                       ("pinned", name in state.pinned)) if on]
        infos.append(_info(root, module, name, roles))
    return infos


def _info(root: StrPath, module: str, name: str, roles: list[str]) -> VersionInfo:
    """One version's :class:`VersionInfo` (with ``error`` when its metadata is unreadable)."""
    folder = volume.module_dir(root, module) / "versions" / name
    try:
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    except FileNotFoundError:  # pruned while it was being listed
        return VersionInfo(name, None, {}, {}, None, 0, roles, error="removed meanwhile")
    try:
        meta = volume.read_metadata(root, module, name)
    except VolumeError as exc:
        return VersionInfo(name, None, {}, {}, None, size, roles, error=str(exc))
    artifacts = meta.get("artifacts")
    first: object = next(iter(artifacts.values()), None) if isinstance(artifacts, dict) else None
    sha = first.get("sha256") if isinstance(first, dict) else None
    return VersionInfo(name, meta.get("created_at"), dict(meta.get("metrics") or {}),
                       dict(meta.get("params") or {}), sha, size, roles)


def _checked(root: StrPath, module: str, version: str, key: str | None) -> str:
    """``version`` when it is published and whole (signed with ``key``, every artifact's
    checksum right): what every serving process would accept. Else :class:`LifecycleError`."""
    name = volume.safe_name(module, "version", version)
    if name not in published(root, module):
        raise LifecycleError(f"{module}: no published version {name!r}; "
                             f"see `cerebro versions {module}`")
    volume.verify_version(root, module, name, key)
    return name


def promote(root: StrPath, module: str, version: str, *, key: str | None,
            by: str | None = None) -> dict[str, object]:
    """Make ``version`` current, atomically; a candidate that is promoted stops being one.
    Returns the history entry."""
    with locked(root, module):
        return _switch(root, module, version, key, by, "promote")


def _switch(root: StrPath, module: str, version: str, key: str | None, by: str | None,
            action: str) -> dict[str, object]:
    """Make ``version`` current (the lock is held): checked, recorded, then switched."""
    name = _checked(root, module, version, key)
    before = volume.current_version(root, module)
    if name == before:
        raise LifecycleError(f"{module}: {name} is already the current version")
    state = read_state(root, module)
    ended = state.candidate == name
    entry = record(root, module, action, by=by, **{"from": before, "to": name},
                   **({"ended": state.mode} if ended and state.mode else {}))
    volume.write_pointer(root, module, name)
    if ended:
        write_state(root, module, replace(state, candidate=None, mode=None, percent=0.0))
    return entry


def previous(root: StrPath, module: str) -> str | None:
    """The version that was current before the current one, from the history (or, for
    versions published before there was a history, the newest older version). A rollback
    does not count as having come from somewhere: two rollbacks step back twice, never
    back and forth."""
    current = volume.current_version(root, module)
    names = published(root, module)
    for entry in reversed(history(root, module)):
        if entry.get("to") == current and entry.get("action") != "rollback" \
                and entry.get("from") in names:
            return str(entry["from"])
    older = [name for name in names if current is None or name < current]
    return older[0] if older else None


def rollback(root: StrPath, module: str, to: str | None = None, *, key: str | None,
             by: str | None = None) -> dict[str, object]:
    """Make ``to`` (default: the previous current version) current again; returns the
    history entry."""
    with locked(root, module):
        target = to or previous(root, module)
        if target is None:
            raise LifecycleError(f"{module}: there is no earlier version to roll back to")
        return _switch(root, module, target, key, by, "rollback")


def pin(root: StrPath, module: str, version: str, *, on: bool = True,
        by: str | None = None) -> dict[str, object]:
    """Pin (or unpin) a version: pruning never removes a pinned one."""
    with locked(root, module):
        name = volume.safe_name(module, "version", version)
        if on and name not in published(root, module):
            raise LifecycleError(f"{module}: no published version {name!r}")
        state = read_state(root, module)
        if not on and name not in state.pinned:
            raise LifecycleError(f"{module}: {name} is not pinned")
        pins = [v for v in state.pinned if v != name] + ([name] if on else [])
        write_state(root, module, replace(state, pinned=tuple(pins)))
        return record(root, module, "pin" if on else "unpin", by=by, version=name)


def start_candidate(root: StrPath, module: str, version: str, mode: Mode, *,
                    key: str | None, percent: float = 0.0,
                    by: str | None = None) -> dict[str, object]:
    """Make ``version`` the candidate, tried in ``mode`` (``shadow``, or ``canary`` with
    ``percent`` of live calls); replaces any earlier candidate."""
    if mode == "canary" and not 0.0 < percent <= 100.0:
        raise LifecycleError(f"{module}: a canary's percent must be above 0 and at most 100 "
                             f"(got {percent:g})")
    with locked(root, module):
        name = _checked(root, module, version, key)
        if name == volume.current_version(root, module):
            raise LifecycleError(f"{module}: {name} is the current version; a candidate must "
                                 "be another one")
        state = read_state(root, module)
        person = by or who()
        write_state(root, module, replace(state, candidate=name, mode=mode,
                                          percent=percent if mode == "canary" else 0.0,
                                          since=now(), by=person))
        extra = {"percent": percent} if mode == "canary" else {}
        return record(root, module, mode, by=person, **{"from": state.candidate, "to": name},
                      **extra)


def stop_candidate(root: StrPath, module: str, *, by: str | None = None,
                   action: str = "candidate-off", reason: str | None = None,
                   expected: str | None = None, mode: Mode | None = None
                   ) -> dict[str, object] | None:
    """End the shadow or canary (the candidate serves nothing more); returns the history
    entry, or ``None`` when there was no candidate (or, with ``expected``, another one).
    With ``mode``, a candidate tried in the other mode is refused, not stopped."""
    with locked(root, module):
        state = read_state(root, module)
        if state.candidate is None or (expected and state.candidate != expected):
            return None
        if mode is not None and state.mode != mode:
            raise LifecycleError(f"{module}: the candidate {state.candidate} is in "
                                 f"{state.mode}, not {mode}: use `cerebro {state.mode} "
                                 f"{module} --off`")
        write_state(root, module, replace(state, candidate=None, mode=None, percent=0.0,
                                          since=now(), by=by or who()))
        extra = {"reason": reason} if reason else {}
        return record(root, module, action, by=by, **{"from": state.candidate, "to": None},
                      mode=state.mode, **extra)


def state_json(root: StrPath, module: str) -> dict[str, Any]:
    """The state as JSON (for ``GET /v1/modules`` and ``cerebro versions --json``)."""
    return read_state(root, module).to_json()
