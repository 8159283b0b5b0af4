"""
Author:  Cerebro team
Date:    2026-11-24
Subject: One call to report an exception with its context, whatever the transport.
Tagline: Errors never pass silently; they pass through here.

Every service reports a failure of ours (never a client's mistake) with
:func:`report`. It logs the exception on the ``cerebro`` logger with a
``cerebro_context`` attribute on the record (service, module, function, ids);
Sherlock's logging handler turns such records into its exception file.
"""

from __future__ import annotations

import logging

log = logging.getLogger("cerebro")

CONTEXT_ATTRIBUTE = "cerebro_context"


def report(exc: BaseException, message: str | None = None, **context: object) -> None:
    """Log ``exc`` with its traceback and context such as ``service``,
    ``module``, ``function`` and ``request_id`` (keys with ``None`` are dropped)."""
    context = {k: v for k, v in context.items() if v is not None}
    where = ".".join(str(context[k]) for k in ("module", "function") if k in context)
    text = message or f"{type(exc).__name__} in {where or 'cerebro'}: {exc}"
    log.error(text, exc_info=(type(exc), exc, exc.__traceback__),
              extra={CONTEXT_ATTRIBUTE: context})
