"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Module discovery: every folder with an expose.py is a module, no registration.
Tagline: Drop in a folder; the platform finds it.

:class:`Registry` imports ``<modules package>.<name>.expose`` for every
sub-folder that has an ``expose.py``, collects its public functions as
endpoints and its :class:`~cerebro.models.ModelHandle` objects as models. A
module that fails to import, or whose model fails to load, is kept with its
error so it can be reported; it never stops the others from serving.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Literal, NoReturn, NotRequired, TypedDict

from cerebro.endpoint import build_endpoint
from cerebro.errors import ModelNotReady, NotFound
from cerebro.models import ModelHandle
from cerebro.monitoring.policy import Monitoring
from cerebro.reporting import report
from cerebro.settings import ConfigurationError
from cerebro.volume import VolumeError

if TYPE_CHECKING:
    from cerebro.endpoint import Endpoint
    from cerebro.lifecycle.control import ModuleControl
    from cerebro.monitoring.live import ModuleMonitor
    from cerebro.settings import Settings

log = logging.getLogger(__name__)
_SCAN_LOCK = threading.RLock()


def _new_scan_lock() -> None:
    """After a fork, a fresh lock: one held by a thread of the parent would never be released
    in the child (a worker's pool process forked while the main process rescanned)."""
    global _SCAN_LOCK
    _SCAN_LOCK = threading.RLock()


os.register_at_fork(after_in_child=_new_scan_lock)

# Names the REST API uses under /v1 for itself: a module called so could never be reached.
RESERVED_NAMES = frozenset({"modules", "tasks"})


class ModelDescription(TypedDict):
    """One model of a module, as :meth:`Module.describe` shows it."""

    artifact: str
    state: str
    version: str | None
    created_at: str | None
    metrics: dict[str, object]


class FunctionDescription(TypedDict):
    """One function of a module, as :meth:`Module.describe` shows it."""

    name: str
    summary: str
    mode: Literal["sync", "async"]
    topics: list[str]
    input_schema: dict[str, object]
    example: dict[str, object] | None


class ModuleDescription(TypedDict):
    """What :meth:`Module.describe` returns (``GET /v1/modules``, ``cerebro modules``)."""

    name: str
    status: str
    errors: list[str]
    models: list[ModelDescription]
    functions: list[FunctionDescription]
    versions: NotRequired[list[dict[str, object]]]
    lifecycle: NotRequired[dict[str, object]]


@dataclass
class Module:
    """One discovered ML module: its endpoints, its model handles, or its import error."""

    name: str
    path: Path
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    handles: list[ModelHandle] = field(default_factory=list)
    import_error: str | None = None
    monitoring: Monitoring | None = None  # its expose.py's MONITORING, if it declares one
    imported_at: float | None = None  # when its import was tried (None: folder missing)
    at_start: bool = False  # found by the process's first scan, not added while it ran

    @property
    def status(self) -> str:
        """``broken`` (import failed), ``failed``, ``no_model``, ``loading`` or ``ready``."""
        if self.import_error:
            return "broken"
        states = {h.state for h in self.handles}
        for state in ("failed", "no_model", "unloaded"):
            if state in states:
                return "loading" if state == "unloaded" else state
        return "ready"

    @property
    def ready(self) -> bool:
        """True when every model of the module is loaded."""
        return self.status == "ready"

    @property
    def lost(self) -> bool:
        """True when the module was there at start-up with a model published (or served
        one since) and this process cannot serve any version of it: the node is not what
        it should be. A first build that fails to load is the module's problem, not the
        node's: every node reads the same volume."""
        return self.at_start and any(h.state == "failed" and h.expected for h in self.handles)

    def why(self) -> str:
        """Why the module is not ready, in a sentence (empty when it is)."""
        status = self.status
        if status == "ready":
            return ""
        if status == "no_model":
            return f"waiting for its first build: run `cerebro build {self.name}`"
        if status == "loading":
            return "its models are loading"
        detail = "; ".join(self.errors())
        return (f"failed to import: {detail}" if status == "broken"
                else f"no version can be served: {detail}")

    def errors(self) -> list[str]:
        """Every error message of the module (import error or model errors)."""
        if self.import_error:
            return [self.import_error.strip().splitlines()[-1]]
        return [f"{h.artifact}: {h.error}" for h in self.handles if h.error]

    def describe(self, volume_root: Path | None = None) -> ModuleDescription:
        """A JSON-able summary: status, model versions, endpoints with input schemas; with
        ``volume_root``, also every published version and the lifecycle state (candidate,
        shadow or canary, pins) as ``cerebro versions`` shows them."""
        described = self._summary()
        if volume_root is not None and self.handles:
            from cerebro.lifecycle import state as lifecycle
            try:
                described["versions"] = [vars(v) for v in lifecycle.versions(volume_root,
                                                                             self.name)]
                described["lifecycle"] = {
                    **lifecycle.state_json(volume_root, self.name),
                    "candidate_loaded": all(h.candidate for h in self.handles)}
            except (OSError, VolumeError) as exc:
                described["versions"], described["lifecycle"] = [], {"error": str(exc)}
        return described

    def _summary(self) -> ModuleDescription:
        """The summary without the volume's versions."""
        return {
            "name": self.name,
            "status": self.status,
            "errors": self.errors(),
            "models": [{"artifact": h.artifact, "state": h.state, "version": h.version,
                        "created_at": (h.metadata or {}).get("created_at"),
                        "metrics": (h.metadata or {}).get("metrics", {})}
                       for h in self.handles],
            "functions": [{"name": e.name, "summary": e.summary,
                           "mode": "async" if e.external else "sync",
                           "topics": list(e.topics),
                           "input_schema": e.schema.json_schema(),
                           "example": e.example}
                          for e in self.endpoints.values()],
        }


