"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Lifecycle commands: versions, pin, unpin, rollback, promote, shadow, canary, compare.
Tagline: Every switch one command away, and every switch on the record.

Each command reads and writes the data volume (``CEREBRO_DATA_VOLUME``); the
running services follow within ``CEREBRO_RELOAD_INTERVAL``. A refused change
(an unknown version, one that is not signed with the stack's key) exits 2 and
changes nothing. ``CEREBRO_OPERATOR`` names who made a change (default
``user@host``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cerebro import jsonio, modelsign, volume
from cerebro.lifecycle import compare as comparing
from cerebro.lifecycle import state as lifecycle
from cerebro.lifecycle.control import read_snapshots
from cerebro.printing import printing

if TYPE_CHECKING:
    from cerebro.printing import Command
    from cerebro.settings import Settings

EXIT_REFUSED = 2


def _module(settings: Settings, name: str) -> str:
    """``name`` when the volume holds a module of that name; else :class:`LifecycleError`."""
    module = volume.safe_name(name, "module", name)
    if not volume.module_dir(settings.data_volume, module).is_dir():
        raise lifecycle.LifecycleError(f"no module named {name!r} in the data volume "
                                       f"{settings.data_volume}")
    return module


def _refusing(command: Command) -> Command:
    """Turn a refused change (:class:`VolumeError`) into a message and exit 2."""
    def run(args: argparse.Namespace, settings: Settings) -> int:
        """Run the command; a refusal is printed, not raised."""
        try:
            return command(args, settings)
        except volume.VolumeError as exc:
            print(f"cerebro {args.command}: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        except OSError as exc:  # a read-only volume, a missing permission
            print(f"cerebro {args.command}: {exc.strerror or exc}"
                  f"{f': {exc.filename}' if exc.filename else ''} (nothing changed; run it "
                  "where the data volume is writable, such as the builder)", file=sys.stderr)
            return EXIT_REFUSED
    run.__doc__ = command.__doc__
    return run


def _key(settings: Settings) -> str | None:
    """The signing key the services check versions with."""
    return modelsign.configured_key(settings)


def _said(entry: dict[str, object] | None) -> int:
    """Print what a change did (its history entry); exit 0."""
    if entry is None:
        print("nothing to do: no candidate")
        return 0
    detail = " ".join(f"{k}={entry[k]}" for k in ("from", "to", "version", "percent")
                      if k in entry)
    print(f"{entry['action']}: {detail} (by {entry['by']} at {entry['at']})")
    return 0


def _cmd_versions(args: argparse.Namespace, settings: Settings) -> int:
    """List the published versions, newest first, with roles and the recent history."""
    root, module = settings.data_volume, _module(settings, args.module)
    infos = lifecycle.versions(root, module)
    history = lifecycle.history(root, module)[-args.history:] if args.history else []
    state = lifecycle.read_state(root, module)
    if args.json:
        print(jsonio.dumps({"module": module, "lifecycle": state.to_json(),
                            "versions": [vars(i) for i in infos],
                            "history": history}).decode())
        return 0
    print(f"{module}: {len(infos)} version(s)"
          + (f"; candidate {state.candidate} in {state.mode}"
             + (f" at {state.percent:g}%" if state.mode == "canary" else "")
             if state.active else ""))
    for info in infos:
        metrics = ", ".join(f"{k}={_short(v)}" for k, v in sorted(info.metrics.items())[:4])
        roles = ",".join(info.roles) or "-"
        print(f"  {info.version:<30} {roles:<18} {info.created_at or '?':<26} "
              f"{(info.sha256 or '?')[:12]:<12} {info.bytes / 1e6:7.2f} MB  "
              f"{info.error or metrics}")
    if history:
        print("history (oldest first):")
        for entry in history:
            extra = f" ({entry['reason']})" if entry.get("reason") else ""
            what = (entry.get("version") if "version" in entry
                    else f"{entry.get('from') or '-'} -> {entry.get('to') or '-'}")
            print(f"  {entry.get('at')}  {entry.get('action')!s:<15} {what}  "
                  f"by {entry.get('by')}{extra}")
    return 0


def _short(value: object) -> str:
    """A metric value, briefly."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)[:20]


def _cmd_pin(args: argparse.Namespace, settings: Settings) -> int:
    """Pin (or unpin) a version so pruning never removes it."""
    module = _module(settings, args.module)
    return _said(lifecycle.pin(settings.data_volume, module, args.version,
                               on=args.command == "pin"))


def _cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    """Make the previous (or the given) version current again."""
    module = _module(settings, args.module)
    return _said(lifecycle.rollback(settings.data_volume, module, args.to, key=_key(settings)))


def _cmd_promote(args: argparse.Namespace, settings: Settings) -> int:
    """Make a version current (ends a shadow or canary of that version)."""
    module = _module(settings, args.module)
    return _said(lifecycle.promote(settings.data_volume, module, args.version,
                                   key=_key(settings)))


def _cmd_candidate(args: argparse.Namespace, settings: Settings) -> int:
    """Start (or, with --off, stop) a shadow or a canary candidate."""
    module = _module(settings, args.module)
    if args.off:
        return _said(lifecycle.stop_candidate(settings.data_volume, module, mode=args.command))
    if not args.version:
        raise lifecycle.LifecycleError(f"name the candidate version (or --off); see "
                                       f"`cerebro versions {module}`")
    percent = getattr(args, "percent", 0.0)
    return _said(lifecycle.start_candidate(settings.data_volume, module, args.version,
                                           args.command, key=_key(settings), percent=percent))


def _cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    """Print how the shadow candidate compares with the live version; write the PNG."""
    root, module = settings.data_volume, _module(settings, args.module)
    state = lifecycle.read_state(root, module)
    version = args.version or state.candidate
    if version is None:
        raise lifecycle.LifecycleError(f"{module} has no candidate; name one with --version")
    version = volume.safe_name(module, "version", version)
    if version not in lifecycle.published(root, module):
        raise lifecycle.LifecycleError(f"{module}: no published version {version!r}")
    since = state.since if version == state.candidate else None
    summary = comparing.merge(read_snapshots(settings, module, version, since))
    summary.update(module=module, candidate=version,
                   current=volume.current_version(root, module))
    if not args.no_plot and summary["pairs"]:
        summary["png"] = str(_plot(args, settings, module, version, summary))
    if args.json:
        print(jsonio.dumps({k: v for k, v in summary.items() if k != "pairs"}).decode())
        return 0
    print(_render(summary))
    return 0


def _plot(args: argparse.Namespace, settings: Settings, module: str, version: str,
          summary: dict[str, Any]) -> Path:
    """Write the PNG (beside the candidate by default); the path written."""
    from cerebro.lifecycle.plot import write_png
    out = Path(args.out) if args.out else (volume.module_dir(settings.data_volume, module)
                                           / "versions" / version / "compare.png")
    title = f"{module}: live {summary['current']} vs candidate {version}"
    return write_png(summary, out, title)


def _render(summary: dict[str, Any]) -> str:
    """The comparison as text."""
    live, cand = summary["live_ms"], summary["candidate_ms"]
    lines = [f"{summary['module']}: candidate {summary['candidate']} against current "
             f"{summary['current']}",
             f"  shadow calls {summary['calls']}, errors {summary['errors']}, dropped "
             f"{summary['dropped']}, compared {summary['compared']}",
             f"  latency ms (per call group)  live p50 {live['p50']} p99 {live['p99']}  "
             f"candidate p50 {cand['p50']} p99 {cand['p99']}"]
    for name, mean in summary["means"].items():
        lines.append(f"  {name:<40} mean {mean:.6g}")
    if summary.get("png"):
        lines.append(f"  plot: {summary['png']}")
    if not summary["calls"]:
        lines.append("  no shadow calls recorded yet (is a shadow running, with traffic?)")
    return "\n".join(lines)


def register(subparsers: Any, settings: Settings, formatter: type) -> None:
    """Add the lifecycle sub-commands."""
    p = subparsers.add_parser("versions", help="a module's model versions and their history",
                              formatter_class=formatter)
    p.add_argument("module")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--history", type=int, default=10, help="recent switches shown (0: none)")
    p.set_defaults(func=printing(_refusing(_cmd_versions)))
    for name, what in (("pin", "pin a version: pruning never removes it"),
                       ("unpin", "unpin a version")):
        p = subparsers.add_parser(name, help=what, formatter_class=formatter)
        p.add_argument("module")
        p.add_argument("version")
        p.set_defaults(func=_refusing(_cmd_pin))
    p = subparsers.add_parser("rollback", help="make the previous (or --to) version current",
                              formatter_class=formatter)
    p.add_argument("module")
    p.add_argument("--to", metavar="VERSION", help="the version (default: the previous one)")
    p.set_defaults(func=_refusing(_cmd_rollback))
    p = subparsers.add_parser("promote", help="make a version current (ends its shadow/canary)",
                              formatter_class=formatter)
    p.add_argument("module")
    p.add_argument("version")
    p.set_defaults(func=_refusing(_cmd_promote))
    p = subparsers.add_parser("shadow", help="run a candidate version on every live call, "
                              "off the hot path", formatter_class=formatter)
    p.add_argument("module")
    p.add_argument("version", nargs="?")
    p.add_argument("--off", action="store_true", help="stop the candidate")
    p.set_defaults(func=_refusing(_cmd_candidate))
    p = subparsers.add_parser("canary", help="route a percent of live calls to a candidate",
                              formatter_class=formatter)
    p.add_argument("module")
    p.add_argument("version", nargs="?")
    p.add_argument("--percent", type=float, default=10.0, help="share of calls, 0-100")
    p.add_argument("--off", action="store_true", help="stop the candidate")
    p.set_defaults(func=_refusing(_cmd_candidate))
    p = subparsers.add_parser("compare", help="shadow candidate vs live: numbers and a PNG",
                              formatter_class=formatter)
    p.add_argument("module")
    p.add_argument("--version", help="a candidate (default: the current candidate)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--out", help="PNG path (default: compare.png beside the candidate)")
    p.add_argument("--no-plot", action="store_true", help="write no PNG")
    p.set_defaults(func=printing(_refusing(_cmd_compare)))
