"""Rebuilding a model while requests flow: zero failures, the new version shows up."""

import json
import shutil
import subprocess
import sys
import threading
import time

import pytest

from cerebro import modelsign
from support import REPO, TEST_SIGNING_KEY, cerebro_env


@pytest.fixture
def volume(built_volume, tmp_path):
    """A private copy of the built volume (this test rebuilds into it)."""
    target = tmp_path / "vol"
    shutil.copytree(built_volume, target)
    return target


def _example(server):
    """rent_predictor.predict's declared example payload."""
    modules = {m["name"]: m for m in server.get("/v1/modules")[2]["modules"]}
    functions = {f["name"]: f for f in modules["rent_predictor"]["functions"]}
    return functions["predict"]["example"]


def _version(server):
    """The served rent_predictor model version."""
    modules = {m["name"]: m for m in server.get("/v1/modules")[2]["modules"]}
    return modules["rent_predictor"]["models"][0]["version"], modules["rent_predictor"]


def test_rebuild_under_load_loses_no_request(server_factory, volume):
    """Requests in flight during a rebuild and swap all succeed; new version is served."""
    server = server_factory({"CEREBRO_DATA_VOLUME": volume, "CEREBRO_MODULES": "rent_predictor",
                             "CEREBRO_RELOAD_INTERVAL": "0.2"}, ready=True)
    payload = _example(server)
    old, _ = _version(server)
    statuses, versions, stop = [], set(), threading.Event()

    def hammer():
        """Send requests until told to stop, recording every outcome."""
        while not stop.is_set():
            code, _, body = server.post("/v1/rent_predictor/predict", payload)
            statuses.append(code)
            if code == 200:
                versions.add(body["model_version"])

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    subprocess.run([sys.executable, str(REPO / "modules/rent_predictor/src/build.py"),
                    "--rows", "2000"], check=True, stdout=subprocess.DEVNULL,
                   env=cerebro_env(CEREBRO_DATA_VOLUME=volume))
    deadline = time.monotonic() + 20
    while _version(server)[0] == old and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    new, _ = _version(server)
    assert new != old
    assert len(statuses) > 50
    assert set(statuses) == {200}
    assert {old, new} <= versions


def test_corrupt_new_version_leaves_old_serving(server_factory, volume):
    """A published version whose artifact fails its checksum is reported; the old one serves."""
    server = server_factory({"CEREBRO_DATA_VOLUME": volume, "CEREBRO_MODULES": "rent_predictor",
                             "CEREBRO_RELOAD_INTERVAL": "0.2"}, ready=True)
    payload = _example(server)
    old, _ = _version(server)
    base = volume / "rent_predictor"
    bad = base / "versions" / "99990101T000000000Z-bad000"
    shutil.copytree(base / "versions" / old, bad)
    meta = json.loads((bad / "metadata.json").read_text())
    meta["version"] = bad.name   # a properly signed version whose artifact then rots
    (bad / "metadata.json").write_text(json.dumps(meta))
    (bad / "signature.json").write_text(json.dumps(modelsign.sign(meta, TEST_SIGNING_KEY)))
    (bad / "model.joblib").write_bytes(b"not a model")
    (base / "current.json").write_text(json.dumps({"version": bad.name}))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        version, module = _version(server)
        if module["errors"]:
            break
        time.sleep(0.1)
    assert version == old
    assert "sha256 mismatch" in module["errors"][0]
    assert module["status"] == "ready"
    code, _, body = server.post("/v1/rent_predictor/predict", payload)
    assert code == 200 and body["model_version"] == old


def test_a_module_that_cannot_serve_its_model_takes_the_node_out(server_factory, volume):
    """A module that had a model at start-up but cannot load any version (here the only
    version is corrupt) makes /readyz 503 with the reason: this node is not what the fleet
    needs, while the other modules still answer."""
    base = volume / "rent_predictor"
    only = sorted((base / "versions").iterdir())[-1]
    (only / "model.joblib").write_bytes(b"not a model")
    (base / "current.json").write_text(json.dumps({"version": only.name}))
    server = server_factory({"CEREBRO_DATA_VOLUME": volume,
                             "CEREBRO_MODULES": "rent_predictor,vigilante"})
    code, _, ready = server.get("/readyz")
    assert code == 503 and ready["ready"] is False
    assert "cannot serve any version of rent_predictor" in ready["why"]
    assert ready["modules"]["vigilante"]["ready"] is True
    assert server.get("/readyz?module=vigilante")[0] == 200


def test_a_bad_first_build_does_not_take_the_node_out(server_factory, tmp_path):
    """A module with no model at start-up whose first build cannot be loaded (here: published
    unsigned) is that module's problem, not the node's: /readyz stays 200, ?module= says why."""
    from cerebro import volume as data_volume
    vol = tmp_path / "vol"
    server = server_factory({"CEREBRO_DATA_VOLUME": vol, "CEREBRO_MODULES": "rent_predictor",
                             "CEREBRO_RELOAD_INTERVAL": "0.2"})
    assert server.get("/readyz")[0] == 200
    data_volume.publish(vol, "rent_predictor", {"model": {"not": "signed"}}, signing_key=None)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        code, _, ready = server.get("/readyz?module=rent_predictor")
        if "not signed" in ready.get("why", ""):
            break
        time.sleep(0.1)
    assert code == 503 and "not signed" in ready["why"]
    assert server.get("/readyz")[0] == 200
