"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Building one exception record: context, traceback, bounded size, and its fingerprint.
Tagline: Every crime scene reduced to one line of evidence.

A record is a flat JSON-able dict. Its ``fingerprint`` groups "the same"
exception: the exception type plus the innermost frames of project code
(module and function names, not line numbers and never the message), so
``ZeroDivisionError: boom 3 / 0`` and ``... boom 7 / 0`` from the same place
are one group, while the same type raised elsewhere is another.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import traceback
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeGuard

from envsettings import redact
from sherlock.settings import PROJECT_ROOT

SCHEMA_VERSION = 1
FINGERPRINT_FRAMES = 3
PROJECT_PACKAGES = ("cerebro", "modules", "sherlock")
ID_KEYS = ("request_id", "task_id", "event_id", "error_id")
CONTEXT_KEYS = ("service", "module", "function") + ID_KEYS
MAX_MESSAGE_CHARS = 2000
MAX_TRACEBACK_PIECE_CHARS = 4000
MAX_CONTEXT_VALUE_CHARS = 500
MAX_CONTEXT_KEYS = 30
_NOT_PROJECT_MARKERS = ("site-packages", "dist-packages", f"{os.sep}.venv{os.sep}",
                        f"{os.sep}lib{os.sep}python")
_HOST = socket.gethostname()

# One traceback frame: (module name, function name, filename, lineno).
Frame = tuple[str, str, str, int]


def should_record(exc: object) -> TypeGuard[BaseException]:
    """Whether ``exc`` is an exception Sherlock records.

    Client mistakes (anything flagged ``client_error = True``, such as
    Cerebro's 4xx errors, and HTTP errors with a 4xx status) are not
    exceptions of ours; ``KeyboardInterrupt`` and ``SystemExit`` are not bugs.
    """
    if exc is None or not isinstance(exc, BaseException):
        return False
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        return False
    if getattr(exc, "client_error", False) is True:
        return False
    status = getattr(exc, "status_code", None)
    if type(exc).__name__ == "HTTPError" and isinstance(status, int) and 400 <= status < 500:
        return False
    return True


def type_name(exc_type: type[BaseException]) -> str:
    """``ZeroDivisionError`` for builtins, ``package.module.Class`` otherwise."""
    module = getattr(exc_type, "__module__", "") or ""
    name = getattr(exc_type, "__qualname__", exc_type.__name__)
    return name if module in ("builtins", "__main__", "") else f"{module}.{name}"


@functools.lru_cache(maxsize=4096)
def is_project_frame(module_name: str | None, filename: str) -> bool:
    """A frame belongs to the project when its module is one of the project packages or
    its file lives under the project root outside any virtualenv or site-packages."""
    top = (module_name or "").split(".", 1)[0]
    if top in PROJECT_PACKAGES:
        return True
    try:
        path = str(Path(filename).resolve())
    except (OSError, ValueError):
        return False
    root = str(PROJECT_ROOT) + os.sep
    if not path.startswith(root):
        return False
    inside = path[len(root) - 1:]
    return not any(marker in inside for marker in _NOT_PROJECT_MARKERS)


def frames(exc: BaseException) -> list[Frame]:
    """``(module name, function name, filename, lineno)`` of every frame of ``exc``'s
    traceback, outermost first."""
    result: list[Frame] = []
    for frame, lineno in traceback.walk_tb(getattr(exc, "__traceback__", None)):
        code = frame.f_code
        module = frame.f_globals.get("__name__", "") if frame.f_globals else ""
        result.append((module, getattr(code, "co_qualname", code.co_name),
                       code.co_filename, lineno))
    return result


def innermost_project_frames(exc: BaseException,
                             limit: int = FINGERPRINT_FRAMES) -> list[Frame]:
    """The ``limit`` innermost frames of project code (or of any code when none is ours)."""
    every = frames(exc)
    ours = [f for f in every if is_project_frame(f[0], f[2])]
    return (ours or every)[-limit:]