class Registry:
    """Every module found in the modules package, with lookup and model refresh."""

    def __init__(self, settings: Settings, modules: dict[str, Module]) -> None:
        self.settings = settings
        self.modules = modules
        self.loaded = False  # True once the first load of every model was tried
        # modules trying a candidate version (replaced whole by cerebro.lifecycle.control)
        self.controls: dict[str, ModuleControl] = {}
        # modules whose served calls are profiled for drift (replaced whole by
        # cerebro.monitoring.follow)
        self.monitors: dict[str, ModuleMonitor] = {}

    @classmethod
    def discover(cls, settings: Settings) -> Registry:
        """Import every module of ``settings.modules_package`` (or those in
        ``settings.modules``) and return a registry. Models are not loaded yet:
        call :meth:`refresh_models`."""
        registry = cls(settings, {})
        registry.scan()
        for mod in registry.modules.values():
            mod.at_start = True
        return registry

    def scan(self) -> tuple[list[str], list[str]]:
        """Import the module folders that appeared since the last scan, import again
        those that failed and changed since, and forget the folders removed.

        Returns ``(added, removed)`` module names. ``modules`` is replaced as a
        whole, so a reader on another thread sees the old table or the new one.
        """
        with _SCAN_LOCK:  # imports, and forgets, module packages: one thread at a time
            return self._scan()

    def _scan(self) -> tuple[list[str], list[str]]:
        """:meth:`scan`, with the lock held."""
        package = self._package()
        found = _folders(package)
        wanted = self.settings.modules or tuple(found)
        modules: dict[str, Module] = {}
        added: list[str] = []
        fresh = False
        for name in wanted:
            known = self.modules.get(name)
            if known is not None and not _stale(known, found.get(name)):
                modules[name] = known
                continue
            if not fresh:  # the import system caches folder listings: once, before importing
                importlib.invalidate_caches()  # (it walks every cached path: ~10 ms in a
                fresh = True                   # service, too dear for every scan)
            modules[name] = self._import(package, name, found.get(name))
            if modules[name].import_error is None or known is None:
                added.append(name)
        removed = [name for name in self.modules if name not in modules]
        for name in removed:
            _forget(f"{self.settings.modules_package}.{name}")
            log.warning("module %s: its folder is gone; no longer served", name)
        self.modules = modules
        return added, removed

    def _package(self) -> ModuleType:
        """The modules package; raises :class:`ConfigurationError` when it cannot be imported."""
        try:
            return importlib.import_module(self.settings.modules_package)
        except ImportError as exc:
            raise ConfigurationError(f"the modules package {self.settings.modules_package!r} "
                                     f"(CEREBRO_MODULES_PACKAGE) cannot be imported: "
                                     f"{exc}") from None

    def _import(self, package: ModuleType, name: str, path: Path | None) -> Module:
        """A :class:`Module` for ``name``: imported, or kept with why it cannot be."""
        if path is None:
            log.error("module %s: not found", name)
            return Module(name, Path(package.__path__[0]) / name,
                          import_error=f"module '{name}' is not in "
                                       f"{self.settings.modules_package}/ (CEREBRO_MODULES)")
        if name in RESERVED_NAMES:
            log.error("module %s: the name is reserved by the REST API", name)
            return Module(name, path, import_error=(
                f"module name '{name}' is reserved by the REST API (/v1/{name}); "
                "rename the folder"))
        _forget(f"{self.settings.modules_package}.{name}")  # an earlier failed attempt
        return _load_module(self.settings.modules_package, name, path)

    def module(self, name: str) -> Module:
        """The :class:`Module` called ``name``; raises :class:`NotFound`."""
        try:
            return self.modules[name]
        except KeyError:
            raise NotFound(f"no module named '{name}'", "module") from None

    def endpoint(self, module: str, function: str) -> Endpoint:
        """The endpoint ``module.function``; raises :class:`NotFound` for either part."""
        mod = self.module(module)
        if mod.import_error:
            return _raise_broken(mod)
        try:
            return mod.endpoints[function]
        except KeyError:
            raise NotFound(f"module '{module}' has no function '{function}'", "function") from None

    def endpoints(self) -> Iterator[Endpoint]:
        """Every endpoint of every importable module."""
        for mod in self.modules.values():
            yield from mod.endpoints.values()

    def topics(self) -> dict[str, list[Endpoint]]:
        """Map each declared Kafka topic to the endpoints that handle it."""
        table: dict[str, list[Endpoint]] = {}
        for ep in self.endpoints():
            for topic in ep.topics:
                table.setdefault(topic, []).append(ep)
        return table

    def refresh_models(self) -> list[str]:
        """Load new model versions from the data volume; report failures.

        Returns the names of modules that swapped in a new version.
        """
        swapped: list[str] = []
        key = self.settings.model_signing_key.get_secret_value() or None
        for mod in self.modules.values():
            for handle in mod.handles:
                try:
                    if handle.refresh(self.settings.data_volume, key):
                        swapped.append(mod.name)
                        log.info("module %s: model %s version %s loaded",
                                 mod.name, handle.artifact, handle.version)
                except VolumeError as exc:
                    report(exc, f"module {mod.name}: model failed to load: {exc}",
                           service="models", module=mod.name)
        self.loaded = True
        return swapped

    def ready(self, names: Iterable[str] | None = None) -> bool:
        """Whether this process should take traffic (``names`` None), or whether each of the
        modules ``names`` can serve every function (all its models loaded).

        The process is ready once its start-up load is done, unless a module that was
        there at start-up has a model published that it cannot serve (see
        :attr:`Module.lost`). A module waiting for its first build, a module added
        while running and a module whose import fails do not take the process out
        of rotation: their own calls answer 503 ``model_not_ready`` and
        ``/readyz?module=`` says why.
        """
        if names is not None:
            return all(self.module(name).ready for name in names)
        return self.loaded and not any(mod.lost for mod in self.modules.values())

    def why_not_ready(self) -> str:
        """Why the process is not ready (empty when it is)."""
        if not self.loaded:
            return "loading the models at start-up"
        lost = [mod.name for mod in self.modules.values() if mod.lost]
        return (f"cannot serve any version of {', '.join(lost)}, which had a model at start-up"
                if lost else "")


