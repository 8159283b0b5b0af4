"""Authentic models: a version must be signed with CEREBRO_MODEL_SIGNING_KEY to be loaded, and no
name read from the volume can point outside its version folder. Nothing is unpickled first."""

import json
import shutil
import time

import pytest

from cerebro import volume
from cerebro.volume import VolumeError
from support import TEST_SIGNING_KEY

KEY = "a-signing-key-for-these-tests-0001"


class Trap:
    """Unpickling this object creates the file named by its path: proof that code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        """Run open(path, 'w') when unpickled."""
        return (open, (self.path, "w"))


def _forge(root, module, obj):
    """Publish ``obj`` unsigned, as an attacker with write access to the volume can."""
    return volume.publish(root, module, {"model": obj}, keep=10, signing_key=None)["version"]


def test_a_signed_version_loads_and_says_which_key(tmp_path):
    """publish(signing_key=) writes signature.json; a reader with the key loads the version."""
    meta = volume.publish(tmp_path, "m", {"model": {"w": 1}}, signing_key=KEY)
    folder = tmp_path / "m" / "versions" / meta["version"]
    signature = json.loads((folder / "signature.json").read_text())
    assert signature["scheme"] == "hmac-sha256" and KEY not in json.dumps(signature)
    obj, _ = volume.load_version(tmp_path, "m", meta["version"], key=KEY)
    assert obj == {"w": 1}


def test_a_forged_version_is_refused_before_it_is_unpickled(tmp_path):
    """An unsigned pickle with a correct sha256, made current: refused, its code never runs."""
    marker = tmp_path / "code-ran"
    version = _forge(tmp_path, "m", Trap(marker))
    assert volume.current_version(tmp_path, "m") == version
    with pytest.raises(VolumeError, match="not signed"):
        volume.load_version(tmp_path, "m", version, key=KEY)
    assert not marker.exists()


def test_another_key_or_changed_metadata_is_refused(tmp_path):
    """Signed with another key: refused, naming key ids only; metadata changed after signing
    (a swapped artifact with its new sha256): refused."""
    meta = volume.publish(tmp_path, "m", {"model": 1}, signing_key="another-key-0123456789abc")
    with pytest.raises(VolumeError, match="another key") as refused:
        volume.load_version(tmp_path, "m", meta["version"], key=KEY)
    assert KEY not in str(refused.value)
    meta = volume.publish(tmp_path, "m", {"model": 2}, signing_key=KEY)
    folder = tmp_path / "m" / "versions" / meta["version"]
    marker = tmp_path / "code-ran"
    forged = volume.publish(tmp_path / "forge", "m", {"model": Trap(marker)}, signing_key=None)
    forged_file = tmp_path / "forge" / "m" / "versions" / forged["version"] / "model.joblib"
    shutil.copy(forged_file, folder / "model.joblib")
    meta["artifacts"]["model"]["sha256"] = volume.sha256_of(folder / "model.joblib")
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(VolumeError, match="does not match"):
        volume.load_version(tmp_path, "m", meta["version"], key=KEY)
    assert not marker.exists()


@pytest.mark.parametrize("version", ["../../etc", "..", ".hidden", "a/b", "", 42, None])
def test_a_version_name_that_is_not_plain_is_refused(tmp_path, version):
    """current.json's version is a folder name, never a path."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "current.json").write_text(json.dumps({"version": version}))
    with pytest.raises(VolumeError, match="not a plain name"):
        volume.current_version(tmp_path, "m")


def test_an_artifact_file_that_is_not_plain_is_refused(tmp_path):
    """metadata.json's file names stay inside the version folder (checked with or without
    a key, before any read)."""
    meta = volume.publish(tmp_path, "m", {"model": 1}, signing_key=None)
    folder = tmp_path / "m" / "versions" / meta["version"]
    meta["artifacts"]["model"]["file"] = "../../../outside.joblib"
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(VolumeError, match="not a plain name"):
        volume.load_version(tmp_path, "m", meta["version"])


