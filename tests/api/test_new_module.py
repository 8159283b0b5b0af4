"""`cerebro new` scaffolds a module that passes lint and a running server serves at once."""

import json
import subprocess
import sys
import time

from support import cerebro_env, published_version_dir


def _cerebro(*args, env):
    """Run the cerebro CLI, returning the completed process."""
    return subprocess.run([sys.executable, "-m", "cerebro", *args], env=env,
                          capture_output=True, text=True)


def _until(predicate, timeout):
    """Poll ``predicate`` until it is true; returns the seconds it took."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "not in time"
        time.sleep(0.05)
    return time.monotonic() - started


def test_new_module_lints_and_is_served_without_a_restart(tmp_path, server_factory):
    """A module folder added while the server runs answers within a reload interval: ping
    before any build, predict 503 model_not_ready while /readyz stays 200 (the node stays in
    rotation; ?module= says why), and predictions after its first build, which publishes
    predict's reference profile for drift monitoring. Removing the folder stops serving it."""
    package = tmp_path / "newmods"
    package.mkdir()
    (package / "__init__.py").write_text('"""Fresh modules package for the test."""\n')
    env = cerebro_env(PYTHONPATH=tmp_path, CEREBRO_MODULES_PACKAGE="newmods",
                      CEREBRO_DATA_VOLUME=tmp_path / "vol", SHERLOCK_DIR=tmp_path / "sh")
    assert _cerebro("new", "first", "--dir", str(package), env=env).returncode == 0
    server = server_factory({"PYTHONPATH": tmp_path, "CEREBRO_MODULES_PACKAGE": "newmods",
                             "CEREBRO_DATA_VOLUME": tmp_path / "vol",
                             "CEREBRO_RELOAD_INTERVAL": "0.2"}, ready=True)
    assert server.post("/v1/demo_model/ping", {})[0] == 404

    staging = tmp_path / "staging" / "newmods"  # the scaffold names its package in imports
    staging.mkdir(parents=True)
    made = _cerebro("new", "demo_model", "--dir", str(staging), env=env)
    assert made.returncode == 0, made.stderr
    (staging / "demo_model").rename(package / "demo_model")  # the folder appears at once
    took = _until(lambda: server.post("/v1/demo_model/ping", {})[0] == 200, 10)
    print(f"new module folder answered on REST after {took:.2f}s (reload interval 0.2s)")
    lint = _cerebro("lint", str(package / "demo_model"), "--modules-dir", str(package), env=env)
    assert lint.returncode == 0, lint.stdout
    assert _cerebro("new", "demo_model", "--dir", str(package), env=env).returncode == 2
    assert "not a valid module name" in _cerebro("new", "Bad-Name", "--dir", str(package),
                                                 env=env).stderr

    code, _, body = server.post("/v1/demo_model/predict", {"x": 2})
    assert code == 503 and body["error"]["type"] == "model_not_ready"
    assert server.get("/readyz")[0] == 200
    code, _, ready = server.get("/readyz?module=demo_model")
    assert code == 503 and "waiting for its first build" in ready["why"]

    built = _cerebro("build", "demo_model", env=env)
    assert built.returncode == 0, built.stderr
    version_dir = published_version_dir(tmp_path / "vol", "demo_model")
    profile = json.loads((version_dir / "profile.json").read_text())
    assert list(profile["features"]) == ["x"] and list(profile["outputs"]) == ["y"]
    for field in (profile["features"]["x"], profile["outputs"]["y"]):
        assert field["kind"] == "numeric" and field["edges"] and field["count"] == 1000
    _until(lambda: server.get("/readyz?module=demo_model")[0] == 200, 20)
    code, _, body = server.post("/v1/demo_model/predict", {"x": 2})
    assert code == 200 and abs(body["y"] - 7.0) < 0.5
    assert server.post("/v1/first/ping", {})[0] == 200

    # a folder copied file by file: expose.py lands before the code it imports, so the first
    # import fails; once the rest arrives the module is imported again and served
    half = package / "half"
    half.mkdir()
    (half / "__init__.py").write_text("")
    (half / "expose.py").write_text('"""Half copied."""\n\nfrom newmods.half.helpers import '
                                    'ANSWER\n\n\ndef answer() -> dict:\n    """The answer."""'
                                    '\n    return {"answer": ANSWER}\n')
    _until(lambda: server.post("/v1/half/answer", {})[0] == 503, 10)
    assert server.get("/readyz")[0] == 200
    (half / "helpers.py").write_text('"""The rest of the copy."""\nANSWER = 42\n')
    _until(lambda: server.post("/v1/half/answer", {})[0] == 200, 10)
    assert server.post("/v1/half/answer", {})[2] == {"answer": 42}

    subprocess.run(["rm", "-rf", str(package / "demo_model")], check=True)
    _until(lambda: server.post("/v1/demo_model/ping", {})[0] == 404, 10)
    assert server.post("/v1/first/ping", {})[0] == 200
