"""
Author:  Cerebro team
Date:    2026-11-24
Subject: How an expose function declares its inputs and the transport that serves it.
Tagline: A public function is an endpoint; a decorator says the rest out loud.

Every public function defined in a module's ``expose.py`` is an endpoint,
called with its validated inputs as keyword arguments. Without a decorator its
inputs are read from the signature (annotations ``str``, ``int``, ``float``,
``bool``, ``list``, ``dict``; a default makes a field optional). The
:func:`endpoint` decorator declares the rest explicitly::

    @endpoint(inputs={"bhk": Field(int, minimum=1, maximum=10)})
    def predict(bhk): ...                      # synchronous REST call

    @endpoint(inputs={...}, external=True)
    def enrich(...): ...                       # external network calls: 202 + Celery

    @endpoint(inputs={...}, topics=("listings",), extra="ignore")
    def screen(...): ...                       # handles Kafka topic "listings"

    @endpoint(inputs={...}, batch=Batching(max_size=64))
    def predict(rows): ...                     # takes a list of inputs, returns a list

    @endpoint(inputs={...}, compare=same_class)
    def classify(...): ...                     # how a shadow candidate's answer is compared

A batch function is called with a list of validated input dicts and returns
a list of results in the same order; concurrent requests are gathered into one
call (see :mod:`cerebro.batching`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field as dc_field
from typing import Any, Literal, TypeVar

from cerebro.schema import Field, Schema

#: An expose function: any signature, any (JSON-able) result.
_Func = TypeVar("_Func", bound=Callable[..., Any])
#: How a shadow candidate's answer is compared with the live one: (live, candidate) -> measures
Compare = Callable[[Any, Any], Mapping[str, float]]

ATTRIBUTE = "__cerebro_endpoint__"


@dataclass(frozen=True)
class Batching:
    """How concurrent calls to a batch function are gathered.

    ``max_size``: most inputs in one call. ``max_wait_ms``: how long an idle
    endpoint waits for company before calling with what it has (0: call at
    once; while a call runs, new requests gather for the next one anyway).
    """

    max_size: int = 64
    max_wait_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.max_size < 1 or self.max_wait_ms < 0:
            raise ValueError("Batching needs max_size >= 1 and max_wait_ms >= 0")


@dataclass(frozen=True)
class Declaration:
    """What the :func:`endpoint` decorator records on a function."""

    inputs: Mapping[str, Field] | None = None
    external: bool = False
    topics: tuple[str, ...] = ()
    extra: str = "forbid"
    summary: str = ""
    example: dict[str, object] | None = None
    batch: Batching | None = None
    compare: Compare | None = None


def endpoint(inputs: Mapping[str, Field] | None = None, *, external: bool = False,
             topics: str | Iterable[str] = (), extra: str = "forbid", summary: str = "",
             example: dict[str, object] | None = None,
             batch: Batching | Literal[True] | None = None,
             compare: Compare | None = None) -> Callable[[_Func], _Func]:
    """Declare an expose function's inputs and how it is served.

    ``inputs``: a mapping of field name to :class:`~cerebro.schema.Field`
    (default: read from the signature). ``external=True``: the function makes
    external network calls, so REST answers ``202`` at once and a Celery worker
    runs it. ``topics``: Kafka topics whose events this function handles.
    ``extra``: ``"forbid"`` (undeclared fields are a 400) or ``"ignore"``.
    ``example``: a valid payload, shown in ``/openapi.json`` and called by the
    module contract test. ``batch``: a :class:`Batching` (or ``True`` for the
    defaults) when the function takes a list of inputs. ``compare``:
    ``compare(live, candidate) -> {measure: float}``, how a shadow candidate's
    answer is compared with the live one when the default (numbers by their
    difference, labels by agreement; :mod:`cerebro.lifecycle.compare`) does not
    fit. The function itself is returned unchanged, so it stays a plain callable.
    """
    if isinstance(topics, str):
        topics = (topics,)

    def mark(func: _Func) -> _Func:
        """Attach the declaration to ``func`` and return it unchanged."""
        policy = Batching() if batch is True else batch or None  # False: not batched
        if policy is not None and inputs is None:
            raise TypeError(f"{func.__name__}: a batch function must declare its inputs")
        setattr(func, ATTRIBUTE, Declaration(inputs, bool(external), tuple(topics), extra,
                                             summary, example, policy, compare))
        return func

    return mark


@dataclass
class Endpoint:
    """One servable function of one module, with everything a transport needs."""

    module: str
    name: str
    func: Callable[..., Any]
    schema: Schema
    external: bool = False
    topics: tuple[str, ...] = ()
    summary: str = ""
    description: str = dc_field(default="", repr=False)
    example: dict[str, object] | None = None
    batch: Batching | None = None
    compare: Compare | None = None

    @property
    def key(self) -> str:
        """``module.function``, the endpoint's routing key everywhere."""
        return f"{self.module}.{self.name}"


def build_endpoint(module: str, func: Callable[..., Any]) -> Endpoint:
    """Make an :class:`Endpoint` from a function of ``module``'s expose.py."""
    decl: Declaration = getattr(func, ATTRIBUTE, None) or Declaration()
    fields = decl.inputs if decl.inputs is not None else signature_fields(func)
    doc = inspect.getdoc(func) or ""
    return Endpoint(
        module=module,
        name=func.__name__,
        func=func,
        schema=Schema(fields, extra=decl.extra),
        external=decl.external,
        topics=decl.topics,
        summary=decl.summary or (doc.splitlines()[0] if doc else func.__name__),
        description=doc,
        example=decl.example if decl.example is not None else _default_example(fields),
        batch=decl.batch,
        compare=decl.compare,
    )


def _default_example(fields: Mapping[str, Field]) -> dict[str, object] | None:
    """An example payload when none is declared: ``{}`` if every field is optional."""
    return {} if all(not f.required for f in fields.values()) else None


def signature_fields(func: Callable[..., Any]) -> dict[str, Field]:
    """Read declared inputs from a function's signature annotations.

    A parameter must be annotated with a JSON type; ``*args``/``**kwargs`` are
    not allowed, because every input must be declared.
    """
    fields: dict[str, Field] = {}
    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{func.__name__}: *args/**kwargs cannot be declared inputs")
        annotation = param.annotation
        if isinstance(annotation, str):
            annotation = {"str": str, "int": int, "float": float, "bool": bool,
                          "list": list, "dict": dict}.get(annotation, annotation)
        if annotation is inspect.Parameter.empty:
            raise TypeError(f"{func.__name__}: parameter '{param.name}' needs a type annotation "
                            "or an @endpoint(inputs=...) declaration")
        kwargs = {} if param.default is inspect.Parameter.empty else {"default": param.default}
        fields[param.name] = Field(annotation, **kwargs)
    return fields
