"""Fixtures shared by every test suite."""

import subprocess
import sys

import pytest

from support import QUICK_BUILD_ARGS, REPO, CerebroServer, cerebro_env, module_names


@pytest.fixture(scope="session", autouse=True)
def _sherlock_in_tmp(tmp_path_factory):
    """Keep Sherlock's files of in-process code out of the repository."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SHERLOCK_DIR", str(tmp_path_factory.mktemp("sherlock")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def built_volume(tmp_path_factory):
    """A data volume with every module of the repository built once (real builds)."""
    root = tmp_path_factory.mktemp("volume")
    for module in module_names():
        script = REPO / "modules" / module / "src" / "build.py"
        subprocess.run([sys.executable, str(script), *QUICK_BUILD_ARGS.get(module, [])],
                       check=True, env=cerebro_env(CEREBRO_DATA_VOLUME=root),
                       stdout=subprocess.DEVNULL)
    return root


@pytest.fixture
def server_factory(tmp_path):
    """Start real `cerebro serve` processes; every one is stopped at teardown."""
    servers = []

    def start(env=None, processes=1, ready=False):
        """Start one server with ``env`` on top of the test environment."""
        env = dict(env or {})
        env.setdefault("CEREBRO_DATA_VOLUME", tmp_path / "volume")
        env.setdefault("SHERLOCK_DIR", tmp_path / "sherlock")
        server = CerebroServer(env, processes, log_path=tmp_path / f"serve-{len(servers)}.log")
        servers.append(server)
        return server.start(ready=ready)

    yield start
    for server in servers:
        server.stop()
