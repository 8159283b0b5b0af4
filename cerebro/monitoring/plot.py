"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The picture ``cerebro drift`` writes: reference against live for the most drifted fields.
Tagline: Two bars per bin tell the story faster than a table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PANELS = 4


def write_png(found: dict[str, Any], path: Path) -> Path:
    """Bar charts of the reference and live shares of the most drifted fields."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fields = found["fields"][:PANELS] or []
    figure, axes = plt.subplots(1, max(1, len(fields)), figsize=(4.5 * max(1, len(fields)), 4),
                                squeeze=False)
    for ax, field in zip(axes[0], fields):
        labels = [str(label)[:14] for label in field["labels"]]
        positions = range(len(labels))
        ax.bar([p - 0.2 for p in positions], field["reference_shares"], width=0.4,
               label="training")
        ax.bar([p + 0.2 for p in positions], field["live_shares"], width=0.4, label="live")
        ax.set_xticks(list(positions), labels, rotation=60, ha="right", fontsize=7)
        flag = " DRIFT" if field["drifted"] else ""
        ax.set_title(f"{field['field']} ({field['role']}) PSI {field['psi']:.3f}{flag}",
                     fontsize=9)
        ax.legend(fontsize=7)
    figure.suptitle(f"{found['module']} {found['version']}: last {found['window_hours']:g} h, "
                    f"{found['samples']} sampled calls")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
