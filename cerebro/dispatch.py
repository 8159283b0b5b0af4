"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The dispatch core: (module, function, payload) in, JSON-able result or a typed error out.
Tagline: One road from every door to every model.

REST handlers, Celery tasks and Kafka events all come through here, so
validation, error typing and exception reporting happen once. Calling is split
in two so a transport can validate at once and run later:
:meth:`Dispatcher.prepare` resolves and validates (raising only client
errors), :meth:`Dispatcher.run` calls the function.

A module trying a candidate version (shadow or canary, see
:mod:`cerebro.lifecycle`) has a control in ``registry.controls``; its calls
go through it, so every transport follows the same lifecycle. A module with a
monitor (``registry.monitors``, see :mod:`cerebro.monitoring`) has a sample of
its served calls profiled for drift, whatever the transport.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from cerebro import jsonio
from cerebro.errors import CerebroError, InternalError
from cerebro.reporting import report

if TYPE_CHECKING:
    from cerebro.endpoint import Endpoint
    from cerebro.registry import Registry


@dataclass(frozen=True)
class Call:
    """A resolved, validated call, ready to run; ``sticky_key`` keeps a canary sticky."""

    endpoint: Endpoint
    kwargs: dict[str, object]
    sticky_key: str | None = None


class Dispatcher:
    """Resolves endpoints in a :class:`~cerebro.registry.Registry` and calls them."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def prepare(self, module: str, function: str, payload: object,
                sticky_key: str | None = None) -> Call:
        """Resolve ``module.function`` and validate ``payload`` against its inputs.

        ``sticky_key`` (a header, an event's key) sends the same key to the same
        version while a canary runs. Raises :class:`NotFound`,
        :class:`InvalidPayload` or, for a module that failed to import,
        :class:`ModelNotReady`.
        """
        endpoint = self.registry.endpoint(module, function)
        return Call(endpoint, endpoint.schema.validate(payload), sticky_key)

    def run(self, call: Call, *, service: str = "api", request_id: str | None = None,
            **context: object) -> object:
        """Call the function and return its result.

        A :class:`CerebroError` raised by the function passes through (it is
        typed already); anything else is a bug: it is reported with its
        context (``service``, ``request_id`` and any ``task_id=``/``event_id=``
        given) and raised as :class:`InternalError` carrying an error id.
        """
        module = call.endpoint.module
        if call.endpoint.batch is not None or module in self.registry.controls:
            outcome = self.run_batch([call], service=service, request_ids=[request_id],
                                     **context)[0]
            if isinstance(outcome, CerebroError):
                raise outcome
            return outcome
        result = self._call_plain(call, service, request_id, context)
        monitor = self.registry.monitors.get(module)
        if monitor is not None:
            monitor.observe((call,), (result,))
        return result

    def _call_plain(self, call: Call, service: str, request_id: str | None,
                    context: dict[str, object]) -> object:
        """Call a plain (not batched) function once; a bug becomes :class:`InternalError`."""
        try:
            return call.endpoint.func(**call.kwargs)
        except CerebroError:
            raise
        except Exception as exc:
            raise self.bug(exc, call, service, request_id, **context) from exc

    def run_batch(self, calls: Sequence[Call], *, service: str = "api",
                  request_ids: Sequence[str | None] | None = None,
                  **context: object) -> list[object]:
        """Run calls to one endpoint; return one outcome per call, in order.

        An outcome is the call's result or the :class:`CerebroError` it failed
        with. A batch function is called once with every call's inputs; it may
        return an error instance in a row to fail only that row. When the whole
        call fails, every row gets the same error (a bug is reported once, with
        one error id). A plain function is called once per call. While the
        module tries a candidate, its control decides which version serves.
        """
        ids: Sequence[str | None] = request_ids or [None] * len(calls)
        module = calls[0].endpoint.module
        control = self.registry.controls.get(module)
        if control is not None:
            outcomes = control.run(partial(self._run_group, service=service, context=context),
                                   calls, ids)
        else:
            outcomes = self._run_group(calls, ids, service=service, context=context)
        monitor = self.registry.monitors.get(module)
        if monitor is not None:
            monitor.observe(calls, outcomes)
        return outcomes

    def _run_group(self, calls: Sequence[Call], request_ids: Sequence[str | None], *,
                   service: str, context: dict[str, object]) -> list[object]:
        """Run calls to one endpoint on the version being served (see :meth:`run_batch`)."""
        endpoint = calls[0].endpoint
        if endpoint.batch is None:
            outcomes: list[object] = []
            for call, request_id in zip(calls, request_ids):
                try:
                    outcomes.append(self._call_plain(call, service, request_id, context))
                except CerebroError as error:
                    outcomes.append(error)
            return outcomes
        try:
            results = endpoint.func([call.kwargs for call in calls])
            if len(results) != len(calls):
                raise TypeError(f"batch function returned {len(results)} results "
                                f"for {len(calls)} inputs")
            return list(results)
        except CerebroError as error:
            return [error] * len(calls)
        except Exception as exc:
            bug = self.bug(exc, calls[0], service, ",".join(filter(None, request_ids)) or None,
                           batch_size=len(calls), **context)
            return [bug] * len(calls)

    def run_json(self, call: Call, *, service: str = "api", request_id: str | None = None
                 ) -> bytes:
        """Like :meth:`run`, returning the result encoded as JSON bytes."""
        return self.encode(self.run(call, service=service, request_id=request_id),
                           call, service=service, request_id=request_id)

    def encode(self, result: object, call: Call, *, service: str = "api",
               request_id: str | None = None) -> bytes:
        """A result as JSON bytes; a value JSON cannot hold is a bug, reported as such."""
        try:
            return jsonio.dumps(result)
        except TypeError as exc:
            raise self.bug(exc, call, service, request_id) from exc

    @staticmethod
    def bug(exc: BaseException, call: Call, service: str, request_id: str | None,
            **context: object) -> InternalError:
        """Report an unexpected exception of ``call`` (a bug) and wrap it as
        :class:`InternalError`: what every transport does with a bug found after the call."""
        error = InternalError(f"{call.endpoint.key} failed: {type(exc).__name__}")
        # mypy cannot tell that ``context`` never holds report's ``message`` parameter
        report(exc, service=service, module=call.endpoint.module,
               function=call.endpoint.name, request_id=request_id, error_id=error.error_id,
               **context)  # type: ignore[arg-type]
        return error
