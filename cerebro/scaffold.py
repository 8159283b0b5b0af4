"""
Author:  Cerebro team
Date:    2026-11-24
Subject: ``cerebro new``: scaffold a module that follows the convention and serves at once.
Tagline: Begin where every module begins, already in good shape.
"""

from __future__ import annotations

import keyword
from datetime import date
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from cerebro.registry import RESERVED_NAMES

if TYPE_CHECKING:
    from _typeshed import StrPath

TEMPLATES = Path(__file__).resolve().parent / "templates" / "module"


class ScaffoldError(Exception):
    """The module cannot be created (bad name, or it exists already)."""


def create_module(name: str, modules_dir: StrPath, volume: StrPath | None = None) -> Path:
    """Write ``modules_dir/name`` from the templates; returns its path.

    ``modules_dir`` is the folder of the modules package; its name is the
    package the generated imports use.

    Also creates the module's folder in the data volume when ``volume`` is given.
    """
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise ScaffoldError(f"'{name}' is not a valid module name (a lowercase Python identifier)")
    if name != name.lower():
        raise ScaffoldError(f"'{name}': module names are lowercase (PEP 8)")
    if name in RESERVED_NAMES:
        raise ScaffoldError(f"'{name}' is reserved by the REST API (/v1/{name}); choose another")
    target = Path(modules_dir) / name
    if target.exists():
        raise ScaffoldError(f"{target} exists already")
    values = {"module": name, "package": Path(modules_dir).resolve().name,
              "date": date.today().isoformat()}
    for template in sorted(TEMPLATES.rglob("*.tmpl")):
        out = target / template.relative_to(TEMPLATES).with_suffix("")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(Template(template.read_text(encoding="utf-8")).substitute(values),
                       encoding="utf-8")
    if volume is not None:
        (Path(volume) / name).mkdir(parents=True, exist_ok=True)
    return target
