"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Tests of the exception file: whole lines, rotation, never crashing the caller.
Tagline: Eight hands, one ledger, no torn page.

The exception file: whole lines, rotation without loss, never crashing the caller.
"""

import errno
import json
import multiprocessing
import os

import pytest

from sherlock import store as store_module
from sherlock.record import build
from sherlock.store import Store
from sherlock_helpers import divide, raise_and_capture

PROCESSES = 8
PER_PROCESS = 500


def _record(n=1, **context):
    """A real record of a ZeroDivisionError."""
    try:
        divide(n)
    except ZeroDivisionError as exc:
        return build(exc, service="api", context=context)


def _lines(directory, backups=10):
    """Every line of every record file in ``directory``, oldest first."""
    lines = []
    for path in Store(directory, backups=backups).files():
        lines.extend(path.read_bytes().splitlines())
    return lines


def test_append_and_read_back(tmp_path):
    """Appended records come back in order with their time stamped by the store."""
    store = Store(tmp_path / "s")
    for i in range(5):
        assert store.append(_record(i, request_id=f"r{i}"))
    records = list(store.read())
    assert [r["request_id"] for r in records] == [f"r{i}" for i in range(5)]
    assert all(r["time"].endswith("+00:00") for r in records)
    assert [r["ts"] for r in records] == sorted(r["ts"] for r in records)
    assert list(store.read(since=records[3]["ts"])) == records[3:]


def test_rotation_keeps_every_record(tmp_path):
    """Size rotation renames files; reading follows the backups so nothing is lost."""
    store = Store(tmp_path / "s", max_bytes=8 * 1024, backups=50)
    for i in range(200):
        store.append(_record(i, request_id=str(i)))
    files = store.files()
    assert len(files) > 5
    assert all(p.stat().st_size <= 8 * 1024 for p in files)
    assert [r["request_id"] for r in store.read()] == [str(i) for i in range(200)]


def _writer(directory, worker):
    """One process of the concurrency test: PER_PROCESS records through capture()."""
    store = Store(directory, max_bytes=128 * 1024, backups=80)
    for i in range(PER_PROCESS):
        raise_and_capture(divide, i, store=store, request_id=f"{worker}-{i}")


def test_many_processes_write_whole_lines_and_lose_nothing(tmp_path):
    """8 processes x 500 records with frequent rotation: every line whole, every record there."""
    directory = tmp_path / "s"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(directory, w)) for w in range(PROCESSES)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    lines = _lines(directory, backups=80)
    records = [json.loads(line) for line in lines]  # raises on any torn line
    ids = [r["request_id"] for r in records]
    assert len(ids) == len(set(ids)) == PROCESSES * PER_PROCESS
    assert set(ids) == {f"{w}-{i}" for w in range(PROCESSES) for i in range(PER_PROCESS)}
    stamps = [r["ts"] for r in records]
    assert stamps == sorted(stamps), "records are stamped under the lock, in file order"
    store = Store(directory, max_bytes=128 * 1024, backups=80)
    assert len(store.files()) > 10, "the test should exercise rotation"
    assert all(p.stat().st_size <= 128 * 1024 for p in store.files())


def test_unwritable_directory_reports_on_stderr_and_carries_on(tmp_path, capsys):
    """A directory that cannot be created: one stderr line, no exception, False returned."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = Store(blocker / "sherlock")
    assert store.append(_record()) is False
    err = capsys.readouterr().err
    assert err.startswith("sherlock: could not record ZeroDivisionError")
    assert len(err.strip().splitlines()) == 1


def test_full_disk_reports_on_stderr_and_carries_on(tmp_path, monkeypatch, capsys):
    """ENOSPC from write: stderr says so, the caller carries on."""
    store = Store(tmp_path / "s")
    store.append(_record())

    def full(fd, data):
        """Simulate a full disk."""
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "write", full)
    assert store.append(_record()) is False
    assert "No space left on device" in capsys.readouterr().err


def test_short_write_is_cut_back_so_no_torn_line_remains(tmp_path, monkeypatch, capsys):
    """A partial write (disk filling up mid-line) is truncated away."""
    store = Store(tmp_path / "s")
    store.append(_record(1, request_id="before"))
    real_write = os.write

    def half(fd, data):
        """Write only half of the line, as a nearly full disk may."""
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(store_module.os, "write", half)
    assert store.append(_record(2, request_id="torn")) is False
    monkeypatch.undo()
    store.append(_record(3, request_id="after"))
    lines = _lines(tmp_path / "s")
    assert [json.loads(line)["request_id"] for line in lines] == ["before", "after"]
    assert "short write" in capsys.readouterr().err


def test_stderr_complaints_are_rate_limited(tmp_path, capsys):
    """A failing store does not flood stderr: one line per minute per reason."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = Store(blocker / "sherlock")
    for _ in range(100):
        store.append(_record())
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_unreadable_lines_are_skipped_and_counted(tmp_path):
    """A garbage line (written by hand, say) does not stop the reader."""
    store = Store(tmp_path / "s")
    store.append(_record(1, request_id="a"))
    with open(store.path, "ab") as handle:
        handle.write(b"this is not json\n")
    store.append(_record(2, request_id="b"))
    stats = {}
    assert [r["request_id"] for r in store.read(stats=stats)] == ["a", "b"]
    assert stats["bad_lines"] == 1


@pytest.mark.parametrize("backups", [1, 3])
def test_rotation_is_bounded_and_notes_what_it_deleted(tmp_path, backups):
    """Rotation deletes beyond N backups and remembers the newest deleted record time."""
    store = Store(tmp_path / "s", max_bytes=4 * 1024, backups=backups)
    for i in range(100):
        store.append(_record(i))
    assert len(store.files()) == backups + 1
    assert sum(p.stat().st_size for p in store.files()) <= (backups + 1) * 4 * 1024
    away = store.rotated_away()
    oldest_kept = next(iter(store.read()))["ts"]
    assert away["through_ts"] < oldest_kept


@pytest.mark.parametrize("damage", ["[]", '"text"', "{not json"])
def test_a_damaged_rotated_away_file_never_stops_recording(tmp_path, damage):
    """rotated-away.json that is not a JSON object is read as empty: rotation and recording go
    on (it used to make every append that rotated fail)."""
    store = Store(tmp_path / "s", max_bytes=4 * 1024, backups=1)
    store.dir.mkdir(parents=True, exist_ok=True)
    store.rotated_away_path.write_text(damage)
    for i in range(100):
        assert store.append(_record(i)) is not False
    assert len(store.files()) == 2 and store.rotated_away()["through_ts"]
