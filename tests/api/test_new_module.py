"""`cerebro new` scaffolds a module that passes lint and serves at once."""

import subprocess
import sys

from support import cerebro_env


def _cerebro(*args, env):
    """Run the cerebro CLI, returning the completed process."""
    return subprocess.run([sys.executable, "-m", "cerebro", *args], env=env,
                          capture_output=True, text=True)


def test_new_module_lints_serves_and_builds(tmp_path, server_factory):
    """The scaffold is lint-clean, serves ping before any build, and predicts after one."""
    package = tmp_path / "newmods"
    package.mkdir()
    (package / "__init__.py").write_text('"""Fresh modules package for the test."""\n')
    env = cerebro_env(PYTHONPATH=tmp_path, CEREBRO_MODULES_PACKAGE="newmods",
                      CEREBRO_DATA_VOLUME=tmp_path / "vol", SHERLOCK_DIR=tmp_path / "sh")
    made = _cerebro("new", "demo_model", "--dir", str(package), env=env)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "vol" / "demo_model").is_dir()
    lint = _cerebro("lint", str(package / "demo_model"), "--modules-dir", str(package), env=env)
    assert lint.returncode == 0, lint.stdout
    assert _cerebro("new", "demo_model", "--dir", str(package), env=env).returncode == 2
    assert "not a valid module name" in _cerebro("new", "Bad-Name", "--dir", str(package),
                                                 env=env).stderr

    server = server_factory({"PYTHONPATH": tmp_path, "CEREBRO_MODULES_PACKAGE": "newmods",
                             "CEREBRO_DATA_VOLUME": tmp_path / "vol",
                             "CEREBRO_RELOAD_INTERVAL": "0.2"})
    code, _, body = server.post("/v1/demo_model/ping", {})
    assert code == 200 and body["status"] == "ok"
    assert server.post("/v1/demo_model/predict", {"x": 2})[0] == 503

    built = _cerebro("build", "demo_model", env=env)
    assert built.returncode == 0, built.stderr
    server.wait_ready(20)
    code, _, body = server.post("/v1/demo_model/predict", {"x": 2})
    assert code == 200 and abs(body["y"] - 7.0) < 0.5
