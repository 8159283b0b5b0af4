"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The reference profile: what the training inputs and the model's predictions looked like.
Tagline: Know the world the model was trained in, to tell when it has changed.

:func:`build` runs at build time (the shared build helpers call it when a
build sets ``state.reference_inputs`` and ``state.reference_outputs``) and
its JSON is published as ``profile.json`` beside the model. Per field, by the
values it holds:

* numbers: decile bin edges of the training values, the share in each bin,
  mean, standard deviation, min, max and the share missing;
* strings and booleans (categories): the share of each of the most frequent
  (at most :data:`MAX_CATEGORIES`), the rest as ``__other__``;
* lists (e.g. amenities): the share of rows holding each item, and the items'
  distribution;
* identifiers (strings or numbers nearly all distinct, such as a listing id):
  kind ``identifier``, not monitored: an id has no distribution to drift from.

Outputs are profiled the same way, by the result field they are served as
(``{"rent": predictions}``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

VERSION = 1
FILE = "profile.json"
BINS = 10
MAX_CATEGORIES = 100
OTHER = "__other__"


def build(inputs: Any, outputs: Mapping[str, Sequence[object]] | None = None) -> dict[str, Any]:
    """The reference profile of training ``inputs`` (a pandas DataFrame or a list of dicts)
    and of ``outputs`` (result field -> predicted values)."""
    columns = _columns(inputs)
    return {"profile_version": VERSION,
            "rows": max((len(values) for values in columns.values()), default=0),
            "features": {name: field_profile(values) for name, values in columns.items()},
            "outputs": {name: field_profile(list(values))
                        for name, values in (outputs or {}).items()}}


def _columns(inputs: Any) -> dict[str, list[object]]:
    """Column name -> values, from a DataFrame or a list of dicts."""
    if hasattr(inputs, "to_dict") and hasattr(inputs, "columns"):
        return {str(c): list(inputs[c].tolist()) for c in inputs.columns}
    rows = list(inputs)
    names = sorted({key for row in rows for key in row})
    return {name: [row.get(name) for row in rows] for name in names}


def missing(value: object) -> bool:
    """True for a value that is absent: ``None`` or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def kind_of(values: Iterable[object]) -> str:
    """``numeric``, ``categorical`` or ``items`` (lists), by the values present."""
    present = [v for v in values if not missing(v)]
    if present and all(isinstance(v, (list, tuple, set, frozenset)) for v in present):
        return "items"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       for v in present):
        return "numeric"
    return "categorical"


def field_profile(values: Sequence[object]) -> dict[str, Any]:
    """The profile of one field's training values."""
    kind = kind_of(values)
    absent = sum(1 for v in values if missing(v))
    present = [v for v in values if not missing(v)]
    base = {"kind": kind, "count": len(values),
            "missing": absent / len(values) if values else 0.0}
    if kind != "items" and identifier(present):
        return {**base, "kind": "identifier"}
    if kind == "numeric":
        return {**base, **_numeric(sorted(float(v) for v in present))}  # type: ignore[arg-type]
    if kind == "items":
        return {**base, **_items(present)}
    return {**base, **_categorical([str(v) for v in present])}


def identifier(present: Sequence[object]) -> bool:
    """True when at least 100 values are nearly all distinct (over 90 %) and, for numbers,
    all integers: an id, not a measurement."""
    if len(present) < 100:
        return False
    if any(isinstance(v, float) and not float(v).is_integer() for v in present):
        return False
    return len(set(map(str, present))) > 0.9 * len(present)


def _numeric(ordered: list[float]) -> dict[str, Any]:
    """Decile edges, bin shares and summary statistics of sorted numbers."""
    if not ordered:
        return {"edges": [], "shares": [1.0], "mean": None, "std": None, "min": None,
                "max": None}
    n = len(ordered)
    edges = sorted({ordered[min(n - 1, int(n * q / BINS))] for q in range(1, BINS)})
    counts = bin_counts(edges, ordered)
    mean = sum(ordered) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in ordered) / n)
    return {"edges": edges, "shares": [c / n for c in counts], "mean": mean, "std": std,
            "min": ordered[0], "max": ordered[-1]}


def bin_counts(edges: Sequence[float], values: Iterable[float]) -> list[int]:
    """How many values fall in each of the ``len(edges) + 1`` bins (a value equal to an edge
    goes to the bin above it)."""
    from bisect import bisect_right
    counts = [0] * (len(edges) + 1)
    for value in values:
        counts[bisect_right(edges, value)] += 1
    return counts


def _categorical(values: list[str]) -> dict[str, Any]:
    """The shares of the most frequent categories, the rest as :data:`OTHER`."""
    n = len(values) or 1
    counts = Counter(values)
    top = dict(counts.most_common(MAX_CATEGORIES))
    rest = len(values) - sum(top.values())
    shares = {k: c / n for k, c in top.items()}
    if rest:
        shares[OTHER] = rest / n
    return {"shares": shares}


def _items(lists: list[object]) -> dict[str, Any]:
    """The share of rows holding each item, and the items' distribution."""
    rows = len(lists) or 1
    counts: Counter[str] = Counter()
    for items in lists:
        counts.update({str(item) for item in items})  # type: ignore[attr-defined]
    total = sum(counts.values()) or 1
    top = dict(counts.most_common(MAX_CATEGORIES))
    shares = {k: c / total for k, c in top.items()}
    rest = total - sum(top.values())
    if rest:
        shares[OTHER] = rest / total
    return {"shares": shares, "per_row": {k: c / rows for k, c in top.items()},
            "mean_items": total / rows}
