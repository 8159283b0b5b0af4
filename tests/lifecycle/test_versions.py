"""Versions in the data volume: listing, pins and pruning, rollback and promote with their
history, candidates, and every refusal (unknown, unsigned or rotten versions) — through the
library and through the real `cerebro` command."""

import json

import pytest

from cerebro import volume
from cerebro.lifecycle import state as lifecycle
from support import TEST_SIGNING_KEY, run_cli
from lifecycle_support import MODULE, current, publish

KEY = TEST_SIGNING_KEY


def test_versions_newest_first_with_roles_and_publish_history(tmp_path):
    """Every publish is a recorded switch; versions list newest first with their roles."""
    a, b, c = (publish(tmp_path, scale=s) for s in (1.0, 2.0, 3.0))
    infos = lifecycle.versions(tmp_path, MODULE)
    assert [i.version for i in infos] == [c, b, a]
    assert infos[0].roles == ["current"] and infos[1].roles == []
    assert infos[0].metrics == {"scale": 3.0} and len(infos[0].sha256) == 64
    assert infos[0].bytes > 0 and infos[0].created_at
    steps = [(e["action"], e["from"], e["to"]) for e in lifecycle.history(tmp_path, MODULE)]
    assert steps == [("publish", None, a), ("publish", a, b), ("publish", b, c)]


def test_pruning_spares_current_candidate_and_pinned(tmp_path):
    """With keep=2, a pinned and a candidate version survive any number of publishes."""
    first = publish(tmp_path, keep=2)
    lifecycle.pin(tmp_path, MODULE, first)
    second = publish(tmp_path, keep=2)
    third = publish(tmp_path, keep=2)
    lifecycle.start_candidate(tmp_path, MODULE, second, "shadow", key=KEY)
    for _ in range(3):
        newest = publish(tmp_path, keep=2)
    left = set(lifecycle.published(tmp_path, MODULE))
    assert {first, second, newest} <= left and third not in left
    assert len(left) == 4  # the newest two, the pinned one, the candidate
    lifecycle.pin(tmp_path, MODULE, first, on=False)
    lifecycle.stop_candidate(tmp_path, MODULE)
    publish(tmp_path, keep=2)
    assert len(lifecycle.published(tmp_path, MODULE)) == 2


def test_rollback_steps_back_and_promote_goes_anywhere(tmp_path):
    """Rollback goes to the version before the current one, again and again (never back
    and forth); promote makes any version current; each switch is in the history."""
    a, b, c = (publish(tmp_path, scale=s) for s in (1.0, 2.0, 3.0))
    assert lifecycle.rollback(tmp_path, MODULE, key=KEY)["to"] == b
    assert current(tmp_path) == b
    assert lifecycle.rollback(tmp_path, MODULE, key=KEY)["to"] == a
    with pytest.raises(lifecycle.LifecycleError, match="no earlier version"):
        lifecycle.rollback(tmp_path, MODULE, key=KEY)
    entry = lifecycle.promote(tmp_path, MODULE, c, key=KEY, by="ana")
    assert (entry["action"], entry["from"], entry["to"], entry["by"]) == ("promote", a, c, "ana")
    assert lifecycle.rollback(tmp_path, MODULE, key=KEY)["to"] == a
    assert lifecycle.rollback(tmp_path, MODULE, to=b, key=KEY)["to"] == b
    actions = [e["action"] for e in lifecycle.history(tmp_path, MODULE)]
    assert actions == ["publish"] * 3 + ["rollback", "rollback", "promote", "rollback",
                                         "rollback"]


