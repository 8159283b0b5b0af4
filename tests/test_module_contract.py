"""The module contract, checked for every module folder in modules/."""

import json
import subprocess
import sys

import pytest

from cerebro.lint import lint_module_shape, lint_paths
from cerebro.core import Core
from cerebro.settings import load_settings
from support import REPO, cerebro_env, module_names

MODULES = module_names()
HEAVY = ("sklearn", "pandas", "matplotlib", "scipy", "joblib")


@pytest.mark.parametrize("name", MODULES)
def test_folder_shape(name):
    """expose.py, README.md and src/ with the conventional files and a valid notebook."""
    assert lint_module_shape(REPO / "modules" / name) == []


@pytest.mark.parametrize("name", MODULES)
def test_headers_and_docstrings(name):
    """Every file has the house header; every module, class and function a docstring."""
    assert lint_paths([REPO / "modules" / name]) == []


@pytest.mark.parametrize("name", MODULES)
def test_importing_expose_is_cheap(name):
    """Importing expose.py pulls in no heavy library and loads no model."""
    code = ("import sys, time, json, cerebro; t = time.perf_counter(); "
            f"import modules.{name}.expose as e; dt = time.perf_counter() - t; "
            f"print(json.dumps([dt, [m for m in {HEAVY!r} if m in sys.modules], "
            "[h.state for h in vars(e).values() if isinstance(h, cerebro.ModelHandle)]]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=cerebro_env(), check=True).stdout
    seconds, heavy, states = json.loads(out)
    assert heavy == []
    assert all(state == "unloaded" for state in states)
    assert seconds < 0.5


@pytest.fixture(scope="module")
def core(built_volume):
    """The core start-up every transport uses, over the built volume, models loaded."""
    settings = load_settings().replace(data_volume=built_volume, modules=())
    return Core.start("test", settings, watch=False, configure_logging=False)


@pytest.fixture(scope="module")
def registry(core):
    """Every module discovered over the built volume, models loaded."""
    return core.registry


@pytest.mark.parametrize("name", MODULES)
def test_build_then_predict_round_trip(name, registry, core):
    """After build.py, the module is ready and each example answers through the dispatcher."""
    module = registry.module(name)
    assert module.status == "ready", module.errors()
    assert module.handles, "a module serves models from the data volume"
    for handle in module.handles:
        meta = handle.metadata
        assert meta["version"] and meta["created_at"] and meta["libraries"]["python"]
        assert all(len(a["sha256"]) == 64 for a in meta["artifacts"].values())
        assert meta["metrics"], "a build records its training metrics"
    examples = [ep for ep in module.endpoints.values() if ep.example is not None]
    assert examples, "declare an example payload on at least one endpoint"
    dispatcher = core.dispatcher
    for ep in examples:
        call = dispatcher.prepare(name, ep.name, ep.example)
        if not ep.external:
            assert json.loads(dispatcher.run_json(call, service="test"))
