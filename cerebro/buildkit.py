"""
Author:  Cerebro team
Date:    2026-11-24
Subject: What every module's build.py shares: arguments, staged runs with a progress bar, reports.
Tagline: Every build walks the same road; only the scenery changes.

A module's ``build.py`` keeps its own stages (extract, transform, fit, ...)
and calls these for the rest::

    parser = build_parser("Train X and publish it.", rows=(50_000, 1_000), seed=42)
    state = run_build(MODULE, {"extract": stage_extract, ...}, "pipeline", rows=..., seed=...)
    files = {"report.md": markdown_report(title, {"Metrics": metrics, ...})}

Run as a script, a ``build.py`` first calls :func:`use_project_python`, so
``python modules/<m>/src/build.py`` works with whatever ``python`` the shell
finds (no virtualenv activated): it runs itself again with the project's.
This module imports only the standard library at the top, so that call works
in an interpreter without the project's dependencies.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TypeAlias

    from _typeshed import StrPath

    #: One build stage: ``fn(state)`` fills attributes of the shared state.
    Stage: TypeAlias = Callable[[SimpleNamespace], object]


def use_project_python() -> None:
    """Return at once when the running interpreter has the project installed; otherwise run
    the same command again with the project's virtualenv (``.venv``, or ``CEREBRO_VENV``),
    or, without one, exit 2 naming the exact commands that make it work."""
    root = Path(__file__).resolve().parent.parent
    # installed, not merely found in the source tree (whose cerebro.egg-info would count)
    elsewhere = [p for p in sys.path if Path(p or ".").resolve() != root]
    if any(True for _ in importlib.metadata.distributions(name="cerebro", path=elsewhere)):
        return
    venv = Path(os.environ.get("CEREBRO_VENV") or ".venv")
    venv = venv if venv.is_absolute() else root / venv
    python = venv / "bin" / "python"
    command = " ".join([str(python), *sys.argv])
    if python.is_file() and Path(sys.prefix).resolve() != venv.resolve():
        print(f"build.py: {sys.executable} does not have Cerebro installed; running: {command}",
              file=sys.stderr, flush=True)
        os.execv(python, [str(python), *sys.argv])
    print(f"build.py: {sys.executable} does not have Cerebro installed, and {python} cannot "
          f"run it either: set it up with `bash {root / 'scripts' / 'setup.sh'}`, then run: "
          f"{command}", file=sys.stderr)
    raise SystemExit(2)


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum``."""
    def parse(text: str) -> int:
        """Parse ``text`` as an integer no smaller than the minimum."""
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


def build_parser(description: str, rows: tuple[int, int] | None = None, seed: int = 0,
                 rows_help: str = "rows of training data to generate") -> argparse.ArgumentParser:
    """The common build arguments: ``--rows`` (when ``rows=(default, minimum)``), ``--seed``,
    ``--volume`` and ``--keep``, with defaults shown by ``--help``."""
    from cerebro.settings import load_settings

    settings = load_settings()
    parser = argparse.ArgumentParser(prog="build.py", description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    if rows is not None:
        default, minimum = rows
        parser.add_argument("--rows", type=at_least(minimum), default=default,
                            help=f"{rows_help} (at least {minimum})")
    parser.add_argument("--seed", type=int, default=seed, help="random seed")
    parser.add_argument("--volume", default=str(settings.data_volume),
                        help="data volume root (CEREBRO_DATA_VOLUME)")
    parser.add_argument("--keep", type=int, default=settings.keep_versions,
                        help="model versions to keep in the volume (CEREBRO_KEEP_VERSIONS)")
    return parser


def run_stages(name: str, stages: Mapping[str, Stage], state: SimpleNamespace,
               progress: bool = True) -> SimpleNamespace:
    """Run ``stages`` (an ordered mapping of stage name to ``fn(state)``) with a progress bar
    on stderr; each stage's seconds go into ``state.timings``. Returns ``state``."""
    from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm has no type information

    state.timings = {}
    with tqdm(total=len(stages), desc=name, unit="stage", disable=not progress,
              file=sys.stderr, ncols=100) as bar:
        for stage, step in stages.items():
            bar.set_postfix(stage=stage)
            started = time.perf_counter()
            step(state)
            state.timings[stage] = round(time.perf_counter() - started, 2)
            bar.update(1)
        bar.set_postfix(stage="done")
    return state


def run_build(module: str, stages: Mapping[str, Stage], artifact: str, *, rows: int | None,
              seed: int, volume: StrPath | None = None, keep: int = 5,
              progress: bool = True) -> SimpleNamespace:
    """Run a module's ``stages`` then publish ``state.<artifact>`` as its new model version.

    The stages fill ``state.<artifact>``, ``state.metrics``, ``state.params`` and
    ``state.files`` (report files), and, for drift monitoring,
    ``state.reference_inputs`` (the training inputs as the served function takes
    them: a DataFrame or a list of dicts) with ``state.reference_outputs``
    (``{result field: predicted values}``). A last ``publish`` stage writes the
    reference profile (``profile.json``, see :mod:`cerebro.monitoring.profile`)
    and the rest to the data volume (``volume``, default ``CEREBRO_DATA_VOLUME``)
    and sets ``state.meta``. Returns the state, with ``timings`` per stage.
    """
    from cerebro.settings import load_settings
    from cerebro.volume import publish

    if volume is None:
        volume = load_settings().data_volume
    state = SimpleNamespace(rows=rows, seed=seed, volume=volume, keep=keep)

    def stage_publish(state: SimpleNamespace) -> None:
        """Publish (and sign) the artifact, its metrics and its reports as the current
        version."""
        files = dict(state.files)
        if getattr(state, "reference_inputs", None) is not None:
            import json

            from cerebro.monitoring import profile
            reference = profile.build(state.reference_inputs,
                                      getattr(state, "reference_outputs", None))
            files[profile.FILE] = json.dumps(reference, sort_keys=True).encode()
        state.meta = publish(state.volume, module, {"model": getattr(state, artifact)},
                             metrics=state.metrics, params=state.params, files=files,
                             keep=state.keep)

    return run_stages(module, {**stages, "publish": stage_publish}, state, progress)


def markdown_report(title: str, sections: Mapping[str, Mapping[str, object]],
                    image: str | None = "report.png", caption: str = "build report") -> bytes:
    """A build report as Markdown bytes: a table per ``{section: {item: value}}``, then the plot."""
    lines = [f"# {title}", ""]
    for heading, items in sections.items():
        lines += [f"## {heading}", "", "| item | value |", "|---|---|"]
        lines += [f"| {item} | {format_value(value)} |" for item, value in items.items()]
        lines.append("")
    if image:
        lines += [f"![{caption}]({image})", ""]
    return "\n".join(lines).encode("utf-8")


def format_value(value: object) -> str:
    """One report value as text: floats to 4 decimals (thousands as whole numbers),
    mappings and sequences inline."""
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {format_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value)