def fingerprint(exc: BaseException, fallback: str = "") -> str:
    """A short stable hash of ``exc``'s type and its innermost project frames.

    ``fallback`` (such as the logger and function that logged it) stands in for
    the frames when the exception carries no traceback.
    """
    where = [f"{module}:{function}" for module, function, _f, _l in innermost_project_frames(exc)]
    key = "|".join([type_name(type(exc))] + (where or [fallback]))
    return hashlib.sha1(key.encode("utf-8", "replace")).hexdigest()[:16]


def truncate(text: object, limit: int, keep_tail: float = 0.75) -> str:
    """Cut ``text`` to about ``limit`` characters, keeping its head and (mostly) its tail."""
    text = str(text)
    if len(text) <= limit:
        return text
    note = f"\n... [{len(text) - limit} characters truncated by Sherlock] ...\n"
    tail = int(limit * keep_tail)
    head = max(limit - tail, 0)
    return text[:head] + note + text[len(text) - tail:]


def format_traceback(exc: BaseException) -> str:
    """The full traceback of ``exc`` as text, chained causes included.

    Each piece (a frame, an exception line) is bounded on its own, so a huge
    message cannot push the innermost frames out when the record is truncated.
    """
    try:
        pieces = traceback.TracebackException(type(exc), exc, exc.__traceback__).format()
        return "".join(truncate(piece, MAX_TRACEBACK_PIECE_CHARS, 0) for piece in pieces)
    except Exception as failure:  # a broken __str__ must not lose the record
        return f"{type_name(type(exc))}: <traceback unavailable: {failure!r}>"


def _safe_str(value: object, limit: int) -> str:
    """``str(value)`` bounded to ``limit`` characters, never raising."""
    try:
        text = str(value)
    except Exception as failure:
        text = f"<unprintable {type(value).__name__}: {failure!r}>"
    return truncate(text, limit)


def _clean_context(context: Mapping[str, object] | None, secrets: tuple[str, ...] | list[str] = ()
                   ) -> dict[str, bool | int | float | str]:
    """Bounded copy of ``context``: plain JSON scalars kept, everything else as (redacted) text."""
    clean: dict[str, bool | int | float | str] = {}
    for key, value in list((context or {}).items())[:MAX_CONTEXT_KEYS]:
        if value is None:
            continue
        if not isinstance(value, (bool, int, float)):
            value = redact(_safe_str(value, MAX_CONTEXT_VALUE_CHARS), secrets)
        clean[str(key)[:100]] = value
    return clean


def build(exc: BaseException, *, service: str | None = None,
          context: Mapping[str, object] | None = None, log_message: str | None = None,
          logger: str | None = None, origin: str | None = None,
          secrets: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """Build the record for ``exc`` (without its time: the store stamps it when writing).

    ``context`` holds ``service``, ``module``, ``function``, the ids and any extra
    keys; ``service`` is the default when the context names none. When the
    context names no module/function, the innermost project frame supplies them.
    ``origin`` is ``(logger function, pathname:lineno)`` of the log call, if any.
    Passwords inside URLs, and every one of ``secrets``, are masked in the text
    the record keeps (message, log message, context, traceback).
    """
    context = _clean_context(context, secrets)
    inner: list[Frame] | Frame | None  # the innermost frames, then the innermost frame
    inner = innermost_project_frames(exc, 1)
    inner = inner[0] if inner else None
    module = context.pop("module", None) or (inner[0] if inner else None)
    function = context.pop("function", None) or (inner[1] if inner else None)
    record: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "id": uuid.uuid4().hex,
        "service": context.pop("service", None) or service or "unknown",
        "module": module,
        "function": function,
    }
    for key in ID_KEYS:
        record[key] = context.pop(key, None)
    record.update({
        "host": _HOST,
        "pid": os.getpid(),
        "type": type_name(type(exc)),
        "message": redact(_safe_str(exc, MAX_MESSAGE_CHARS), secrets),
        "log_message": (redact(_safe_str(log_message, MAX_MESSAGE_CHARS), secrets)
                        if log_message else None),
        "logger": logger,
        "where": f"{inner[2]}:{inner[3]} in {inner[1]}" if inner else origin,
        "fingerprint": fingerprint(exc, fallback=f"{logger}:{origin}"),
        "context": context,
        "traceback": redact(format_traceback(exc), secrets),
    })
    return record
