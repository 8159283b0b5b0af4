"""The data volume: atomic publishing, checksums, pruning, and model handles."""

import json

import pytest

from cerebro import volume
from cerebro.errors import ModelNotReady
from cerebro.models import ModelHandle


def test_publish_writes_metadata_and_pointer(tmp_path):
    """A publish writes the artifact, its sha256, metrics and library versions, then the pointer."""
    meta = volume.publish(tmp_path, "m", {"model": {"w": 1}}, metrics={"r2": 0.9},
                          files={"report.md": b"# ok"})
    folder = tmp_path / "m" / "versions" / meta["version"]
    assert json.loads((tmp_path / "m" / "current.json").read_text()) == {"version": meta["version"]}
    assert meta["artifacts"]["model"]["sha256"] == volume.sha256_of(folder / "model.joblib")
    assert meta["metrics"] == {"r2": 0.9} and meta["libraries"]["scikit-learn"]
    assert (folder / "report.md").read_bytes() == b"# ok"
    assert not [p for p in (tmp_path / "m" / "versions").iterdir() if p.name.startswith(".")]


def test_failed_publish_leaves_previous_version_current(tmp_path):
    """An artifact that cannot be saved leaves no half version and the old one current."""
    first = volume.publish(tmp_path, "m", {"model": 1})["version"]
    with pytest.raises(Exception):
        volume.publish(tmp_path, "m", {"model": lambda: None})
    assert volume.current_version(tmp_path, "m") == first
    assert [p.name for p in (tmp_path / "m" / "versions").iterdir()] == [first]


def test_prune_keeps_newest(tmp_path):
    """Only `keep` versions stay."""
    versions = [volume.publish(tmp_path, "m", {"model": i}, keep=2)["version"] for i in range(4)]
    left = sorted(p.name for p in (tmp_path / "m" / "versions").iterdir())
    assert left == versions[-2:]


def test_handle_states_and_swap(tmp_path):
    """A handle goes no_model -> ready, swaps on a new version, keeps serving on a bad one."""
    handle = ModelHandle("m")
    with pytest.raises(ModelNotReady):
        handle.get()
    assert handle.refresh(tmp_path) is False and handle.state == "no_model"
    v1 = volume.publish(tmp_path, "m", {"model": "one"})["version"]
    assert handle.refresh(tmp_path) is True and handle.get() == "one" and handle.version == v1
    assert handle.refresh(tmp_path) is False
    v2 = volume.publish(tmp_path, "m", {"model": "two"})["version"]
    (tmp_path / "m" / "versions" / v2 / "model.joblib").write_bytes(b"garbage")
    with pytest.raises(volume.VolumeError, match="sha256 mismatch"):
        handle.refresh(tmp_path)
    assert handle.get() == "one" and handle.state == "ready" and "sha256" in handle.error
    assert handle.refresh(tmp_path) is False
    volume.publish(tmp_path, "m", {"model": "three"})
    assert handle.refresh(tmp_path) is True and handle.get() == "three" and handle.error is None


def test_prepare_runs_before_a_version_serves_and_a_failing_one_is_refused(tmp_path):
    """``ModelHandle(prepare=...)`` runs on each loaded version (live and candidate) before it
    serves; a version whose prepare raises is refused and the older one keeps serving."""
    prepared = []

    def prepare(obj):
        if obj == "bad":
            raise ValueError("cannot compile")
        prepared.append(obj)

    handle = ModelHandle("m", prepare=prepare)
    volume.publish(tmp_path, "m", {"model": "one"})
    assert handle.refresh(tmp_path) and handle.get() == "one" and prepared == ["one"]
    candidate = volume.publish(tmp_path, "m", {"model": "two"})["version"]  # tried, not live
    assert handle.refresh_candidate(tmp_path, candidate) and prepared == ["one", "two"]
    bad = volume.publish(tmp_path, "m", {"model": "bad"})["version"]
    with pytest.raises(volume.VolumeError, match="preparing the loaded model failed: "
                                                 "ValueError: cannot compile"):
        handle.refresh(tmp_path)
    assert handle.get() == "one" and handle.state == "ready" and bad in handle.error
    assert handle.refresh(tmp_path) is False, "a refused version is not tried again"


def test_unreadable_pointer_is_a_volume_error(tmp_path):
    """A corrupt current.json is reported, not guessed around."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "current.json").write_text("{oops")
    handle = ModelHandle("m")
    with pytest.raises(volume.VolumeError, match="unreadable"):
        handle.refresh(tmp_path)
    assert handle.state == "failed"


def test_error_clears_once_the_pointer_is_readable_again(tmp_path):
    """A corrupt current.json is reported while it lasts; restored to the serving version,
    the handle is ready with no stale error (a rejected newer version keeps its error)."""
    handle = ModelHandle("m")
    v1 = volume.publish(tmp_path, "m", {"model": "one"})["version"]
    assert handle.refresh(tmp_path) is True
    pointer = tmp_path / "m" / "current.json"
    good = pointer.read_text()
    pointer.write_text("{garbage")
    with pytest.raises(volume.VolumeError, match="unreadable"):
        handle.refresh(tmp_path)
    assert handle.get() == "one" and "unreadable" in handle.error
    pointer.write_text(good)
    assert handle.refresh(tmp_path) is False
    assert handle.state == "ready" and handle.error is None and handle.version == v1
