"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Capturing exceptions: the logging handler, install(), watch and watching.
Tagline: Whoever raises, wherever, Sherlock takes a note and lets the story go on.

:func:`install` puts one :class:`SherlockHandler` on the root logger: every log
record at ERROR or above that carries ``exc_info`` becomes a Sherlock record,
whichever logger emitted it (Cerebro's ``report()``, Tornado, Celery, asyncio).
:func:`watching` / :func:`watch` do the same for a block or a function (a
build script, a cron job) and re-raise. One exception object is recorded once,
however many times it is logged. Nothing here ever raises into the caller.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import sys
import threading
from contextlib import ContextDecorator
from typing import TYPE_CHECKING, Any, Literal, overload

from sherlock.record import build, should_record
from sherlock.settings import load_settings
from sherlock.store import Store, complain, private_dir

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Mapping
    from types import TracebackType
    from typing import Self, TypedDict, TypeVar

    from sherlock.settings import SherlockSettings

    # The hooks _hook_uncaught() replaced, to restore on uninstall().
    _Hooks = TypedDict("_Hooks", {
        "sys": Callable[[type[BaseException], BaseException, TracebackType | None], Any],
        "threading": Callable[[threading.ExceptHookArgs], object],
    }, total=False)

    _F = TypeVar("_F", bound=Callable[..., Any])

CONTEXT_ATTRIBUTE = "cerebro_context"
_MARK = "__sherlock_recorded__"

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "sherlock_context", default=None)
_busy = threading.local()
_hooks: _Hooks = {}
# the secret values of the last install(), kept when Celery reinstalls
_secrets: tuple[str, ...] = ()


def _installed() -> SherlockHandler | None:
    """The :class:`SherlockHandler` on the root logger, or ``None``."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, SherlockHandler):
            return handler
    return None


def _default_store(settings: SherlockSettings | None = None) -> Store:
    """The store of ``settings``, of the installed handler, or of the environment."""
    if settings is not None:
        return Store.from_settings(settings)
    handler = _installed()
    return handler.store if handler else Store.from_settings(load_settings())


def capture(exc: BaseException | None, *, service: str | None = None,
            context: Mapping[str, object] | None = None,
            settings: SherlockSettings | None = None, store: Store | None = None,
            log_message: str | None = None, logger: str | None = None, origin: str | None = None,
            secrets: tuple[str, ...] | list[str] | None = None) -> bool:
    """Record ``exc`` once; return ``True`` when a record was written. Never raises.

    Context comes from the innermost :func:`watching` block, then ``context``
    (which wins). Client errors and exceptions already recorded are skipped.
    Passwords inside URLs are always masked, and so is every one of ``secrets``
    (default: those given to :func:`install`).
    """
    if getattr(_busy, "active", False):
        return False  # recording failed and logged about it: do not loop
    _busy.active = True
    try:
        if not should_record(exc) or getattr(exc, _MARK, False):
            return False
        merged = dict(_context.get() or {})
        merged.update(context or {})
        installed = _installed()
        service = merged.pop("service", None) or service or (
            installed.service if installed else None)
        if secrets is None:
            secrets = installed.secrets if installed else ()
        record = build(exc, service=service, context=merged, log_message=log_message,
                       logger=logger, origin=origin, secrets=secrets)
        written = (store or _default_store(settings)).append(record)
        try:
            setattr(exc, _MARK, True)
        except Exception:  # exceptions with __slots__ or read-only attributes
            pass
        return written
    except Exception as failure:
        complain(f"could not record {type(exc).__name__}: {type(failure).__name__}: {failure}",
                 key=f"capture:{type(failure).__name__}")
        return False
    finally:
        _busy.active = False


class SherlockHandler(logging.Handler):
    """A logging handler writing every ERROR+ record with ``exc_info`` to Sherlock's file.

    The record's ``cerebro_context`` dict (set by ``cerebro.reporting.report``)
    supplies module, function and ids; ``service`` is the default service.
    """

    def __init__(self, service: str, settings: SherlockSettings | None = None,
                 level: int = logging.ERROR, secrets: Iterable[str] = ()) -> None:
        super().__init__(level)
        self.configure(service, settings, secrets)

    def configure(self, service: str, settings: SherlockSettings | None = None,
                  secrets: Iterable[str] = ()) -> None:
        """Set the service name, the settings (default: from the environment) and the
        secret values to mask in every record (passwords in URLs are always masked)."""
        self.service = service
        self.settings = settings or load_settings()
        self.secrets = tuple(secrets) + tuple(self.settings.secret_values())
        self.store = Store.from_settings(self.settings)

    def emit(self, record: logging.LogRecord) -> None:
        """Record the exception of ``record``, if it has one; never raises."""
        try:
            exc = record.exc_info[1] if record.exc_info else None
            if exc is None:
                return
            context = getattr(record, CONTEXT_ATTRIBUTE, None)
            try:
                message = record.getMessage()
            except Exception:
                message = str(record.msg)
            capture(exc, service=self.service,
                    context=context if isinstance(context, dict) else None,
                    store=self.store, log_message=message, logger=record.name,
                    origin=f"{record.pathname}:{record.lineno} in {record.funcName}",
                    secrets=self.secrets)
        except Exception as failure:
            complain(f"handler failed: {type(failure).__name__}: {failure}", key="emit")

    def handleError(self, record: logging.LogRecord) -> None:
        """Never print logging's own multi-line report; one stderr line is enough."""
        complain("handler error", key="handleError")


