"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Sherlock's files are not world-readable: 0600 files in 0700 directories, any umask.
Tagline: Tracebacks are kept in a locked drawer, whoever set the office rules.

Records carry tracebacks and context, so every file Sherlock writes (the
current and rotated record files, the lock files, rotated-away.json, the
digest state) is 0600 and every directory it creates 0700, whatever the
process's umask; a file or directory of its own left open by an older version
is tightened the next time it is used.
"""

import os
import stat

import pytest

import sherlock
from sherlock import digest
from sherlock.record import build
from sherlock.store import Store, write_json_atomic
from sherlock_helpers import divide


def _mode(path):
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def _record():
    """A real record of a ZeroDivisionError."""
    try:
        divide(1)
    except ZeroDivisionError as exc:
        return build(exc, service="api")


@pytest.fixture(params=[0o000, 0o022, 0o277], ids=["umask-000", "umask-022", "umask-277"])
def umask(request):
    """Run the test under this umask (restored afterwards)."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_store_files_and_directories_are_private(tmp_path, umask):
    """Appending (and rotating) creates the directory tree 0700 and every file 0600."""
    directory = tmp_path / "a" / "sherlock"
    store = Store(directory, max_bytes=4000, backups=2, max_line_bytes=2000)
    for _ in range(40):  # enough lines to rotate past the backups
        assert store.append(_record())
    write_json_atomic(directory / "state.json", {"x": 1})
    os.umask(0o022)
    files = list(directory.iterdir())
    assert {p.name for p in files} >= {"sherlock.jsonl", "sherlock.jsonl.1", "sherlock.jsonl.2",
                                       ".sherlock.lock", "rotated-away.json", "state.json"}
    assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert _mode(directory) == 0o700 and _mode(directory.parent) == 0o700


def test_files_left_open_by_an_older_version_are_tightened(tmp_path):
    """A 0644 record file and lock file of the same owner: made private when next used."""
    directory = tmp_path / "sherlock"
    store = Store(directory)
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    for name in ("sherlock.jsonl", ".sherlock.lock"):
        (directory / name).write_bytes(b"")
        (directory / name).chmod(0o644)
    assert store.append(_record())
    assert _mode(directory / "sherlock.jsonl") == 0o600
    assert _mode(directory / ".sherlock.lock") == 0o600


def test_the_handler_and_the_digest_create_private_files(sherlock_dir, settings, umask):
    """The handler's directory (made at install) and the digest's lock and state files."""
    sherlock.install("api", hook_uncaught=False)
    assert _mode(sherlock_dir) == 0o700
    sherlock_dir.chmod(0o755)
    sherlock.install("api", hook_uncaught=False)
    assert _mode(sherlock_dir) == 0o700
    with digest._DigestLock(settings):
        pass
    digest.save_state(settings, {"through_ts": 1.0})
    os.umask(0o022)
    assert _mode(sherlock_dir / digest.DIGEST_LOCK_NAME) == 0o600
    assert _mode(digest.state_path(settings)) == 0o600
