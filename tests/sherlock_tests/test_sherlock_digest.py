"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Tests of the digest over a real SMTP server: subject, parts, watermark, storms.
Tagline: The letter arrives once, whole, and in time.

The digest over a real SMTP server: subject, parts, grouping, watermark, failures, storms.
"""

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

import sherlock
from sherlock import cli, digest
from sherlock.settings import load_settings
from sherlock.store import Store
from sherlock_helpers import (RECIPIENTS, SMTPServer, divide, divide_elsewhere, lookup,
                              raise_and_capture, raise_and_log)


SUBJECT_DAY = datetime(2017, 10, 9, 7, 0, tzinfo=timezone.utc)
REPO = Path(__file__).resolve().parents[2]


def parts(message):
    """``(text, html)`` bodies of a received multipart/alternative message."""
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text, html


def state(directory):
    """The digest state file's content, or ``None``."""
    path = directory / "digest-state.json"
    return json.loads(path.read_text()) if path.exists() else None


def test_digest_email_subject_parts_groups_and_tracebacks(smtp, settings):
    """9 exceptions of 3 kinds -> one email, exact subject, both parts, counts, tracebacks."""
    for n in range(5):
        raise_and_capture(divide, n, service="api", module="boom", function="explode",
                          request_id=f"req-{n}", error_id=f"err-{n}")
    for key in ("a", "b", "c"):
        raise_and_capture(lookup, key, service="worker", module="rent", function="predict",
                          task_id=f"task-{key}")
    raise_and_capture(divide_elsewhere, 1, service="consumer", module="score",
                      function="on_event", event_id="ev-1")

    summary = digest.run(settings, now=SUBJECT_DAY)

    assert summary["sent"] and summary["exceptions"] == 9 and summary["kinds"] == 3
    [message] = smtp.messages
    assert message["Subject"] == \
        "Sherlock detected 9 exceptions in Falcon in last 24.0 hours on 2017-10-09"
    assert message["From"] == "sherlock@falcon.example"
    assert sorted(smtp.inbox.envelopes[0][1]) == sorted(RECIPIENTS)
    text, html = parts(message)
    # most frequent first, with counts, places, ids and the traceback of each kind
    assert text.index("[1] 5 x ZeroDivisionError") < text.index("[2] 3 x KeyError") \
        < text.index("[3] 1 x ZeroDivisionError")
    assert "Modules:     boom.explode" in text and "rent.predict" in text
    assert "request_id=req-4 error_id=err-4" in text and "task_id=task-c" in text
    assert "event_id=ev-1" in text
    assert re.search(r"line \d+, in divide\r?\n", text) and "in divide_elsewhere" in text
    assert "in lookup" in text and "KeyError: 'c'" in text
    assert "api, consumer, worker" in text
    assert "<strong>5</strong>" in html and "<strong>3</strong>" in html
    assert "ZeroDivisionError: division by zero" in html
    assert "KeyError: &#39;c&#39;" in html  # escaped
    assert "Sherlock detected 9 exceptions in Falcon" in html


def test_subject_uses_project_and_hours_settings(smtp, monkeypatch):
    """SHERLOCK_PROJECT and --hours shape the subject; hours always as a float."""
    monkeypatch.setenv("SHERLOCK_PROJECT", "Cerebro")
    raise_and_capture(divide, 1)
    settings = load_settings()
    digest.run(settings, hours=12, now=SUBJECT_DAY)
    assert smtp.messages[0]["Subject"] == \
        "Sherlock detected 1 exceptions in Cerebro in last 12.0 hours on 2017-10-09"


