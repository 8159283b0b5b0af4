"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The data volume: where builds publish models and services find them.
Tagline: Write it whole, then rename: a reader never sees half a model.

Layout, one folder per module::

    <volume>/<module>/current.json            {"version": "<version>"}
    <volume>/<module>/versions/<version>/     metadata.json, <artifact>.joblib, extras

:func:`publish` writes a version into a hidden temporary folder, fsyncs it,
renames it into place and only then atomically replaces ``current.json``. A
crash at any point leaves the previous version current. :func:`load_current`
reads the current version back and checks every artifact's sha256.

With ``CEREBRO_MODEL_SIGNING_KEY`` a version is also signed (``signature.json``,
see :mod:`cerebro.modelsign`) and a reader holding the key refuses an unsigned
or mis-signed one before it unpickles anything. Every name read from the
volume (the version in ``current.json``, an artifact's file in the metadata)
must be a plain name: nothing read there can point outside the version folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import shutil
import stat
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from cerebro import modelsign

if TYPE_CHECKING:
    from _typeshed import StrPath

log = logging.getLogger(__name__)
UNSET: Any = object()  # publish()'s default: the configured signing key
# Models and their metadata are readable by the owner and its group (the services of a shared
# volume), never by everyone, whatever the umask.
FILE_MODE = 0o640
DIR_MODE = 0o750
POINTER = "current.json"
METADATA = "metadata.json"
LIBRARIES = ("scikit-learn", "numpy", "pandas", "joblib")


class VolumeError(Exception):
    """The data volume holds no usable model for a module (missing or corrupt)."""


# a version or file name taken from the volume: letters, digits, '.', '_', '-'; not hidden
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def safe_name(module: str, what: str, name: object) -> str:
    """``name`` when it is a plain file or folder name; else :class:`VolumeError`."""
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise VolumeError(f"{module}: {what} {str(name)[:80]!r} is not a plain name: refused")
    return name


def module_dir(root: StrPath, module: str) -> Path:
    """The folder of ``module`` in the data volume at ``root``."""
    return Path(root) / module


def library_versions() -> dict[str, str | None]:
    """Versions of Python and the libraries a pickled model depends on."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def sha256_of(path: StrPath) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: StrPath) -> None:
    """Flush a directory entry to disk so a rename survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomically(path: Path, data: object) -> None:
    """Write JSON to ``path`` via a temporary file and ``os.replace`` (mode :data:`FILE_MODE`)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "w",
              encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), FILE_MODE)
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def new_version() -> str:
    """A sortable, unique version name: UTC time plus a short random suffix."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z-" + uuid.uuid4().hex[:6]


def publish(root: StrPath, module: str, artifacts: Mapping[str, object], *,
            metrics: Mapping[str, object] | None = None,
            params: Mapping[str, object] | None = None,
            files: Mapping[str, bytes] | None = None, keep: int = 5,
            signing_key: str | None = UNSET) -> dict[str, Any]:
    """Publish a new model version of ``module`` atomically and make it current.

    ``artifacts`` maps a name to a Python object saved with joblib (the usual
    one is ``{"model": pipeline}``); ``files`` maps a file name to bytes
    written beside them (reports, plots). ``metrics`` and ``params`` go into
    ``metadata.json``. Returns the metadata dict. Older versions beyond
    ``keep`` are removed (never a pinned one or the candidate), and the switch is
    recorded in the module's history. The version is signed with ``signing_key``, by
    default the configured one (:func:`cerebro.modelsign.configured_key`); with
    none (or ``None`` given) it is published unsigned, and a warning says so.
    """
    if signing_key is UNSET:
        signing_key = modelsign.configured_key()
    import joblib  # imported here: expose.py imports this module and must stay cheap
    base = module_dir(root, module)
    versions = base / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    for folder in (base, versions):
        folder.chmod(DIR_MODE)
    version = new_version()
    tmp = versions / f".tmp-{version}"
    tmp.mkdir(mode=DIR_MODE)
    tmp.chmod(DIR_MODE)
    try:
        entries: dict[str, dict[str, object]] = {}
        for name, obj in artifacts.items():
            path = tmp / f"{name}.joblib"
            joblib.dump(obj, path)
            entries[name] = {"file": path.name, "sha256": sha256_of(path),
                             "bytes": path.stat().st_size}
        for name, data in (files or {}).items():
            (tmp / name).write_bytes(data)
        meta = {
            "module": module,
            "version": version,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "artifacts": entries,
            "files": sorted(files or {}),
            "libraries": library_versions(),
            "metrics": metrics or {},
            "params": params or {},
        }
        write_json_atomically(tmp / METADATA, meta)
        if signing_key:
            write_json_atomically(tmp / modelsign.SIGNATURE, modelsign.sign(meta, signing_key))
        for path in tmp.iterdir():
            path.chmod(FILE_MODE)
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        os.rename(tmp, versions / version)
        _fsync_dir(versions)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    from cerebro.lifecycle import state as lifecycle  # it builds on this module
    with lifecycle.locked(root, module):
        before = current_version(root, module)
        write_pointer(root, module, version)
        lifecycle.record(root, module, "publish", **{"from": before, "to": version})
        prune(root, module, keep)
    if not signing_key:
        log.warning("%s: version %s published unsigned (CEREBRO_MODEL_SIGNING_KEY is not set): "
                    "services that have a key refuse it", module, version)
    return meta


def write_pointer(root: StrPath, module: str, version: str) -> None:
    """Make ``version`` current: replace ``current.json`` atomically."""
    write_json_atomically(module_dir(root, module) / POINTER, {"version": version})


def prune(root: StrPath, module: str, keep: int) -> list[str]:
    """Remove all but the newest ``keep`` versions, never the current one, the candidate
    or a pinned one (see :mod:`cerebro.lifecycle.state`); returns the names removed."""
    from cerebro.lifecycle import state as lifecycle
    versions = module_dir(root, module) / "versions"
    spared = lifecycle.protected(root, module)
    names = sorted(p.name for p in versions.iterdir() if p.is_dir() and not p.name.startswith("."))
    removed = [name for name in (names[:-keep] if keep > 0 else []) if name not in spared]
    for name in removed:
        shutil.rmtree(versions / name, ignore_errors=True)
    return removed


def current_version(root: StrPath, module: str) -> str | None:
    """The current version name of ``module``, or ``None`` when none is published."""
    try:
        with open(module_dir(root, module) / POINTER, encoding="utf-8") as handle:
            version = json.load(handle)["version"]
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise VolumeError(f"{module}: {POINTER} is unreadable: {exc}") from None
    return safe_name(module, f"the version in {POINTER}", version)


def read_metadata(root: StrPath, module: str, version: str) -> dict[str, Any]:
    """The ``metadata.json`` of one version."""
    path = module_dir(root, module) / "versions" / safe_name(module, "version", version) / METADATA
    try:
        with open(path, encoding="utf-8") as handle:
            return cast("dict[str, Any]", json.load(handle))
    except FileNotFoundError:
        raise VolumeError(f"{module}: version {version} has no {METADATA}") from None
    except ValueError as exc:
        raise VolumeError(f"{module}: {METADATA} of {version} is corrupt: {exc}") from None


def check_signature(root: StrPath, module: str, version: str, meta: dict[str, Any],
                    key: str) -> None:
    """Raise :class:`VolumeError` unless the version is signed with ``key``."""
    path = module_dir(root, module) / "versions" / version / modelsign.SIGNATURE
    try:
        with open(path, encoding="utf-8") as handle:
            signature = json.load(handle)
    except FileNotFoundError:
        signature = None
    except ValueError:
        signature = "unreadable"
    try:
        modelsign.verify(meta, signature, key)
    except modelsign.SignatureRefused as exc:
        raise VolumeError(f"{module}: version {version} refused: {exc}") from None


def verify_version(root: StrPath, module: str, version: str, key: str | None) -> dict[str, Any]:
    """Check a version as a serving process would, without unpickling anything: its
    signature (with ``key``), its module/version binding and every artifact's sha256.
    Returns its metadata; raises :class:`VolumeError`."""
    meta = _signed_metadata(root, module, version, key)
    artifacts = meta.get("artifacts")
    if not isinstance(artifacts, dict) or not artifacts:
        raise VolumeError(f"{module}: version {version} has no artifacts")
    for name in artifacts:
        _artifact_bytes(root, module, version, meta, name)
    return meta


def _signed_metadata(root: StrPath, module: str, version: str,
                     key: str | None) -> dict[str, Any]:
    """A version's metadata, checked: a JSON object, signed with ``key`` (when given) as
    this module's and this version's."""
    meta = read_metadata(root, module, version)
    if not isinstance(meta, dict):
        raise VolumeError(f"{module}: {METADATA} of {version} is not a JSON object")
    if key:
        check_signature(root, module, version, meta, key)
        if meta.get("module") != module or meta.get("version") != version:
            raise VolumeError(f"{module}: version {version} refused: it is signed as "
                              f"{meta.get('module')!s:.60}/{meta.get('version')!s:.60}")
    return meta


def _artifact_bytes(root: StrPath, module: str, version: str, meta: dict[str, Any],
                    name: str) -> tuple[bytes, str]:
    """The bytes of artifact ``name`` (read once, from a regular file) and its file name,
    once they match the sha256 the metadata gives."""
    artifacts = meta.get("artifacts")
    entry = artifacts.get(name) if isinstance(artifacts, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise VolumeError(f"{module}: version {version} has no artifact '{name}'")
    file = safe_name(module, f"the file of artifact '{name}'", entry.get("file"))
    data = _read_regular(module, version, module_dir(root, module) / "versions" / version
                         / file)
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise VolumeError(f"{module}: artifact {file} of {version} is corrupt "
                          "(sha256 mismatch)")
    return data, file


def load_version(root: StrPath, module: str, version: str, name: str = "model",
                 key: str | None = None) -> tuple[object, dict[str, Any]]:
    """Load artifact ``name`` of a version after checking its signature (with ``key``) and
    its sha256.

    Returns ``(object, metadata)``; raises :class:`VolumeError` when the version
    is not signed with ``key`` (or is signed as another module's or version), or
    the artifact is missing, not a regular file, does not match its checksum or
    does not unpickle. The bytes checked are the bytes loaded (read once), and
    nothing is unpickled before every check passed.
    """
    meta = _signed_metadata(root, module, version, key)
    data, file = _artifact_bytes(root, module, version, meta, name)
    import io

    import joblib
    try:
        return joblib.load(io.BytesIO(data)), meta
    except Exception as exc:  # unpickling can raise nearly anything
        raise VolumeError(f"{module}: artifact {file} of {version} failed to load: "
                          f"{type(exc).__name__}: {exc}") from exc


def _read_regular(module: str, version: str, path: Path) -> bytes:
    """The bytes of ``path``, opened once, not through a link, and only if it is a regular
    file (a FIFO or a device could hand the checksum and the loader different bytes)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise VolumeError(f"{module}: artifact file {path.name} of {version} is missing") from None
    except OSError as exc:
        raise VolumeError(f"{module}: artifact file {path.name} of {version} cannot be "
                          f"opened: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise VolumeError(f"{module}: artifact {path.name} of {version} is not a regular "
                              "file: refused")
        return handle.read()
