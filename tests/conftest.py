"""Fixtures shared by every test suite, and the run-wide clean-up of several test processes."""

import os
import subprocess
import sys

import pytest

from rabbit import SHARED_URL, reachable
from support import QUICK_BUILD_ARGS, REPO, CerebroServer, cerebro_env, module_names

_SHARED = pytest.StashKey()  # the controller's snapshot of Celery's shared objects


def pytest_sessionstart(session):
    """In the controller of a parallel run (pytest-xdist, ``-n``), note which of Celery's
    shared objects the machine's RabbitMQ has before any test process starts a worker: they
    are restored once every test process is done (a test process restoring them on its own
    would pull them from under another's workers)."""
    if os.environ.get("PYTEST_XDIST_WORKER") or not _parallel(session.config):
        return
    if reachable("127.0.0.1", 5672):
        from cerebro.taskqueue.topology import SharedSnapshot
        session.config.stash[_SHARED] = SharedSnapshot(SHARED_URL)


def pytest_sessionfinish(session):
    """Remove the shared objects the whole parallel run created (see above)."""
    snapshot = session.config.stash.get(_SHARED, None)
    if snapshot is not None:
        snapshot.restore()


def _parallel(config):
    """True when this run spreads its tests over several processes."""
    return bool(getattr(config.option, "numprocesses", None))


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
