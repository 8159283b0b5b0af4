"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The picture ``cerebro compare`` writes: live against candidate, and how far apart.
Tagline: One look tells agreement from drift.

Numbers: a scatter of live against candidate answers (the diagonal is perfect
agreement) and a histogram of their differences. Labels: a confusion matrix
of live against candidate labels, and the share of agreement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_png(summary: dict[str, Any], path: Path, title: str) -> Path:
    """Draw the comparison in ``summary`` (from :func:`~cerebro.lifecycle.compare.merge`)
    into a PNG at ``path``; returns the path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pairs = [p for p in summary.get("pairs", []) if isinstance(p, list) and len(p) == 2]
    numeric = [(float(a), float(b)) for a, b in pairs if _number(a) and _number(b)]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    if numeric and len(numeric) * 2 >= len(pairs):
        _scatter(left, right, numeric, summary.get("primary") or "answer")
    else:
        _confusion(left, right, pairs, summary.get("primary") or "label")
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    figure.savefig(tmp, dpi=90, format="png")
    plt.close(figure)
    tmp.chmod(0o640)
    tmp.replace(path)  # a link at ``path`` is replaced, never written through
    return path


def _number(value: object) -> bool:
    """True for an int or a float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scatter(left: Any, right: Any, pairs: list[tuple[float, float]], name: str) -> None:
    """Live vs candidate scatter, and the histogram of candidate minus live."""
    live = [a for a, _ in pairs]
    cand = [b for _, b in pairs]
    left.scatter(live, cand, s=6, alpha=0.5)
    low, high = min(live + cand), max(live + cand)
    left.plot([low, high], [low, high], color="grey", linewidth=1)
    left.set_xlabel(f"live {name}")
    left.set_ylabel(f"candidate {name}")
    left.set_title(f"{len(pairs)} sampled calls")
    right.hist([b - a for a, b in pairs], bins=40)
    right.set_xlabel(f"candidate - live ({name})")
    right.set_ylabel("calls")
    right.set_title("difference")


def _confusion(left: Any, right: Any, pairs: list[list[object]], name: str) -> None:
    """Confusion matrix of live vs candidate labels, and agreement."""
    labels = sorted({str(v) for pair in pairs for v in pair})
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for a, b in pairs:
        matrix[index[str(a)]][index[str(b)]] += 1
    left.imshow(matrix, cmap="Blues")
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            left.text(j, i, str(count), ha="center", va="center")
    left.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    left.set_yticks(range(len(labels)), labels)
    left.set_xlabel(f"candidate {name}")
    left.set_ylabel(f"live {name}")
    same = sum(matrix[i][i] for i in range(len(labels)))
    total = max(1, len(pairs))
    right.bar(["same", "different"], [same / total, 1 - same / total])
    right.set_ylim(0, 1)
    right.set_title(f"agreement over {len(pairs)} sampled calls")