def test_html_part_escapes_messages(smtp, settings):
    """A message with markup is escaped in the HTML part."""
    try:
        raise ValueError("<script>alert(1)</script>")
    except ValueError as exc:
        sherlock.capture(exc)
    digest.run(settings)
    _text, html = parts(smtp.messages[0])
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_running_twice_sends_only_what_is_new(smtp, settings):
    """Second run: only records since the first; a third run with nothing sends nothing."""
    for n in range(3):
        raise_and_capture(divide, n, request_id=f"old-{n}")
    raise_and_capture(lookup, "old")
    assert digest.run(settings)["exceptions"] == 4

    raise_and_capture(divide, 9, request_id="new-1")
    raise_and_capture(divide_elsewhere, 9, request_id="new-2")
    assert digest.run(settings)["exceptions"] == 2

    third = digest.run(settings)
    assert third["sent"] is False and third["exceptions"] == 0
    assert len(smtp.messages) == 2
    text, _html = parts(smtp.messages[1])
    assert smtp.messages[1]["Subject"].startswith("Sherlock detected 2 exceptions")
    assert "new-1" in text and "new-2" in text
    assert "old-" not in text and "KeyError" not in text
    headings = [line for line in text.splitlines() if line.startswith("[")]
    assert headings == ["[1] 1 x ZeroDivisionError  (NEW)",  # divide_elsewhere: newest first
                        "[2] 1 x ZeroDivisionError"]  # divide: mailed yesterday already


def test_all_clear_setting_sends_an_empty_digest(smtp, monkeypatch):
    """With SHERLOCK_ALL_CLEAR, a quiet day still gets its email (0 exceptions)."""
    monkeypatch.setenv("SHERLOCK_ALL_CLEAR", "true")
    summary = digest.run(load_settings(), now=SUBJECT_DAY)
    assert summary["sent"]
    [message] = smtp.messages
    assert message["Subject"] == \
        "Sherlock detected 0 exceptions in Falcon in last 24.0 hours on 2017-10-09"
    assert "All clear" in parts(message)[0]