def _raise_broken(mod: Module) -> NoReturn:
    """Raise the error a client sees for a module that failed to import."""
    raise ModelNotReady(f"module '{mod.name}' failed to load: {mod.errors()[0]}")


def _folders(package: ModuleType) -> dict[str, Path]:
    """Every module folder of ``package``: a sub-folder with an ``expose.py``."""
    found: dict[str, Path] = {}
    for root in package.__path__:
        for path in sorted(Path(root).iterdir()):
            if path.name[0] not in "._" and (path / "expose.py").is_file():
                found.setdefault(path.name, path)
    return found


def _stale(known: Module, path: Path | None) -> bool:
    """True when ``known`` must be imported again: its folder appeared (it was missing)
    or, after a failed import, one of its Python files changed."""
    if path is None:
        return False
    if known.imported_at is None:
        return True
    if known.import_error is None:
        return False
    return _newest_source(path) > known.imported_at


def _newest_source(path: Path) -> float:
    """The newest modification time of the Python files of a module folder."""
    times = [p.stat().st_mtime for p in path.rglob("*.py") if p.is_file()]
    return max(times, default=0.0)


def _forget(prefix: str) -> None:
    """Drop ``prefix`` and its sub-modules from ``sys.modules`` (so they import afresh)."""
    for name in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
        del sys.modules[name]


def _load_module(package: str, name: str, path: Path) -> Module:
    """Import one module's expose.py and collect its endpoints and model handles."""
    mod = Module(name, path, imported_at=time.time())
    try:
        expose = importlib.import_module(f"{package}.{name}.expose")
        for fname, func in inspect.getmembers(expose, inspect.isfunction):
            if not fname.startswith("_") and func.__module__ == expose.__name__:
                mod.endpoints[fname] = build_endpoint(name, func)
        seen: set[int] = set()
        for value in vars(expose).values():
            if isinstance(value, ModelHandle) and id(value) not in seen:
                seen.add(id(value))
                mod.handles.append(value)
            elif isinstance(value, Monitoring):
                mod.monitoring = value
    except Exception as exc:
        mod.import_error = traceback.format_exc()
        mod.endpoints, mod.handles = {}, []
        report(exc, f"module {name}: failed to import: {type(exc).__name__}: {exc}",
               service="discovery", module=name)
    return mod
