"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Tests of node stores over time: idle ones removed once digested, hundreds read in turn.
Tagline: Every pod leaves a room; the detective empties the cold ones and never loses a note.

In Kubernetes or compose a node is named after its pod or container, so each lifetime leaves a
``SHERLOCK_DIR/nodes/<name>/``. The digest removes a node store whose records were all digested
and whose files were not modified for ``SHERLOCK_NODE_RETENTION_DAYS``, never the root store;
a process still writing there recreates it. Stores are read one at a time, so hundreds of them
fit in a small limit of open files.
"""

import json
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest

from sherlock import cli, digest, store as store_module
from sherlock.settings import load_settings
from sherlock.store import Store, iso_utc
from sherlock_helpers import divide, raise_and_capture

DAY = 86400.0
# A process whose soft limit of open files is 64: far fewer than 300 stores' files.
FD_LIMITED = """
import resource
import sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
from sherlock import cli
raise SystemExit(cli.main(sys.argv[1:]))
"""


def node_store(sherlock_dir, node):
    """The store of ``node`` (default sizes), as a process there writes it."""
    return Store(sherlock_dir / "nodes" / node, node=node)


def capture_on(sherlock_dir, node, n, request_id):
    """Record ``divide(n)``'s exception in ``node``'s store."""
    assert raise_and_capture(divide, n, store=node_store(sherlock_dir, node),
                             request_id=request_id)


def age(directory, days):
    """Make ``directory`` and every file in it look last modified ``days`` days ago."""
    when = time.time() - days * DAY
    for path in [*directory.iterdir(), directory]:
        os.utime(path, (when, when))


def marks(sherlock_dir):
    """The digest state's watermarks."""
    return json.loads((sherlock_dir / "digest-state.json").read_text())["watermarks"]


def mailed_ids(message):
    """The request ids of a received digest's samples."""
    text = message.get_body(("plain",)).get_content()
    return sorted(line.split("request_id=")[1] for line in text.splitlines()
                  if "request_id=" in line)


def raw_record(directory, ts, request_id):
    """Append one record stamped ``ts`` to the store file in ``directory``."""
    record = {"ts": ts, "time": iso_utc(ts), "v": 1, "id": uuid.uuid4().hex, "service": "api",
              "type": "ValueError", "message": "m", "fingerprint": "f" * 16, "host": "h",
              "request_id": request_id, "traceback": "ValueError: m"}
    with open(directory / "sherlock.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")


def test_the_retention_setting_defaults_to_seven_days_and_must_be_positive(
        sherlock_dir, monkeypatch):
    """SHERLOCK_NODE_RETENTION_DAYS: 7 by default, any finite number above 0, else refused."""
    assert load_settings().node_retention_days == 7
    monkeypatch.setenv("SHERLOCK_NODE_RETENTION_DAYS", "0.5")
    assert load_settings().node_retention_days == 0.5
    assert ("SHERLOCK_NODE_RETENTION_DAYS", "0.5") in [
        (var, value) for var, value, _help in load_settings().describe()]
    for bad in ("0", "-1", "nan", "inf", "week"):
        monkeypatch.setenv("SHERLOCK_NODE_RETENTION_DAYS", bad)
        with pytest.raises(ValueError, match="^SHERLOCK_NODE_RETENTION_DAYS="):
            load_settings()


def test_a_digested_node_store_idle_for_less_than_the_retention_is_kept(smtp, sherlock_dir):
    """All mailed, files untouched for 6 days of 7: the store and its watermark stay."""
    capture_on(sherlock_dir, "a", 1, "a-1")
    assert digest.run(load_settings())["sent"] is True
    age(sherlock_dir / "nodes" / "a", 6)
    summary = digest.run(load_settings())
    assert summary["removed"] == []
    assert (sherlock_dir / "nodes" / "a" / "sherlock.jsonl").exists()
    assert "nodes/a" in marks(sherlock_dir)


