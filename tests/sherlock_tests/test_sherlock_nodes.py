"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Tests of the multi-node stores: SHERLOCK_NODE, one watermark per store, one digest for all.
Tagline: Many rooms, one detective, one letter, and no footprint counted twice.

A node named by ``SHERLOCK_NODE`` writes to ``SHERLOCK_DIR/nodes/<node>/``; the digest reads
the root store and every node's, each from its own watermark, and mails each record once.
"""

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest

import sherlock
from sherlock import cli, digest, schedule
from sherlock.settings import load_settings
from sherlock.store import Store, iso_utc, stores
from sherlock_helpers import divide, lookup, raise_and_capture

NODES = ("a", "b", "c")
HOST = socket.gethostname()


def node_settings(monkeypatch, node):
    """Settings of a process on ``node`` ("" for the root store)."""
    monkeypatch.setenv("SHERLOCK_NODE", node)
    return load_settings()


def capture_on(monkeypatch, node, func, arg, **context):
    """Record what ``func(arg)`` raises in ``node``'s store (as a process there would)."""
    store = Store.from_settings(node_settings(monkeypatch, node))
    assert raise_and_capture(func, arg, store=store, **context)
    monkeypatch.setenv("SHERLOCK_NODE", "")


def raw_record(directory, ts, request_id, message="late"):
    """Append a record stamped ``ts`` straight into the store at ``directory`` (a node whose
    clock differs from the digest's)."""
    directory.mkdir(parents=True, exist_ok=True)
    record = {"ts": ts, "time": iso_utc(ts), "v": 1, "id": uuid.uuid4().hex, "service": "api",
              "type": "ValueError", "message": message, "fingerprint": "f" * 16,
              "host": HOST, "request_id": request_id, "traceback": "ValueError: late"}
    with open(directory / "sherlock.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")


def text_of(message):
    """The plain-text part of a received digest."""
    return message.get_body(("plain",)).get_content()


def state(directory):
    """The digest state file's content."""
    return json.loads((directory / "digest-state.json").read_text())


def test_node_setting_sends_records_to_its_own_directory(sherlock_dir, monkeypatch):
    """SHERLOCK_NODE=a writes SHERLOCK_DIR/nodes/a/sherlock.jsonl (with its own lock); empty
    writes SHERLOCK_DIR/sherlock.jsonl as before."""
    monkeypatch.setenv("SHERLOCK_NODE", "a")
    sherlock.install("worker")
    raise_and_capture(divide, 1)
    assert (sherlock_dir / "nodes" / "a" / "sherlock.jsonl").exists()
    assert (sherlock_dir / "nodes" / "a" / ".sherlock.lock").exists()
    assert not (sherlock_dir / "sherlock.jsonl").exists()
    monkeypatch.setenv("SHERLOCK_NODE", "")
    sherlock.install("worker")
    raise_and_capture(divide, 2)
    assert (sherlock_dir / "sherlock.jsonl").exists()
    assert [s.key for s in stores(load_settings())] == [".", "nodes/a"]


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../etc", ".hidden", "a b", "nödé", "-x",
                                  "x" * 65])
def test_a_node_name_that_is_not_one_safe_directory_is_refused(sherlock_dir, monkeypatch, name):
    """SHERLOCK_NODE must be a single path component: anything else fails loudly, named."""
    monkeypatch.setenv("SHERLOCK_NODE", name)
    with pytest.raises(ValueError, match="^SHERLOCK_NODE="):
        load_settings()