def test_dry_run_prints_and_neither_sends_nor_moves_the_watermark(smtp, sherlock_dir, capsys):
    """--dry-run prints the digest; the real run afterwards still sends everything."""
    raise_and_capture(divide, 1, request_id="r-1")
    assert cli.main(["digest", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Subject: Sherlock detected 1 exceptions in Falcon in last 24.0 hours on " in out
    assert "request_id=r-1" in out and "Traceback" in out
    assert cli.main(["digest", "--dry-run", "--html"]) == 0
    assert "<pre" in capsys.readouterr().out
    assert smtp.messages == [] and state(sherlock_dir) is None
    assert cli.main(["digest"]) == 0
    assert "sent \"Sherlock detected 1 exceptions" in capsys.readouterr().out
    assert len(smtp.messages) == 1


def test_smtp_down_fails_keeps_the_watermark_and_the_next_run_sends_all(
        sherlock_dir, settings, capsys):
    """No SMTP server: exit 1 with one line; nothing lost; the next run sends it all."""
    raise_and_capture(divide, 1, request_id="first")
    server = SMTPServer(settings.port).start()
    try:
        assert cli.main(["digest"]) == 0
        assert len(server.messages) == 1
    finally:
        server.stop()
    before = state(sherlock_dir)

    raise_and_capture(divide, 2, request_id="during-outage-1")
    raise_and_capture(lookup, "k", request_id="during-outage-2")
    assert cli.main(["digest"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sherlock: error: sending to 127.0.0.1:")
    assert "Connection refused" in err and len(err.splitlines()) == 1
    assert state(sherlock_dir) == before
    assert cli.main(["digest"]) == 1  # still down: still nothing lost

    raise_and_capture(divide, 3, request_id="after-outage")
    server = SMTPServer(settings.port).start()
    try:
        assert cli.main(["digest"]) == 0
        [message] = server.messages
    finally:
        server.stop()
    assert message["Subject"].startswith("Sherlock detected 3 exceptions")
    text, _html = parts(message)
    for request_id in ("during-outage-1", "during-outage-2", "after-outage"):
        assert request_id in text
    assert "request_id=first" not in text
    assert state(sherlock_dir)["watermark"] > before["watermark"]


def test_console_script_exit_code_and_secret_free_error(sherlock_dir, monkeypatch):
    """The installed ``sherlock`` command exits non-zero with one line, never the password."""
    monkeypatch.setenv("SHERLOCK_SMTP_USER", "sherlock")
    monkeypatch.setenv("SHERLOCK_SMTP_PASSWORD", "hunter2-very-secret")
    raise_and_capture(divide, 1)
    script = Path(sys.executable).with_name("sherlock")
    result = subprocess.run([str(script), "digest"], capture_output=True, text=True,
                            timeout=30, env=dict(os.environ))
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "hunter2" not in result.stderr
    assert state(sherlock_dir) is None


def test_smtp_auth_login_and_wrong_password(smtp_auth, monkeypatch, capsys):
    """AUTH with user and password works; a wrong password fails in one secret-free line."""
    raise_and_capture(divide, 1)
    assert cli.main(["digest"]) == 0
    assert smtp_auth.logins == [b"sherlock"] and len(smtp_auth.messages) == 1
    raise_and_capture(divide, 2)
    monkeypatch.setenv("SHERLOCK_SMTP_PASSWORD", "wrong-pw-xyz")
    assert cli.main(["digest"]) == 1
    err = capsys.readouterr().err
    assert "authentication failed" in err and "wrong-pw-xyz" not in err


def test_storm_of_ten_thousand_is_one_group_and_the_file_stays_bounded(smtp, monkeypatch):
    """10,000 of one kind -> one email, one group with count 10,000; rotation bounds the files."""
    monkeypatch.setenv("SHERLOCK_MAX_BYTES", str(1024 * 1024))
    monkeypatch.setenv("SHERLOCK_BACKUPS", "30")
    settings = load_settings()
    sherlock.install("worker")
    for n in range(10_000):
        raise_and_log(divide, n, module="rent", function="predict", task_id=f"t-{n}")
    store = Store.from_settings(settings)
    files = store.files()
    assert len(files) > 1, "the storm should have rotated the file"
    assert all(p.stat().st_size <= settings.max_bytes for p in files)

    summary = digest.run(settings)
    assert summary["exceptions"] == 10_000 and summary["kinds"] == 1
    [message] = smtp.messages
    text, html = parts(message)
    assert message["Subject"].startswith("Sherlock detected 10000 exceptions in Falcon")
    assert "[1] 10000 x ZeroDivisionError" in text and "[2]" not in text
    assert "task_id=t-9999" in text
    assert "<strong>10000</strong>" in html


def test_records_rotated_away_before_the_digest_are_flagged(smtp, monkeypatch, capsys):
    """When rotation deletes undigested records the digest says so (and stays bounded)."""
    monkeypatch.setenv("SHERLOCK_MAX_BYTES", str(64 * 1024))
    monkeypatch.setenv("SHERLOCK_BACKUPS", "2")
    settings = load_settings()
    store = Store.from_settings(settings)
    for n in range(600):
        raise_and_capture(divide, n, store=store)
    assert len(store.files()) == 3
    assert sum(p.stat().st_size for p in store.files()) <= 3 * 64 * 1024
    assert cli.main(["digest"]) == 0
    assert "Rotation deleted records" in capsys.readouterr().err
    text, html = parts(smtp.messages[0])
    assert "Rotation deleted records" in text and "Rotation deleted records" in html


def test_no_recipients_is_a_one_line_error(sherlock_dir, monkeypatch, capsys):
    """Without SHERLOCK_RECIPIENTS a real run refuses at once."""
    monkeypatch.setenv("SHERLOCK_RECIPIENTS", "")
    assert cli.main(["digest"]) == 1
    assert capsys.readouterr().err.strip() == \
        "sherlock: error: no recipients: set SHERLOCK_RECIPIENTS"


def test_concurrent_digest_runs_are_refused(smtp, settings):
    """Two digests at once would mail twice: the second is refused."""
    with digest._DigestLock(settings):
        with pytest.raises(digest.DigestError, match="another digest is running"):
            digest.run(settings)


def test_run_scheduled_reads_the_environment(smtp):
    """The Celery/cron entry point sends with settings from the environment."""
    raise_and_capture(divide, 1)
    summary = digest.run_scheduled()
    assert summary["sent"] and len(smtp.messages) == 1