def install(service: str, settings: SherlockSettings | None = None, *,
            level: int = logging.ERROR, hook_uncaught: bool = True,
            secrets: Collection[str] | None = None) -> SherlockHandler:
    """Add Sherlock's handler to the root logger for ``service``; return the handler.

    ``secrets`` are values masked in every record (the calling platform's API keys,
    passwords...; ``None`` keeps those of the previous call); passwords inside
    URLs are masked anyway.

    Idempotent: a second call reconfigures the handler already installed.
    With ``hook_uncaught``, uncaught exceptions in the main thread and in other
    threads are recorded too (the previous hooks still run). The directory is
    created now when possible; if it cannot be, stderr says so and the service
    starts anyway.
    """
    global _secrets
    if secrets is None:
        secrets = _secrets
    _secrets = tuple(secrets)
    handler = _installed()
    if handler is None:
        handler = SherlockHandler(service, settings, level, secrets)
        logging.getLogger().addHandler(handler)
    else:
        handler.configure(service, settings, secrets)
        handler.setLevel(level)
    if hook_uncaught:
        _hook_uncaught()
    try:
        private_dir(handler.store.dir)  # SHERLOCK_DIR, or this node's directory in it
    except OSError as exc:
        complain(f"cannot create {handler.store.dir}: {exc.strerror or exc}",
                 key=f"mkdir:{handler.store.dir}")
    return handler


def uninstall() -> None:
    """Remove Sherlock's handler and restore the uncaught-exception hooks (for tests)."""
    handler = _installed()
    if handler is not None:
        logging.getLogger().removeHandler(handler)
    if "sys" in _hooks:
        sys.excepthook = _hooks.pop("sys")
    if "threading" in _hooks:
        threading.excepthook = _hooks.pop("threading")


def _hook_uncaught() -> None:
    """Chain ``sys.excepthook`` and ``threading.excepthook`` to record, once."""
    if "sys" not in _hooks:
        previous = _hooks["sys"] = sys.excepthook

        def sherlock_excepthook(typ: type[BaseException], value: BaseException,
                                tb: TracebackType | None) -> None:
            """Record an uncaught exception, then let the previous hook report it."""
            capture(value, context={"uncaught": True})
            previous(typ, value, tb)

        sys.excepthook = sherlock_excepthook
    if "threading" not in _hooks:
        previous_thread = _hooks["threading"] = threading.excepthook

        def sherlock_threading_excepthook(args: threading.ExceptHookArgs) -> None:
            """Record an exception that ended a thread, then run the previous hook."""
            name = args.thread.name if args.thread is not None else None
            capture(args.exc_value, context={"uncaught": True, "thread": name})
            previous_thread(args)

        threading.excepthook = sherlock_threading_excepthook


class watching(ContextDecorator):  # noqa: N801 - reads as a verb: ``with watching(...)``
    """Record any exception escaping the block (or decorated function) and re-raise it.

    ``with sherlock.watching(service="build", module="churn"): ...``.
    Context given here (module, function, ids...) also applies to exceptions
    logged inside the block. Without ``settings``, the installed handler's
    settings or the environment's are used.
    """

    def __init__(self, service: str | None = None, settings: SherlockSettings | None = None,
                 **context: object) -> None:
        self.service = service
        self.settings = settings
        self.context = context
        self._token: contextvars.Token[dict[str, Any] | None] | None = None

    def __call__(self, func: _F) -> _F:
        """Decorate ``func`` (a coroutine function too) so each call runs in a fresh block."""
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def watched(*args: Any, **kwargs: Any) -> Any:
                """Await ``func`` inside a watching block."""
                with self._recreate_cm():
                    return await func(*args, **kwargs)
            return watched  # type: ignore[return-value]  # wraps(func) stands in for func
        return super().__call__(func)

    def _recreate_cm(self) -> Self:
        """A fresh instance per call, so recursive and concurrent calls are safe."""
        return type(self)(self.service, self.settings, **self.context)

    def _merged(self) -> dict[str, Any]:
        """The enclosing context overlaid with this block's."""
        merged = dict(_context.get() or {})
        merged.update({k: v for k, v in self.context.items() if v is not None})
        if self.service:
            merged["service"] = self.service
        return merged

    def __enter__(self) -> Self:
        """Make this block's context visible to exceptions logged inside it."""
        self._token = _context.set(self._merged())
        return self

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        """Record ``exc`` (if any) and let it propagate."""
        context = _context.get()
        _context.reset(self._token)  # type: ignore[arg-type]  # set by __enter__
        if exc is not None:
            capture(exc, context=context, settings=self.settings)
        return False


@overload
def watch(func: _F, *, service: str | None = None, settings: SherlockSettings | None = None,
          **context: object) -> _F:
    """Bare (``@sherlock.watch``): ``func`` itself, watched."""


@overload
def watch(func: None = None, *, service: str | None = None,
          settings: SherlockSettings | None = None, **context: object) -> watching:
    """With arguments (``@sherlock.watch(service=...)``): the decorator."""


def watch(func: _F | None = None, *, service: str | None = None,
          settings: SherlockSettings | None = None, **context: object) -> _F | watching:
    """Decorator recording exceptions escaping ``func`` and re-raising them.

    Use bare (``@sherlock.watch``) or with arguments
    (``@sherlock.watch(service="build", module="churn")``).
    """
    watcher = watching(service=service, settings=settings, **context)
    return watcher(func) if callable(func) else watcher