def test_one_digest_covers_the_root_and_every_node_exactly_once(
        smtp, sherlock_dir, monkeypatch):
    """Records in the root and in three node stores: one email with all of them, each node
    named; the next run finds nothing; each store has its own watermark in the state."""
    raise_and_capture(lookup, "root-key", request_id="root-1")
    for node in NODES:
        for n in range(2):
            capture_on(monkeypatch, node, divide, n, request_id=f"{node}-{n}")
    summary = digest.run(load_settings())
    assert summary["sent"] and summary["exceptions"] == 7
    [message] = smtp.messages
    text = text_of(message)
    for node in NODES:
        assert f"{HOST} (node {node}) x 2" in text
        assert f"request_id={node}-1" in text
    assert "request_id=root-1" in text
    marks = state(sherlock_dir)["watermarks"]
    assert set(marks) == {".", "nodes/a", "nodes/b", "nodes/c"}
    second = digest.run(load_settings())
    assert second["sent"] is False and second["exceptions"] == 0
    assert len(smtp.messages) == 1


def test_new_records_of_each_store_come_in_the_next_digest_only(smtp, monkeypatch):
    """After a digest, only what each store recorded since is mailed, from every store."""
    for node in NODES:
        capture_on(monkeypatch, node, divide, 1, request_id=f"old-{node}")
    assert digest.run(load_settings())["exceptions"] == 3
    capture_on(monkeypatch, "b", divide, 2, request_id="new-b")
    raise_and_capture(divide, 3, request_id="new-root")
    assert digest.run(load_settings())["exceptions"] == 2
    text = text_of(smtp.messages[1])
    assert "new-b" in text and "new-root" in text and "old-" not in text


def test_a_node_directory_appearing_later_is_read_whole(smtp, sherlock_dir, monkeypatch):
    """A node the state does not know yet (it joined after the last digest) is read from its
    first record, even one stamped before that digest."""
    capture_on(monkeypatch, "a", divide, 1, request_id="a-1")
    digest.run(load_settings())
    before = state(sherlock_dir)["watermark"]
    raw_record(sherlock_dir / "nodes" / "d", before - 60, "d-early")
    capture_on(monkeypatch, "d", divide, 2, request_id="d-now")
    summary = digest.run(load_settings())
    assert summary["exceptions"] == 2
    assert summary["warnings"] == []  # nothing was rotated away: no "missing" warning
    text = text_of(smtp.messages[1])
    assert "request_id=d-early" in text and "request_id=d-now" in text
    assert "a-1" not in text and "Rotation deleted" not in text
    assert "nodes/d" in state(sherlock_dir)["watermarks"]


