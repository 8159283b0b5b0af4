"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Model handles: an expose.py's window onto its models in the data volume.
Tagline: Load the new one beside the old, then swap in one breath.

An ``expose.py`` declares ``MODEL = ModelHandle("rent_predictor")`` at import
time, which costs nothing. The platform finds the handle, loads it, and keeps
polling the volume: when a build publishes a new version, the handle loads it
in the background and swaps one reference, so requests in flight finish on the
old model and the next ones use the new. A version that fails to load leaves
the old model serving and is reported.

A handle may also hold a *candidate* version (shadow or canary, see
:mod:`cerebro.lifecycle`): the dispatcher runs a call on it inside
:func:`serving_candidate`, and ``get()``/``current()`` then return the
candidate, so an ``expose.py`` needs no change to be tried with a new model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cerebro import volume
from cerebro.errors import ModelNotReady

if TYPE_CHECKING:
    from _typeshed import StrPath


# True while the dispatcher runs a call on the candidate version (per thread and task)
_CANDIDATE: ContextVar[bool] = ContextVar("cerebro_candidate", default=False)


@contextmanager
def serving_candidate() -> Iterator[None]:
    """Within this block every handle serves its candidate version."""
    token = _CANDIDATE.set(True)
    try:
        yield
    finally:
        _CANDIDATE.reset(token)


@dataclass(frozen=True)
class Loaded:
    """A loaded model version: the object and its metadata."""

    obj: object
    version: str
    metadata: dict[str, Any]


