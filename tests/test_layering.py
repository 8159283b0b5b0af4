"""Layering: no transport imports another, and the core imports no transport. Every transport
(REST, Celery worker, Kafka consumer, pub-sub subscriber) stands on the core alone, so a
capability built in the core holds on all of them and a transport can be added or removed
without touching the others. Only the command line (the composition root) sees them all."""

import ast

import pytest

from support import REPO

CEREBRO = REPO / "cerebro"
TRANSPORTS = ("api", "tasks", "consumer", "pubsub")
# the composition root (`cerebro` command) and operations (which start and watch every program)
ROOTS = ("cli.py", "__main__.py", "ops")


def _imports(path):
    """Every module a file imports (at the top or inside functions)."""
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _package(path):
    """The first folder under cerebro/ of a file ('' for a file directly in cerebro/)."""
    parts = path.relative_to(CEREBRO).parts
    return parts[0] if len(parts) > 1 else ""


def _transport_of(module):
    """The transport a dotted module name belongs to, or None."""
    parts = module.split(".")
    if len(parts) > 1 and parts[0] == "cerebro" and parts[1] in TRANSPORTS:
        return parts[1]
    return None


def _files():
    """Every Python file of the platform except the composition root and operations."""
    return sorted(p for p in CEREBRO.rglob("*.py")
                  if p.relative_to(CEREBRO).parts[0] not in ROOTS)


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_transport_imports_another_and_the_core_imports_none(path):
    """A transport imports only itself and the core; the core imports no transport."""
    own = _package(path)
    own = own if own in TRANSPORTS else None
    foreign = sorted(m for m in _imports(path)
                     if _transport_of(m) is not None and _transport_of(m) != own)
    assert not foreign, f"{path.relative_to(REPO)} imports {foreign}"


def test_every_transport_starts_through_the_core():
    """Each transport builds its registry, dispatcher and reloader with Core.start, never
    itself."""
    for transport in TRANSPORTS:
        text = "".join(p.read_text() for p in (CEREBRO / transport).rglob("*.py"))
        assert "Core.start" in text, transport
        for private in ("Registry.discover(", "Dispatcher(", "PeriodicThread(", "refresh_models("):
            assert private not in text, f"cerebro/{transport} calls {private} itself"


@pytest.mark.parametrize("path", sorted((REPO / "sherlock").rglob("*.py")) +
                         sorted((REPO / "envsettings").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_sherlock_and_the_settings_mechanism_import_nothing_of_the_platform(path):
    """Sherlock (usable on its own) and envsettings (shared by both) never import cerebro."""
    assert not [m for m in _imports(path) if m == "cerebro" or m.startswith("cerebro.")]