def test_an_empty_node_directory_gives_no_warning(smtp, sherlock_dir, monkeypatch, capsys):
    """A node directory with nothing in it yet (a node just started), unknown to the state:
    no warning from the digest, its dry run or the command line, and no email."""
    capture_on(monkeypatch, "a", divide, 1, request_id="a-1")
    assert digest.run(load_settings())["warnings"] == []
    (sherlock_dir / "nodes" / "e").mkdir()
    assert digest.run(load_settings(), dry_run=True)["warnings"] == []
    summary = digest.run(load_settings())
    assert summary["warnings"] == [] and summary["sent"] is False
    assert cli.main(["digest"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert len(smtp.messages) == 1


def test_a_new_node_store_that_lost_records_to_rotation_still_warns(
        smtp, sherlock_dir, monkeypatch):
    """A store the state does not know yet whose rotation deleted records: they were never
    digested, so the digest says some are missing."""
    capture_on(monkeypatch, "a", divide, 1, request_id="a-1")
    digest.run(load_settings())
    lost = time.time() - 30
    raw_record(sherlock_dir / "nodes" / "f", time.time(), "f-kept")
    (sherlock_dir / "nodes" / "f" / "rotated-away.json").write_text(
        json.dumps({"through_ts": lost, "through": iso_utc(lost), "files": 1}))
    [warning] = digest.run(load_settings())["warnings"]
    assert warning.startswith(f"Rotation deleted records up to {iso_utc(lost)} in ")
    assert "nodes/f" in warning


def test_a_node_whose_clock_lags_loses_nothing(smtp, sherlock_dir, monkeypatch):
    """A node's watermark follows its own records, not the digest's clock: a record written
    after a digest but stamped earlier than that digest's end (a clock behind) still comes."""
    capture_on(monkeypatch, "a", divide, 1, request_id="a-1")
    digest.run(load_settings())
    end = state(sherlock_dir)["watermark"]
    newest = max(r["ts"] for r in Store(sherlock_dir / "nodes" / "a").read())
    lagging = (newest + end) / 2 if end > newest else newest + 1e-3
    raw_record(sherlock_dir / "nodes" / "a", lagging, "a-lagging")
    summary = digest.run(load_settings())
    assert summary["exceptions"] == 1
    assert "request_id=a-lagging" in text_of(smtp.messages[1])


def test_a_state_file_of_the_single_store_format_is_still_honoured(
        smtp, sherlock_dir, monkeypatch):
    """``{"watermark": T}`` (before nodes existed) is the root store's watermark: older root
    records stay out; node stores it cannot know are read whole; the state gains watermarks."""
    raise_and_capture(divide, 1, request_id="mailed-before")
    time.sleep(0.01)
    cut = time.time()
    time.sleep(0.01)
    raise_and_capture(divide, 2, request_id="root-new")
    capture_on(monkeypatch, "a", divide, 3, request_id="a-new")
    old = {"watermark": cut, "watermark_time": iso_utc(cut), "known": {},
           "last_run": {"at": iso_utc(cut), "sent": True, "subject": "s", "exceptions": 1}}
    (sherlock_dir / "digest-state.json").write_text(json.dumps(old))
    summary = digest.run(load_settings())
    assert summary["exceptions"] == 2
    text = text_of(smtp.messages[0])
    assert "root-new" in text and "a-new" in text and "mailed-before" not in text
    new_state = state(sherlock_dir)
    assert set(new_state["watermarks"]) == {".", "nodes/a"}
    assert new_state["watermark"] > cut and new_state["watermark_time"]


def test_a_malformed_watermarks_entry_is_a_clear_error(sherlock_dir, settings):
    """A state whose watermarks are not numbers fails with one line naming the file."""
    sherlock_dir.mkdir(parents=True, exist_ok=True)
    (sherlock_dir / "digest-state.json").write_text(json.dumps({"watermarks": {".": "x"}}))
    with pytest.raises(digest.DigestError, match="malformed"):
        digest.run(settings, dry_run=True)


def test_stats_and_tail_read_every_store(sherlock_dir, monkeypatch, capsys):
    """``sherlock tail`` merges the stores by time (a node's records tagged ``[node]``);
    ``sherlock stats`` counts them all."""
    raise_and_capture(divide, 1, service="api", request_id="first")
    capture_on(monkeypatch, "b", lookup, "k", service="worker", request_id="second")
    raise_and_capture(divide, 2, service="api", request_id="third")
    capture_on(monkeypatch, "a", divide, 3, service="consumer", request_id="fourth")
    assert cli.main(["tail", "-n", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("request_id=")[1] for line in lines] == ["first", "second", "third",
                                                                "fourth"]
    assert " [b] worker " in lines[1] and " [a] consumer " in lines[3]
    assert "[" not in lines[0].split(" api ")[0]
    assert cli.main(["stats"]) == 0
    assert capsys.readouterr().out.startswith("4 exception(s) in 2 kind(s)")


def test_a_digest_while_another_holds_the_lock_mails_nothing(smtp, settings):
    """The scheduled entry point skips (no error, no email) while another digest runs: that
    one is mailing these records; the command line still refuses loudly."""
    raise_and_capture(divide, 1)
    with digest._DigestLock(settings):
        summary = digest.run_scheduled()
        with pytest.raises(digest.DigestBusy, match="another digest is running"):
            digest.run(settings)
    assert summary["sent"] is False and "another digest is running" in summary["skipped"]
    assert smtp.messages == []
    assert digest.run_scheduled()["sent"] is True


SCHEDULED = ("import json\nfrom sherlock import digest\n"
             "print(json.dumps(digest.run_scheduled()))")


def start_digests(cli_runs, scheduled_runs=0):
    """Start ``cli_runs`` ``sherlock digest`` processes and ``scheduled_runs`` processes calling
    the scheduled entry point, all at once; return them (command line first)."""
    commands = ([[sys.executable, "-m", "sherlock.cli", "digest"]] * cli_runs
                + [[sys.executable, "-c", SCHEDULED]] * scheduled_runs)
    return [subprocess.Popen(command, env=dict(os.environ), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for command in commands]


def finish(runs):
    """``(exit code, stdout, stderr)`` of each process, once it ended."""
    results = []
    for run in runs:
        out, err = run.communicate(timeout=60)
        results.append((run.returncode, out, err))
    return results


def test_digests_started_while_one_runs_mail_each_record_once(
        smtp, sherlock_dir, settings, monkeypatch):
    """While a digest holds the lock, every other start hits it: the command line refuses
    loudly (exit 1, one clear line, no email), the scheduled entry point returns ``skipped``.
    Then three rounds of three real ``sherlock digest`` processes at once: each exits 0 or,
    having lost the race for the lock, 1 saying so; each record reaches the inbox exactly once."""
    for node in NODES:
        capture_on(monkeypatch, node, divide, 0, request_id=f"r0-{node}")
    with digest._DigestLock(settings):
        held = finish(start_digests(3, scheduled_runs=2))
        assert smtp.messages == []
    for code, out, err in held[:3]:
        assert code == 1 and out == "", (code, out, err)
        assert err.startswith("sherlock: error: another digest is running (lock "), err
        assert err.count("\n") == 1
    for code, out, err in held[3:]:
        assert code == 0, (code, out, err)
        summary = json.loads(out)
        assert summary["sent"] is False
        assert "another digest is running" in summary["skipped"]
    assert not (sherlock_dir / "digest-state.json").exists()  # none of them ran a digest

    for round_ in range(3):
        if round_:
            for node in NODES:
                capture_on(monkeypatch, node, divide, round_, request_id=f"r{round_}-{node}")
        results = finish(start_digests(3))
        for code, out, err in results:
            assert code == 0 or (code == 1 and "another digest is running" in err), \
                (code, out, err)
        assert any(code == 0 and out.startswith("sherlock: sent") for code, out, _e in results)
    mailed = [line for message in smtp.messages for line in text_of(message).splitlines()
              if "request_id=r" in line]
    ids = sorted(line.split("request_id=")[1] for line in mailed)
    assert ids == sorted(f"r{r}-{n}" for r in range(3) for n in NODES)


@pytest.mark.parametrize("every, expires", [(2, 2), (3600, 3600), (7200, 3600)])
def test_digest_every_makes_an_interval_entry(sherlock_dir, monkeypatch, every, expires):
    """SHERLOCK_DIGEST_EVERY=N: an interval of N seconds, expiring after min(3600, N)."""
    monkeypatch.setenv("SHERLOCK_DIGEST_EVERY", str(every))
    [value] = schedule.beat_entry(load_settings()).values()
    assert value["schedule"].run_every == timedelta(seconds=every)
    assert value["options"] == {"expires": expires}


def test_digest_every_zero_keeps_the_daily_crontab(sherlock_dir, monkeypatch):
    """The default (0) is today's daily entry at SHERLOCK_DIGEST_AT, expiring after an hour."""
    monkeypatch.setenv("SHERLOCK_DIGEST_AT", "05:30")
    [value] = schedule.beat_entry(load_settings()).values()
    assert value["schedule"].hour == {5} and value["schedule"].minute == {30}
    assert value["options"] == {"expires": 3600}


@pytest.mark.parametrize("value", ["-1", "1.5", "hourly"])
def test_a_bad_digest_every_is_refused(sherlock_dir, monkeypatch, value):
    """SHERLOCK_DIGEST_EVERY is a whole number of seconds, 0 or more."""
    monkeypatch.setenv("SHERLOCK_DIGEST_EVERY", value)
    with pytest.raises(ValueError, match="^SHERLOCK_DIGEST_EVERY="):
        load_settings()