class ModelHandle:
    """One model artifact of one module, loaded from the data volume on demand.

    States: ``unloaded`` (not looked at yet), ``no_model`` (nothing published),
    ``ready`` (serving ``version``), ``failed`` (nothing serving; ``error``
    says why). A handle that is ``ready`` may still carry an ``error`` when a
    newer version failed to load and the older one kept serving.

    ``prepare(obj)``, when given, runs on every loaded version (live or candidate)
    before it serves, off the request path: a warm-up such as compiling trees. If it
    raises, that version is refused like a corrupt one and the older one keeps serving.
    """

    def __init__(self, module: str, artifact: str = "model",
                 prepare: Callable[[Any], object] | None = None) -> None:
        self.module = module
        self.artifact = artifact
        self.prepare = prepare  # run on each loaded object before it serves (a warm-up)
        self.state = "unloaded"
        self.expected = False  # a version was published at its first look, or it served one
        self.error: str | None = None
        self._loaded: Loaded | None = None
        self._rejected: str | None = None
        self._candidate: Loaded | None = None
        self._candidate_rejected: str | None = None
        self.candidate_error: str | None = None
        self._lock = threading.Lock()

    def get(self) -> object:
        """The loaded model object; raises :class:`ModelNotReady` when none is loaded."""
        return self.current().obj

    def _not_ready(self) -> ModelNotReady:
        """The error a caller gets while no version is loaded, saying why."""
        return ModelNotReady(f"model '{self.module}/{self.artifact}' is not ready: "
                             f"{self.error or self.state}")

    def current(self) -> Loaded:
        """The loaded :class:`Loaded` (object, version, metadata) as one consistent snapshot;
        raises :class:`ModelNotReady` when none is loaded.

        Use it when a response reports the version: reading ``get()`` and then
        ``version`` separately could straddle a hot swap.
        """
        loaded = self._pick()
        if loaded is None:
            raise self._not_ready()
        return loaded

    def _pick(self) -> Loaded | None:
        """The version this call is served by: the candidate inside
        :func:`serving_candidate` (the current version when the candidate was dropped
        meanwhile: a call never fails for a switch), else the current version."""
        if _CANDIDATE.get():
            return self._candidate or self._loaded
        return self._loaded

    @property
    def candidate(self) -> str | None:
        """The candidate version loaded beside the current one, or ``None``."""
        loaded = self._candidate
        return loaded.version if loaded else None

    @property
    def version(self) -> str | None:
        """The version serving this call (the candidate inside :func:`serving_candidate`),
        or ``None``."""
        loaded = self._pick()
        return loaded.version if loaded else None

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The metadata of the version serving this call, or ``None``."""
        loaded = self._pick()
        return loaded.metadata if loaded else None

    def refresh(self, root: StrPath, key: str | None = None) -> bool:
        """Load the current version from the volume at ``root`` if it is new.

        Returns True when a new version was swapped in. Raises
        :class:`~cerebro.volume.VolumeError` when the current version cannot be
        loaded; the previous version, if any, keeps serving. A version that
        failed once is not retried until a newer one is published. With ``key``
        (``CEREBRO_MODEL_SIGNING_KEY``) a version not signed with it is refused.
        """
        with self._lock:
            first_look = self.state == "unloaded"
            try:
                version = volume.current_version(root, self.module)
            except volume.VolumeError as exc:
                self.expected = self.expected or first_look
                self._fail(str(exc))
                raise
            self.expected = self.expected or (first_look and version is not None)
            if version is None:
                if self._loaded is None:
                    self.state = "no_model"
                    self.error = (f"no model published in the data volume; "
                                  f"run `cerebro build {self.module}`")
                return False
            if self._loaded and self._loaded.version == version:
                # what the volume points at is what is serving: any earlier error is over
                self.state, self.error, self._rejected = "ready", None, None
                return False
            if version == self._rejected:
                return False
            try:
                obj, meta = self._load_version(root, version, key)
            except volume.VolumeError as exc:
                self._rejected = version
                self._fail(str(exc))
                raise
            self._loaded = Loaded(obj, version, meta)
            self.state, self.error, self._rejected = "ready", None, None
            self.expected = True
            return True

    def refresh_candidate(self, root: StrPath, version: str | None,
                          key: str | None = None) -> bool:
        """Load (or drop, with ``None``) the candidate version; True when one was loaded.

        Raises :class:`~cerebro.volume.VolumeError` when it cannot be loaded; a
        version that failed is not tried again until another is named.
        """
        with self._lock:
            if version is None or (self._loaded and self._loaded.version == version):
                self._candidate, self._candidate_rejected, self.candidate_error = None, None, None
                return False
            if self._candidate and self._candidate.version == version:
                return False
            if version == self._candidate_rejected:
                return False
            try:  # the earlier candidate serves until the new one is loaded
                obj, meta = self._load_version(root, version, key)
            except volume.VolumeError as exc:
                self._candidate_rejected, self.candidate_error = version, str(exc)
                raise
            self._candidate = Loaded(obj, version, meta)
            self._candidate_rejected, self.candidate_error = None, None
            return True

    def load(self, root: StrPath | None = None) -> object:
        """Load the current version now (for scripts and notebooks); returns the model."""
        from cerebro.settings import load_settings
        settings = load_settings()
        self.refresh(settings.data_volume if root is None else root,
                     key=settings.model_signing_key.get_secret_value() or None)
        return self.get()

    def _load_version(self, root: StrPath, version: str,
                      key: str | None) -> tuple[object, dict[str, Any]]:
        """Load one version and run :attr:`prepare` on it; a failing ``prepare`` fails the
        load (:class:`~cerebro.volume.VolumeError`), so the version never serves."""
        obj, meta = volume.load_version(root, self.module, version, self.artifact, key=key)
        if self.prepare is not None:
            try:
                self.prepare(obj)
            except Exception as exc:
                raise volume.VolumeError(f"{self.module} version {version}: preparing the "
                                         f"loaded model failed: {type(exc).__name__}: {exc}"
                                         ) from exc
        return obj, meta

    def _fail(self, message: str) -> None:
        """Record a load failure without dropping a model that is serving."""
        self.error = message
        if self._loaded is None:
            self.state = "failed"