def test_an_old_digested_node_store_is_removed_with_its_watermark(
        smtp, sherlock_dir, capsys):
    """All mailed and idle for 8 days: the digest removes the store and drops its watermark
    (and says so); a recent store beside it stays; nothing is mailed again."""
    capture_on(sherlock_dir, "a", 1, "a-1")
    capture_on(sherlock_dir, "b", 2, "b-1")
    assert digest.run(load_settings())["exceptions"] == 2
    age(sherlock_dir / "nodes" / "a", 8)
    assert cli.main(["digest"]) == 0
    out = capsys.readouterr().out
    assert "sherlock: removed 1 idle node store(s) (all digested, untouched for 7.0 days): a" \
        in out
    assert sorted(os.listdir(sherlock_dir / "nodes")) == ["b"]
    assert set(marks(sherlock_dir)) == {".", "nodes/b"}
    assert len(smtp.messages) == 1


def test_a_shorter_retention_removes_sooner(smtp, sherlock_dir, monkeypatch):
    """SHERLOCK_NODE_RETENTION_DAYS=1: a store idle for 2 days goes, one idle for half a day
    stays."""
    monkeypatch.setenv("SHERLOCK_NODE_RETENTION_DAYS", "1")
    capture_on(sherlock_dir, "a", 1, "a-1")
    capture_on(sherlock_dir, "b", 2, "b-1")
    digest.run(load_settings())
    age(sherlock_dir / "nodes" / "a", 2)
    age(sherlock_dir / "nodes" / "b", 0.5)
    assert digest.run(load_settings())["removed"] == ["nodes/a"]
    assert sorted(os.listdir(sherlock_dir / "nodes")) == ["b"]


def test_an_old_node_store_with_records_not_digested_yet_is_kept_until_they_are(
        smtp, sherlock_dir):
    """Old files holding records no digest mailed yet (a known store with a new record, a store
    the state does not know): this digest mails them and keeps both stores; the next one,
    everything mailed, removes them."""
    capture_on(sherlock_dir, "a", 1, "a-1")
    digest.run(load_settings())
    capture_on(sherlock_dir, "a", 2, "a-2")
    (sherlock_dir / "nodes" / "n").mkdir()
    (sherlock_dir / "nodes" / "n" / ".sherlock.lock").touch()  # as its writer made it
    raw_record(sherlock_dir / "nodes" / "n", time.time() - 9 * DAY, "n-1")
    age(sherlock_dir / "nodes" / "a", 8)
    age(sherlock_dir / "nodes" / "n", 9)
    summary = digest.run(load_settings())
    assert summary["exceptions"] == 2 and summary["removed"] == []
    assert mailed_ids(smtp.messages[1]) == ["a-2", "n-1"]
    assert sorted(os.listdir(sherlock_dir / "nodes")) == ["a", "n"]
    assert {"nodes/a", "nodes/n"} <= set(marks(sherlock_dir))
    summary = digest.run(load_settings())
    assert summary["sent"] is False and summary["removed"] == ["nodes/a", "nodes/n"]
    assert os.listdir(sherlock_dir / "nodes") == []
    assert set(marks(sherlock_dir)) == {"."}


def test_the_root_store_is_never_removed(smtp, sherlock_dir):
    """The root store, all mailed and idle for a month, stays."""
    raise_and_capture(divide, 1, request_id="root-1")
    digest.run(load_settings())
    for name in ("sherlock.jsonl", ".sherlock.lock"):
        when = time.time() - 30 * DAY
        os.utime(sherlock_dir / name, (when, when))
    assert digest.run(load_settings())["removed"] == []
    assert (sherlock_dir / "sherlock.jsonl").exists() and "." in marks(sherlock_dir)


def test_a_node_directory_just_made_is_kept_though_empty(smtp, sherlock_dir):
    """A node that just started (its directory made, no record yet) keeps its store: the
    directory's own time counts."""
    capture_on(sherlock_dir, "a", 1, "a-1")
    digest.run(load_settings())
    (sherlock_dir / "nodes" / "e").mkdir()
    assert digest.run(load_settings())["removed"] == []
    assert (sherlock_dir / "nodes" / "e").is_dir()
    age(sherlock_dir / "nodes" / "e", 8)
    assert digest.run(load_settings())["removed"] == ["nodes/e"]


