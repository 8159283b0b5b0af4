"""The module registry's periodic scan: cheap when nothing changed, still sees new folders."""

import importlib
import sys

from cerebro.registry import Registry
from cerebro.settings import load_settings


def _module(package, name):
    """A module folder with one plain endpoint."""
    folder = package / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "expose.py").write_text(f'def hello():\n    """Say hello."""\n    return "{name}"\n')


def test_a_scan_with_nothing_new_leaves_the_import_caches_alone(tmp_path, monkeypatch):
    """``importlib.invalidate_caches`` walks every cached import path (about 10 ms in a
    service, every reload interval, in every process): a scan calls it only before it
    imports, and a folder added later is still found and served."""
    package = tmp_path / "scanned_modules"
    package.mkdir()
    (package / "__init__.py").write_text("")
    _module(package, "alpha")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CEREBRO_MODULES_PACKAGE", "scanned_modules")
    monkeypatch.delenv("CEREBRO_MODULES", raising=False)
    calls = []
    real = importlib.invalidate_caches
    monkeypatch.setattr(importlib, "invalidate_caches", lambda: calls.append(1) or real())
    try:
        registry = Registry.discover(load_settings())
        assert list(registry.modules) == ["alpha"] and len(calls) == 1
        for _ in range(5):
            assert registry.scan() == ([], [])
        assert len(calls) == 1, "scans that import nothing must not invalidate the caches"
        _module(package, "beta")
        assert registry.scan() == (["beta"], [])
        assert len(calls) == 2 and registry.modules["beta"].import_error is None
    finally:
        for name in [m for m in sys.modules if m.startswith("scanned_modules")]:
            del sys.modules[name]