def test_refusals_change_nothing(tmp_path):
    """Unknown, unsigned, mis-signed, rotten and current versions are refused; a canary
    needs a percent in (0, 100]."""
    good = publish(tmp_path)
    unsigned = publish(tmp_path, signing_key=None)
    other_key = publish(tmp_path, signing_key="ANOTHER_SIGNING_KEY_123")
    rotten = publish(tmp_path)
    (tmp_path / MODULE / "versions" / rotten / "model.joblib").write_bytes(b"rot")
    lifecycle.promote(tmp_path, MODULE, good, key=KEY)
    before = (tmp_path / MODULE / "current.json").read_text()
    cases = [("nope", "no published version"), ("../x", "not a plain name"),
             (unsigned, "not signed"), (other_key, "another key"), (rotten, "sha256 mismatch"),
             (good, "already the current version")]
    for version, reason in cases:
        with pytest.raises(volume.VolumeError, match=reason):
            lifecycle.promote(tmp_path, MODULE, version, key=KEY)
    with pytest.raises(lifecycle.LifecycleError, match="percent"):
        lifecycle.start_candidate(tmp_path, MODULE, other_key, "canary", key=None, percent=0)
    with pytest.raises(lifecycle.LifecycleError, match="is the current version"):
        lifecycle.start_candidate(tmp_path, MODULE, good, "shadow", key=KEY)
    assert (tmp_path / MODULE / "current.json").read_text() == before
    assert lifecycle.read_state(tmp_path, MODULE) == lifecycle.State()


def test_candidate_start_replace_and_stop(tmp_path):
    """A candidate is set with its mode and percent, replaced, and stopped (recorded)."""
    a, b, c = (publish(tmp_path, scale=s) for s in (1.0, 2.0, 3.0))
    lifecycle.start_candidate(tmp_path, MODULE, a, "shadow", key=KEY)
    lifecycle.start_candidate(tmp_path, MODULE, b, "canary", key=KEY, percent=20)
    state = lifecycle.read_state(tmp_path, MODULE)
    assert (state.candidate, state.mode, state.percent) == (b, "canary", 20.0) and state.active
    assert lifecycle.stop_candidate(tmp_path, MODULE, expected=a) is None  # not that one
    entry = lifecycle.stop_candidate(tmp_path, MODULE, reason="done")
    assert (entry["from"], entry["mode"], entry["reason"]) == (b, "canary", "done")
    assert not lifecycle.read_state(tmp_path, MODULE).active
    lifecycle.start_candidate(tmp_path, MODULE, b, "canary", key=KEY, percent=5)
    assert lifecycle.promote(tmp_path, MODULE, b, key=KEY)["ended"] == "canary"
    assert not lifecycle.read_state(tmp_path, MODULE).active and current(tmp_path) == b
    assert c in lifecycle.published(tmp_path, MODULE)


def test_the_cli(tmp_path):
    """The real commands: versions (text and JSON), rollback, pin, shadow, canary, promote,
    and a refusal that exits 2 with the reason and no traceback."""
    env = {"CEREBRO_DATA_VOLUME": tmp_path, "CEREBRO_OPERATOR": "on-call"}
    a, b = publish(tmp_path, scale=1.0), publish(tmp_path, scale=2.0)
    code, out, _ = run_cli(env, "rollback", MODULE)
    assert code == 0 and f"rollback: from={b} to={a} (by on-call" in out
    assert run_cli(env, "pin", MODULE, b)[0] == 0
    assert run_cli(env, "canary", MODULE, b, "--percent", "25")[0] == 0
    code, out, _ = run_cli(env, "versions", MODULE, "--json")
    listed = json.loads(out)
    assert code == 0 and [v["version"] for v in listed["versions"]] == [b, a]
    assert listed["versions"][0]["roles"] == ["candidate", "pinned"]
    assert listed["lifecycle"]["mode"] == "canary" and listed["lifecycle"]["percent"] == 25.0
    assert [h["action"] for h in listed["history"]][-3:] == ["rollback", "pin", "canary"]
    code, out, _ = run_cli(env, "versions", MODULE)
    assert code == 0 and "candidate " + b in out and "rollback" in out
    code, _, err = run_cli(env, "promote", MODULE, "20990101T000000000Z-nope00")
    assert code == 2 and "no published version" in err and "Traceback" not in err
    code, _, err = run_cli(env, "versions", "nothing_here")
    assert code == 2 and "no module named 'nothing_here'" in err
    code, _, err = run_cli(env, "shadow", MODULE, "--off")  # it is a canary, not a shadow
    assert code == 2 and f"use `cerebro canary {MODULE} --off`" in err
    assert run_cli(env, "unpin", MODULE, a)[0] == 2  # not pinned
    assert run_cli(env, "canary", MODULE, "--off")[0] == 0
    assert not lifecycle.read_state(tmp_path, MODULE).active
    assert run_cli(env, "promote", MODULE, b)[0] == 0 and current(tmp_path) == b
