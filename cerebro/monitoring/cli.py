"""
Author:  Cerebro team
Date:    2026-11-29
Subject: ``cerebro drift <module>``: the drift table, most severe first, and a PNG.
Tagline: One command to ask whether the model's world has changed.

Reads the counts every process of this node wrote (``CEREBRO_STATE_DIR``) and
the version's reference profile (the data volume). Exit 0 when nothing drifted,
1 when a field drifted, 2 for an unknown module or version.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cerebro import jsonio, volume
from cerebro.monitoring import drift
from cerebro.monitoring.policy import DEFAULT
from cerebro.printing import printing

if TYPE_CHECKING:
    from cerebro.settings import Settings


def _cmd_drift(args: argparse.Namespace, settings: Settings) -> int:
    """Print the drift of a module's current (or named) version; write the PNG."""
    try:
        module = volume.safe_name(args.module, "module", args.module)
        version = args.version or volume.current_version(settings.data_volume, module)
        if version is None:
            raise volume.VolumeError(f"no module named {module!r} with a published version in "
                                     f"{settings.data_volume}")
        found = drift.report(Path(settings.data_volume), settings.shared_state_dir, module,
                             version, drift.WINDOWS[args.window], _policy(settings, module))
    except volume.VolumeError as exc:
        print(f"cerebro drift: {exc}", file=sys.stderr)
        return 2
    if found["profile"]:
        found["flagged_since"] = drift.record_flags(settings.shared_state_dir, found)
    if found["profile"] and not args.no_plot and found["samples"]:
        from cerebro.monitoring.plot import write_png
        out = Path(args.out) if args.out else settings.shared_state_dir / "monitoring" / \
            module / version / f"drift-{args.window}.png"
        found["png"] = str(write_png(found, out))
    if args.json:
        print(jsonio.dumps(found).decode())
    else:
        print(render(found))
    return 1 if found["drifted"] else 0


def _policy(settings: Settings, module: str) -> Any:
    """The module's declared Monitoring (its expose.py), or the defaults."""
    from cerebro.registry import Registry
    try:
        registry = Registry.discover(settings)
    except Exception:  # a modules package that does not import: the defaults still work
        return DEFAULT
    mod = registry.modules.get(module)
    return (mod.monitoring if mod is not None else None) or DEFAULT


def render(found: dict[str, Any]) -> str:
    """The report as a table, most severe first."""
    head = (f"{found['module']} {found['version']}: last {found['window_hours']:g} h, "
            f"{found['samples']} sampled calls")
    if not found["profile"]:
        return f"{head}\n  {found['why']}"
    lines = [head + (f" (judged from {found['min_samples']})" if found["samples"] <
                     found["min_samples"] else ""),
             f"  {'field':<16} {'role':<10} {'psi':>7} {'js':>6} {'missing':>8} "
             f"{'outside':>8} {'unseen':>7}  verdict"]
    since = found.get("flagged_since", {})
    for f in found["fields"]:
        verdict = ("DRIFT (" + ", ".join(f["reasons"]) + ")" + (
            f" since {since[f['field']]}" if f["field"] in since else "")) if f["drifted"] \
            else ("ok" if f["judged"] else "too few samples")
        lines.append(f"  {f['field']:<16} {f['role']:<10} {f['psi']:>7.3f} {f['js']:>6.3f} "
                     f"{f['missing']:>8.3f} {f['out_of_range']:>8.3f} {f['unseen']:>7.3f}  "
                     f"{verdict}")
    if found.get("png"):
        lines.append(f"  plot: {found['png']}")
    return "\n".join(lines)


def register(subparsers: Any, settings: Settings, formatter: type) -> None:
    """Add ``cerebro drift``."""
    p = subparsers.add_parser("drift", help="live inputs and predictions against the training "
                              "profile (exit 1 when a field drifted)", formatter_class=formatter)
    p.add_argument("module")
    p.add_argument("--window", choices=sorted(drift.WINDOWS), default="1h")
    p.add_argument("--version", help="a version (default: the current one)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--out", help="PNG path (default: in the state directory)")
    p.add_argument("--no-plot", action="store_true", help="write no PNG")
    p.set_defaults(func=printing(_cmd_drift))
