"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The ``cerebro`` command: serve, build, modules, new, lint, settings.
Tagline: One front door with a sign on every room.

Every sub-command has ``--help`` showing its defaults, which come from the
environment (see ``cerebro settings``). A reader that stops early
(``cerebro settings | head -1``) ends the printing commands (settings, modules,
lint) quietly with exit 141, as a tool killed by SIGPIPE does.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cerebro.printing import printing
from cerebro.settings import PROJECT_ROOT, ConfigurationError, load_settings

if TYPE_CHECKING:
    from cerebro.settings import Settings

_FORMATTER = argparse.ArgumentDefaultsHelpFormatter


def command_modules() -> tuple[str, ...]:
    """Modules adding sub-commands: each program's (the program table names them),
    operations', the model lifecycle's and monitoring's. Each has ``register(subparsers, settings,
    formatter)`` adding parsers whose ``func(args, settings)`` returns an exit code."""
    from cerebro.ops import programs
    return (*programs.command_modules(), "cerebro.ops.cli", "cerebro.lifecycle.cli",
            "cerebro.monitoring.cli")


def _module_root(settings: Settings, name: str) -> Path | None:
    """The folder of module ``name`` in the modules package (``None`` for a name that is not a
    plain module name: a path such as ``../x`` never leads outside the package)."""
    import importlib
    if not name.isidentifier():
        return None
    package = importlib.import_module(settings.modules_package)
    for root in package.__path__:
        if (Path(root) / name / "expose.py").is_file():
            return Path(root) / name
    return None


def _cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    """Run a module's build.py in a fresh interpreter, exactly as a data scientist would."""
    root = _module_root(settings, args.module)
    if root is None:
        print(f"cerebro build: no module named '{args.module}' in {settings.modules_package}/",
              file=sys.stderr)
        return 2
    script = root / "src" / "build.py"
    if not script.is_file():
        print(f"cerebro build: {script} does not exist", file=sys.stderr)
        return 2
    env = dict(os.environ, CEREBRO_DATA_VOLUME=str(settings.data_volume))
    return subprocess.call([sys.executable, str(script), *args.build_args], env=env)


def _cmd_modules(args: argparse.Namespace, settings: Settings) -> int:
    """List every module with its functions, model version and status."""
    import logging

    from cerebro import jsonio
    from cerebro.core import Core
    logging.basicConfig(level=logging.CRITICAL)
    core = Core.start("modules", settings, watch=False, configure_logging=False)
    core.stop()
    described = [m.describe(settings.data_volume) for m in core.registry.modules.values()]
    if args.json:
        print(jsonio.dumps({"modules": described}).decode())
    else:
        for mod in described:
            versions = ", ".join(f"{m['artifact']}={m['version']}" for m in mod["models"]) or "-"
            print(f"{mod['name']:<24} {mod['status']:<9} models: {versions}")
            for fn in mod["functions"]:
                topics = f" topics={','.join(fn['topics'])}" if fn["topics"] else ""
                print(f"    {fn['mode']:<5} {fn['name']}{topics}: {fn['summary']}")
            for error in mod["errors"]:
                print(f"    ERROR {error}")
    broken = [m for m in described if m["status"] in ("broken", "failed")]
    return 1 if broken and args.strict else 0


def _cmd_new(args: argparse.Namespace, settings: Settings) -> int:
    """Scaffold a new module that follows the convention."""
    from cerebro.scaffold import ScaffoldError, create_module
    try:
        path = create_module(args.module, modules_dir=Path(args.dir), volume=settings.data_volume)
    except ScaffoldError as exc:
        print(f"cerebro new: {exc}", file=sys.stderr)
        return 2
    print(f"created {path}\n"
          f"running services pick it up within {settings.reload_interval:g}s "
          "(CEREBRO_RELOAD_INTERVAL), no restart needed; try:\n"
          f"  curl -X POST http://{settings.host}:{settings.port}/v1/{args.module}/ping "
          "-H 'Content-Type: application/json' -d '{}'\n"
          f"its predictions answer 503 model_not_ready until: cerebro build {args.module}")
    return 0


def _cmd_lint(args: argparse.Namespace, settings: Settings) -> int:
    """Check the house conventions; exit 1 when anything is off."""
    from cerebro.lint import lint_paths
    problems = lint_paths([Path(p) for p in args.paths], modules_dir=Path(args.modules_dir))
    for problem in problems:
        print(problem)
    print(f"cerebro lint: {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


def _cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    """Print every setting with its value in force; a secret this environment lacks but
    ``cerebro up`` generated for the programs it runs shows as set, with where it is."""
    from cerebro.ops import secretfile
    generated = secretfile.stored(settings)
    for var, value, text in settings.describe():
        if var in generated:
            value, text = "<set>", (f"{text} [from {generated[var]}, generated by `cerebro up` "
                                    "for the programs it supervises; not in this environment]")
        print(f"{var:<26} {value:<40} {text}")
    return 0


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    """The argument parser; defaults are the settings in force."""
    parser = argparse.ArgumentParser(prog="cerebro", formatter_class=_FORMATTER,
                                     description="Cerebro: scikit-learn models in production.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("build", help="rebuild a module's model (runs its src/build.py)",
                       formatter_class=_FORMATTER)
    p.add_argument("module", help="module name")
    p.add_argument("build_args", nargs=argparse.REMAINDER,
                   help="arguments passed on to build.py (see its --help)")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("modules", help="list modules with status", formatter_class=_FORMATTER)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when a module is broken or its model failed to load")
    p.set_defaults(func=printing(_cmd_modules))

    p = sub.add_parser("new", help="scaffold a new module", formatter_class=_FORMATTER)
    p.add_argument("module", help="module name (a Python identifier)")
    p.add_argument("--dir", default=str(PROJECT_ROOT / settings.modules_package),
                   help="the modules folder")
    p.set_defaults(func=_cmd_new)

    p = sub.add_parser("lint", help="check headers, docstrings and module shape",
                       formatter_class=_FORMATTER)
    p.add_argument("paths", nargs="*",
                   default=[str(PROJECT_ROOT / d) for d in ("cerebro", "envsettings", "modules",
                                                            "sherlock")],
                   help="files or folders to check")
    p.add_argument("--modules-dir", default=str(PROJECT_ROOT / settings.modules_package),
                   help="folder whose sub-folders must have the module shape")
    p.set_defaults(func=printing(_cmd_lint))

    p = sub.add_parser("settings", help="print the settings in force", formatter_class=_FORMATTER)
    p.set_defaults(func=printing(_cmd_settings))

    for name in command_modules():
        importlib.import_module(name).register(sub, settings, _FORMATTER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cerebro`` console script."""
    try:
        settings = load_settings()
    except ValueError as exc:
        print(f"cerebro: {exc}", file=sys.stderr)
        return 2
    args = build_parser(settings).parse_args(argv)
    try:
        return args.func(args, settings)
    except ConfigurationError as exc:
        print(f"cerebro {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