def test_a_running_server_refuses_a_forged_version_and_keeps_serving(server_factory,
                                                                     built_volume, tmp_path):
    """The attack of the audit, on a real server: a forged pickle made current is refused and
    reported within a reload, its code never runs, and the signed version keeps serving."""
    vol = tmp_path / "vol"
    shutil.copytree(built_volume, vol)
    server = server_factory({"CEREBRO_DATA_VOLUME": vol, "CEREBRO_MODULES": "rent_predictor",
                             "CEREBRO_RELOAD_INTERVAL": "0.2",
                             "CEREBRO_MODEL_SIGNING_KEY": TEST_SIGNING_KEY}, ready=True)
    modules = server.get("/v1/modules")[2]["modules"]
    served = modules[0]["models"][0]["version"]
    example = modules[0]["functions"][0]["example"]
    marker = tmp_path / "code-ran"
    _forge(vol, "rent_predictor", Trap(marker))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        module = server.get("/v1/modules")[2]["modules"][0]
        if module["errors"]:
            break
        time.sleep(0.1)
    assert "not signed" in module["errors"][0]
    assert module["models"][0]["version"] == served and not marker.exists()
    code, _, body = server.post("/v1/rent_predictor/predict", example)
    assert code == 200 and body["model_version"] == served


def test_published_files_are_not_world_readable(tmp_path):
    """Whatever the umask, a version's files are 0640 and its folders 0750."""
    import os
    previous = os.umask(0o000)
    try:
        meta = volume.publish(tmp_path, "m", {"model": 1}, files={"report.md": b"#"},
                              signing_key=KEY)
    finally:
        os.umask(previous)
    folder = tmp_path / "m" / "versions" / meta["version"]
    for path in [*folder.iterdir(), tmp_path / "m" / "current.json"]:
        assert path.stat().st_mode & 0o777 == 0o640, path
    for path in (folder, folder.parent, folder.parent.parent):
        assert path.stat().st_mode & 0o777 == 0o750, path


def test_a_signed_version_of_another_module_or_version_is_refused(tmp_path):
    """A genuine signed version copied under another module (or version name) is refused:
    the signature covers which module and version it is."""
    meta = volume.publish(tmp_path, "a", {"model": 1}, signing_key=KEY)
    target = tmp_path / "b" / "versions" / meta["version"]
    shutil.copytree(tmp_path / "a" / "versions" / meta["version"], target)
    (tmp_path / "b" / "current.json").write_text(json.dumps({"version": meta["version"]}))
    with pytest.raises(VolumeError, match="signed as a/"):
        volume.load_version(tmp_path, "b", meta["version"], key=KEY)


def test_an_artifact_that_is_not_a_regular_file_is_refused(tmp_path):
    """A FIFO (or a link) in place of an artifact could hand the checksum and the loader
    different bytes: refused before it is read."""
    import os
    meta = volume.publish(tmp_path, "m", {"model": 1}, signing_key=KEY)
    artifact = tmp_path / "m" / "versions" / meta["version"] / "model.joblib"
    artifact.unlink()
    os.mkfifo(artifact)
    with pytest.raises(VolumeError, match="not a regular file"):
        volume.load_version(tmp_path, "m", meta["version"], key=KEY)
    artifact.unlink()
    artifact.symlink_to(tmp_path / "elsewhere.joblib")
    with pytest.raises(VolumeError, match="cannot be opened"):
        volume.load_version(tmp_path, "m", meta["version"], key=KEY)


def test_malformed_metadata_is_a_volume_error(tmp_path):
    """Metadata that is not an object, or an artifact without a checksum, is reported as a
    VolumeError, never an AttributeError that would stop a service."""
    meta = volume.publish(tmp_path, "m", {"model": 1}, signing_key=None)
    path = tmp_path / "m" / "versions" / meta["version"] / "metadata.json"
    for bad in ([1, 2], {"artifacts": {"model": {"file": "model.joblib"}}}, {"artifacts": 3}):
        path.write_text(json.dumps(bad))
        with pytest.raises(VolumeError):
            volume.load_version(tmp_path, "m", meta["version"])


def test_cerebro_up_rebuilds_what_the_stack_key_would_refuse(tmp_path):
    """A stack that gains a signing key (an upgrade) rebuilds the versions its services would
    refuse, instead of timing out on a 503 /readyz."""
    from cerebro.ops.supervise import build_reason
    from cerebro.settings import load_settings
    settings = load_settings({"CEREBRO_DATA_VOLUME": str(tmp_path)})
    assert "no model" in build_reason(settings, "m", KEY)
    volume.publish(tmp_path, "m", {"model": 1}, signing_key=None)
    assert "not signed" in build_reason(settings, "m", KEY)
    assert build_reason(settings, "m", None) is None
    volume.publish(tmp_path, "m", {"model": 1}, signing_key=KEY)
    assert build_reason(settings, "m", KEY) is None
