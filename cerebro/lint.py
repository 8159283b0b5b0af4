"""
Author:  Cerebro team
Date:    2026-11-24
Subject: ``cerebro lint``: the house conventions, checked.
Tagline: Conventions kept by a machine are conventions kept.

Checks that every Python file opens with the header block (Author, Date,
Subject, Tagline), that every module, class and function has a docstring (dunder methods such
as ``__init__`` are documented by their class, as PEP 257 allows), and
that every module folder has the conventional shape.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import StrPath

HEADER_KEYS = ("Author:", "Date:", "Subject:", "Tagline:")
MODULE_FILES = ("__init__.py", "expose.py", "README.md", "src/__init__.py", "src/extract.py",
                "src/transform.py", "src/model.py", "src/build.py")
SKIP_DIRS = {"__pycache__", ".git", ".venv", "build", "dist"}


def lint_file(path: Path) -> list[str]:
    """Problems of one Python file, as ``path:line: message`` strings."""
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        return [f"{path}:1: cannot parse: {exc}"]
    problems: list[str] = []
    doc = ast.get_docstring(tree, clean=False)
    if doc is None:
        problems.append(f"{path}:1: module has no docstring (house header block)")
    else:
        lines = [line.strip() for line in doc.strip().splitlines()[:8]]
        missing = [k for k in HEADER_KEYS if not any(line.startswith(k) for line in lines)]
        if missing:
            problems.append(f"{path}:1: header block misses {', '.join(missing)}")
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            dunder = node.name.startswith("__") and node.name.endswith("__")
            if ast.get_docstring(node) is None and not dunder:
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                problems.append(f"{path}:{node.lineno}: {kind} '{node.name}' has no docstring")
    return problems


def lint_notebook(path: Path) -> list[str]:
    """Problems of a notebook: it must be valid nbformat 4 JSON with cells."""
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{path}:1: not a valid notebook: {exc}"]
    if not isinstance(notebook, dict) or notebook.get("nbformat", 0) < 4 \
            or not isinstance(notebook.get("cells"), list):
        return [f"{path}:1: not an nbformat 4 notebook with cells"]
    return []


def lint_module_shape(folder: Path) -> list[str]:
    """Problems of one module folder's shape."""
    problems = [f"{folder}: missing {name}" for name in MODULE_FILES
                if not (folder / name).is_file()]
    src = folder / "src"
    if not ((src / "utilities.py").is_file() or (src / "utilities").is_dir()):
        problems.append(f"{folder}: missing src/utilities.py (or a src/utilities/ folder)")
    notebooks = [src / "eda.ipynb"] if (src / "eda.ipynb").is_file() else \
        sorted((src / "eda").glob("*.ipynb")) if (src / "eda").is_dir() else []
    if not notebooks:
        problems.append(f"{folder}: missing src/eda.ipynb (or a src/eda/ folder of notebooks)")
    for notebook in notebooks:
        problems.extend(lint_notebook(notebook))
    return problems


def python_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every .py file under ``paths`` (files are taken as they are; missing ones are skipped,
    :func:`missing_paths` reports them)."""
    for path in paths:
        if path.is_file() and path.suffix == ".py":
            yield path
        elif path.is_dir():
            for child in sorted(path.rglob("*.py")):
                if not SKIP_DIRS.intersection(child.parts):
                    yield child


def missing_paths(paths: Iterable[StrPath]) -> list[str]:
    """A problem for each of ``paths`` that does not exist (a typo must not lint as clean)."""
    return [f"{path}: does not exist" for path in paths if not Path(path).exists()]


def lint_paths(paths: Sequence[Path], modules_dir: StrPath | None = None) -> list[str]:
    """Every problem under ``paths``, plus the shape of each module in ``modules_dir``.

    A path that does not exist is itself a problem.
    """
    problems = missing_paths(paths)
    for path in python_files(paths):
        problems.extend(lint_file(path))
    if modules_dir is not None and Path(modules_dir).is_dir():
        for folder in sorted(Path(modules_dir).iterdir()):
            if folder.is_dir() and folder.name[0] not in "._" and folder.name not in SKIP_DIRS:
                problems.extend(lint_module_shape(folder))
    return problems