def test_a_dry_run_removes_nothing(smtp, sherlock_dir):
    """``--dry-run`` only prints: an old, digested store stays."""
    capture_on(sherlock_dir, "a", 1, "a-1")
    digest.run(load_settings())
    age(sherlock_dir / "nodes" / "a", 8)
    digest.run(load_settings(), dry_run=True)
    assert (sherlock_dir / "nodes" / "a" / "sherlock.jsonl").exists()


def test_a_process_still_writing_to_a_removed_node_store_recreates_it(smtp, sherlock_dir):
    """A process of a node whose idle store was removed keeps its Store: its next record
    recreates the directory (0700), lands whole, and the next digest mails it, only it."""
    store = node_store(sherlock_dir, "a")
    assert raise_and_capture(divide, 1, store=store, request_id="before")
    digest.run(load_settings())
    age(store.dir, 8)
    assert digest.run(load_settings())["removed"] == ["nodes/a"]
    assert not store.dir.exists()
    assert raise_and_capture(divide, 2, store=store, request_id="after")
    assert store.dir.stat().st_mode & 0o777 == 0o700
    assert [r["request_id"] for r in store.read()] == ["after"]
    summary = digest.run(load_settings())
    assert summary["exceptions"] == 1 and summary["removed"] == []
    assert mailed_ids(smtp.messages[-1]) == ["after"]
    assert "nodes/a" in marks(sherlock_dir)


def test_a_writer_waiting_for_the_lock_while_the_store_is_removed_writes_to_the_new_one(
        sherlock_dir):
    """A writer blocked on the store's lock while the store is moved away (as the digest
    removes it, under that lock) does not write into the removed store: it sees its lock file
    is gone, recreates the store and writes there."""
    store = node_store(sherlock_dir, "a")
    assert raise_and_capture(divide, 1, store=store, request_id="old")
    removed = sherlock_dir / "nodes" / ".a.removed"
    written = []
    with store_module._Lock(store.lock_path, 5.0):
        writer = threading.Thread(target=lambda: written.append(
            raise_and_capture(divide, 2, store=store, request_id="new")))
        writer.start()
        time.sleep(0.3)  # the writer now waits on the lock
        os.rename(store.dir, removed)
    writer.join(10)
    assert written == [True]
    assert [r["request_id"] for r in store.read()] == ["new"]
    assert [json.loads(line)["request_id"] for line in
            (removed / "sherlock.jsonl").read_text().splitlines()] == ["old"]


def run_limited(*argv):
    """Run ``sherlock *argv`` in a process allowed 64 open files; ``(code, out, err)``."""
    done = subprocess.run([sys.executable, "-c", FD_LIMITED, *argv], env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def test_three_hundred_node_stores_are_read_within_64_open_files(smtp, sherlock_dir):
    """300 node stores (a day of pod restarts): ``sherlock digest``, ``tail`` and ``stats`` in a
    process allowed 64 open files read them all (one store at a time); each record is mailed
    once, and the next digest mails only what each store got since."""
    start = time.time() - 3600
    for n in range(300):
        directory = sherlock_dir / "nodes" / f"pod-{n:03d}"
        directory.mkdir(parents=True)
        raw_record(directory, start + n, f"pod-{n:03d}")
    code, out, err = run_limited("digest")
    assert code == 0 and err == "", err
    assert "Sherlock detected 300 exceptions" in out
    assert len(marks(sherlock_dir)) == 301
    code, out, err = run_limited("tail", "-n", "3", "--json")
    assert code == 0, err
    assert [json.loads(line)["request_id"] for line in out.splitlines()] == [
        "pod-297", "pod-298", "pod-299"]
    code, out, err = run_limited("stats")
    assert code == 0 and out.startswith("300 exception(s) in 1 kind(s)"), err
    for n in range(0, 300, 30):
        raw_record(sherlock_dir / "nodes" / f"pod-{n:03d}", time.time(), f"again-{n:03d}")
    code, out, err = run_limited("digest")
    assert code == 0 and "Sherlock detected 10 exceptions" in out, err
    assert len(smtp.messages) == 2
